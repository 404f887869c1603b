"""Sentiment: text -> rating (many-to-one). ``TASK`` is what ``pipelines.common`` runs.

The model and data functions are imported when first called (``task.lazy``), so the
command line answers ``--help`` and bad settings without importing TensorFlow."""

from pipelines.common import inputs, metrics
from pipelines.common.task import Task, lazy
from pipelines.sentiment import config

_DATA, _MODEL = "pipelines.sentiment.data", "pipelines.sentiment.model"

TASK = Task(
    name="sentiment",
    presets=config.PRESETS,
    make_datasets=lazy(_DATA, "make_datasets"),
    read_split=lazy(_DATA, "read_split"),
    build_model=lazy(_MODEL, "build_model"),
    search_space=lazy(_MODEL, "search_space"),
    serving_model=lazy(_MODEL, "serving_model"),
    evaluate=lazy(_MODEL, "evaluate"),
    report=metrics.CLASSIFICATION,
    predict_input=inputs.text_lines("text"),
    example_inputs=lazy(_MODEL, "example_inputs"),
    format_prediction=lazy(_MODEL, "format_prediction"),
    monitor="val_accuracy",
    combine=lazy(_MODEL, "combine"),
)
