"""Language model: text -> P(next token) (generative). ``TASK`` is what ``pipelines.common`` runs."""

from pipelines.char_lm import config, data, model, sample
from pipelines.common import inputs, metrics
from pipelines.common.task import Task

TASK = Task(
    name="char_lm",
    presets=config.PRESETS,
    make_datasets=data.make_datasets,
    read_split=data.read_split,
    build_model=model.build_model,
    search_space=model.search_space,
    serving_model=model.serving_model,
    evaluate=model.evaluate,
    report=metrics.SCALARS,
    # predict: each line a prompt, continued by the `generate` signature with the
    # config's max_length, temperature, top_k and seed (saved in the export).
    predict_input=inputs.text_lines("prompts", endpoint="generate"),
    example_inputs=model.example_inputs,
    format_prediction=model.format_prediction,
    monitor="val_loss",
    commands={
        "sample": (sample.add_sample_arguments, sample.run_sample),
        "score": (sample.add_score_arguments, sample.run_score),
    },
)
