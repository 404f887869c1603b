"""Named-entity recognition: tokens -> a tag per token (many-to-many, same length).
``TASK`` is what ``pipelines.common`` runs."""

from pipelines.common import inputs
from pipelines.common.task import Task
from pipelines.ner import config, data, model

TASK = Task(
    name="ner",
    presets=config.PRESETS,
    make_datasets=data.make_datasets,
    read_split=data.read_split,
    build_model=model.build_model,
    search_space=model.search_space,
    serving_model=model.serving_model,
    evaluate=model.evaluate,
    report=model.REPORT,
    predict_input=inputs.text_lines("text"),
    example_inputs=model.example_inputs,
    format_prediction=model.format_prediction,
    monitor="val_loss",
)
