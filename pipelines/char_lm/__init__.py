"""Language model: text -> P(next token) (generative). ``TASK`` is what ``pipelines.common``
runs; its model and data functions are imported when first called (``task.lazy``)."""

from pipelines.char_lm import config
from pipelines.common import inputs, metrics
from pipelines.common.task import Task, contract_functions, lazy

_DATA, _MODEL, _SAMPLE = "pipelines.char_lm.data", "pipelines.char_lm.model", "pipelines.char_lm.sample"

TASK = Task(
    name="char_lm",
    presets=config.PRESETS,
    **contract_functions(_DATA, _MODEL),
    report=metrics.SCALARS,
    # predict: each line a prompt, continued by the `generate` signature with the
    # config's max_length, temperature, top_k and seed (saved in the export).
    predict_input=inputs.text_lines("prompts", endpoint="generate"),
    monitor="val_loss",
    commands={
        "sample": (lazy(_SAMPLE, "add_sample_arguments"), lazy(_SAMPLE, "run_sample")),
        "score": (lazy(_SAMPLE, "add_score_arguments"), lazy(_SAMPLE, "run_score")),
    },
)
