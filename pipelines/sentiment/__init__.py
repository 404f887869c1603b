"""Sentiment: text -> rating (many-to-one). ``TASK`` is what ``pipelines.common`` runs.

The model and data functions are imported when first called (``task.lazy``), so the
command line answers ``--help`` and bad settings without importing TensorFlow."""

from pipelines.common import inputs, metrics
from pipelines.common.task import Task, contract_functions, lazy
from pipelines.sentiment import config

_DATA, _MODEL = "pipelines.sentiment.data", "pipelines.sentiment.model"

TASK = Task(
    name="sentiment",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=metrics.CLASSIFICATION,
    predict_input=inputs.text_lines("text"),
    monitor="val_accuracy",
    combine=lazy(_MODEL, "combine"),
)
