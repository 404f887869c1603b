"""Named-entity recognition: tokens -> a tag per token (many-to-many, same length).
``TASK`` is what ``pipelines.common`` runs; its model and data functions are imported
when first called (``task.lazy``: ``--help`` does not wait for TensorFlow)."""

from pipelines.common import inputs
from pipelines.common.task import ReportView, Task, lazy
from pipelines.ner import config

_DATA, _MODEL = "pipelines.ner.data", "pipelines.ner.model"

TASK = Task(
    name="ner",
    presets=config.PRESETS,
    make_datasets=lazy(_DATA, "make_datasets"),
    read_split=lazy(_DATA, "read_split"),
    build_model=lazy(_MODEL, "build_model"),
    search_space=lazy(_MODEL, "search_space"),
    serving_model=lazy(_MODEL, "serving_model"),
    evaluate=lazy(_MODEL, "evaluate"),
    report=ReportView(format=lazy(_MODEL, "format_report"), draw=lazy(_MODEL, "draw_report")),
    predict_input=inputs.text_lines("text"),
    example_inputs=lazy(_MODEL, "example_inputs"),
    format_prediction=lazy(_MODEL, "format_prediction"),
    # Entity F1 on the validation split picks the best epoch, stops early and ranks
    # tuning trials: the CRF loss (per sentence) and the softmax loss (per token) are
    # not comparable.
    monitor="val_f1",
    validation_metrics=lazy(_MODEL, "validation_metrics"),
)
