"""Language model: text -> P(next token) (generative). ``TASK`` is what ``pipelines.common``
runs; its model and data functions are imported when first called (``task.lazy``)."""

from pipelines.char_lm import config
from pipelines.common import inputs, metrics
from pipelines.common.task import Task, lazy

_DATA, _MODEL, _SAMPLE = "pipelines.char_lm.data", "pipelines.char_lm.model", "pipelines.char_lm.sample"

TASK = Task(
    name="char_lm",
    presets=config.PRESETS,
    make_datasets=lazy(_DATA, "make_datasets"),
    read_split=lazy(_DATA, "read_split"),
    build_model=lazy(_MODEL, "build_model"),
    search_space=lazy(_MODEL, "search_space"),
    serving_model=lazy(_MODEL, "serving_model"),
    evaluate=lazy(_MODEL, "evaluate"),
    report=metrics.SCALARS,
    # predict: each line a prompt, continued by the `generate` signature with the
    # config's max_length, temperature, top_k and seed (saved in the export).
    predict_input=inputs.text_lines("prompts", endpoint="generate"),
    example_inputs=lazy(_MODEL, "example_inputs"),
    format_prediction=lazy(_MODEL, "format_prediction"),
    monitor="val_loss",
    commands={
        "sample": (lazy(_SAMPLE, "add_sample_arguments"), lazy(_SAMPLE, "run_sample")),
        "score": (lazy(_SAMPLE, "add_score_arguments"), lazy(_SAMPLE, "run_score")),
    },
)
