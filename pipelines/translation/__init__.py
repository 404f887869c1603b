"""Machine translation: a source sentence -> a target sentence of another length
(encoder-decoder with attention, beam search). ``TASK`` is what ``pipelines.common``
runs; its model and data functions are imported when first called (``task.lazy``)."""

from pipelines.common import inputs
from pipelines.common.task import DATA_FLAGS, ReportView, Task, contract_functions, lazy
from pipelines.translation import config

_DATA, _MODEL = "pipelines.translation.data", "pipelines.translation.model"

TASK = Task(
    name="translation",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    predict_input=inputs.text_lines("source"),
    monitor="val_loss",
    data_flags={**DATA_FLAGS,
                "source-file": ("source_file", "source sentences, one a line (with --target-file)"),
                "target-file": ("target_file", "their translations, aligned line by line")},
)
