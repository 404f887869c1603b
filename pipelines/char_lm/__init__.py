"""Language model: text -> P(next token) (generative). ``TASK`` is what ``pipelines.common`` runs."""

import dataclasses

from pipelines.char_lm import config, data, model, sample
from pipelines.common.task import Task

# `score` and `sample` subcommands, once pipelines.common's Task takes extra commands
# (requested in SKELETON_REQUESTS.md); until then they are reachable from Python.
COMMANDS = {
    "sample": (sample.add_sample_arguments, sample.run_sample),
    "score": (sample.add_score_arguments, sample.run_score),
}
_EXTRA = {"commands": COMMANDS} if "commands" in {f.name for f in dataclasses.fields(Task)} else {}


def _sample(trained, cfg, meta, prompt="", **kwargs):
    """One sample continuing ``prompt`` with the config's sampling settings (or kwargs)."""
    settings = {"max_length": cfg.sample_length, "temperature": cfg.temperature,
                "top_k": cfg.top_k, "top_p": cfg.top_p, "seed": cfg.seed, **kwargs}
    return sample.sample(trained, meta, [prompt], **settings)[0]


TASK = Task(
    name="char_lm",
    presets=config.PRESETS,
    make_datasets=data.make_datasets,
    read_split=data.read_split,
    build_model=model.build_model,
    search_space=model.search_space,
    serving_model=model.serving_model,
    evaluate=model.evaluate,
    example_inputs=model.example_inputs,
    format_prediction=model.format_prediction,
    monitor="val_loss",
    sample=_sample,
    **_EXTRA,
)
