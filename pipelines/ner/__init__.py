"""Named-entity recognition: tokens -> a tag per token (many-to-many, same length).
``TASK`` is what ``pipelines.common`` runs; its model and data functions are imported
when first called (``task.lazy``: ``--help`` does not wait for TensorFlow)."""

from pipelines.common import inputs
from pipelines.common.task import ReportView, Task, contract_functions, lazy
from pipelines.ner import config

_DATA, _MODEL = "pipelines.ner.data", "pipelines.ner.model"

TASK = Task(
    name="ner",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    predict_input=inputs.text_lines("text"),
    # Entity F1 on the validation split picks the best epoch, stops early and ranks
    # tuning trials: the CRF loss (per sentence) and the softmax loss (per token) are
    # not comparable.
    monitor="val_f1",
    validation_metrics=lazy(_MODEL, "validation_metrics"),
)
