"""Sentiment: text -> rating (many-to-one). ``TASK`` is what ``pipelines.common`` runs."""

from pipelines.common import inputs, metrics
from pipelines.common.task import Task
from pipelines.sentiment import config, data, model

TASK = Task(
    name="sentiment",
    presets=config.PRESETS,
    make_datasets=data.make_datasets,
    read_split=data.read_split,
    build_model=model.build_model,
    search_space=model.search_space,
    serving_model=model.serving_model,
    evaluate=model.evaluate,
    report=metrics.CLASSIFICATION,
    predict_input=inputs.text_lines("text"),
    example_inputs=model.example_inputs,
    format_prediction=model.format_prediction,
    monitor="val_accuracy",
    combine=model.combine,
)
