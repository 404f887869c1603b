"""DNA sequence analysis: a tag per base (genes on either strand) or a label per
sequence. ``TASK`` is what ``pipelines.common`` runs; its model and data functions are
imported when first called (``task.lazy``)."""

from pipelines.common import inputs
from pipelines.common.task import DATA_FLAGS, ReportView, Task, contract_functions, lazy
from pipelines.dna import config

_DATA, _MODEL = "pipelines.dna.data", "pipelines.dna.model"

TASK = Task(
    name="dna",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    predict_input=inputs.text_lines("sequence"),
    monitor="val_loss",
    data_flags={**DATA_FLAGS,
                "annotation": ("annotation", "GFF3 or BED annotation of a FASTA --data")},
)
