"""DNA sequence analysis: a tag per base (genes on either strand) or a label per
sequence. ``TASK`` is what ``pipelines.common`` runs; its model and data functions are
imported when first called (``task.lazy``)."""

from pipelines.common.task import (DATA_FLAGS, PredictInput, ReportView, Task,
                                   contract_functions, lazy)
from pipelines.dna import config

_DATA, _MODEL = "pipelines.dna.data", "pipelines.dna.model"
_PREDICT = "pipelines.dna.predict"

TASK = Task(
    name="dna",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    # predict: --text SEQUENCE, or --file (or --fasta) a FASTA (a row per record) / text
    # (a row per line); per-base models write each sequence's genes as GFF3 into --out.
    predict_input=PredictInput(endpoint="serving_default", read_text=None, read_file=None,
                               feed=lazy(_PREDICT, "feed"), show=lazy(_PREDICT, "show"),
                               bind=lazy(_PREDICT, "bind"), file_flags=("fasta",)),
    combine=lazy(_MODEL, "combine"),
    monitor="val_loss",
    data_flags={**DATA_FLAGS,
                "annotation": ("annotation", "GFF3 or BED annotation of a FASTA --data")},
)
