"""Hyperparameter search with keras-tuner over a task's ``search_space``.

The tuner's state lives in ``<workdir>/tune/<tuner>/``; running the same command again
reloads it and continues the search (finished trials are kept, ``max_trials`` counts
them). The best hyperparameters and the config they give are written to
``best_hyperparameters.json`` and ``best_config.json`` there.
"""

import dataclasses
import os

import keras

from pipelines.common import config as config_lib
from pipelines.common import distributed_tune, train

TUNERS = ("random", "bayesian", "hyperband")


def search(task, config, datasets, workdir, tuner="random", max_trials=10, verbose=1, fixed=None):
    """Runs (or resumes) the search. Returns ``(best_config, best_hp_values, summary)``.

    ``fixed`` ({hyperparameter: value}) pins some hyperparameters of the search space.
    """
    import keras_tuner as kt

    if tuner not in TUNERS:
        raise ValueError(f"Unknown tuner {tuner!r}. Expected one of {TUNERS}.")
    meta = datasets.meta
    directory = os.path.join(workdir, "tune")
    os.makedirs(directory, exist_ok=True)

    trial_configs = {}  # id(model) -> the trial's config, for validation_metrics

    def build(hp):
        trial_config = task.search_space(hp, config)
        model = train.build(task, trial_config, meta)
        trial_configs.clear()  # one trial at a time in this process
        trial_configs[id(model)] = trial_config
        return model

    pinned = kt.HyperParameters()
    for name, value in (fixed or {}).items():
        pinned.Fixed(name, value)
    common = dict(
        hyperparameters=pinned,
        tune_new_entries=True,
        objective=kt.Objective(task.monitor, direction=task.monitor_mode),
        directory=directory,
        project_name=tuner,
        overwrite=False,
        seed=config.seed,
    )
    if tuner == "random":
        t = kt.RandomSearch(build, max_trials=max_trials, **common)
    elif tuner == "bayesian":
        t = kt.BayesianOptimization(build, max_trials=max_trials, **common)
    else:
        t = kt.Hyperband(build, max_epochs=config.epochs, factor=3, hyperband_iterations=1, **common)
    config_lib.save(config, os.path.join(directory, tuner, "base_config.json"))
    callbacks = [*train.metric_callbacks(task, datasets, config,
                                         lambda model: trial_configs.get(id(model), config)),
                 keras.callbacks.EarlyStopping(task.monitor, mode=task.monitor_mode,
                                               patience=max(1, config.patience))]
    t.search(datasets.train, validation_data=datasets.valid, epochs=config.epochs,
             callbacks=callbacks, verbose=verbose)
    if distributed_tune.is_worker():  # keras-tuner's distributed mode: the chief records
        return None, None, {"tuner": tuner, "tuner_id": t.tuner_id}
    best_hp = t.get_best_hyperparameters(1)[0]
    best_config = task.search_space(best_hp, config)
    trials = t.oracle.get_best_trials(num_trials=max(1, len(t.oracle.trials)))
    summary = {
        "tuner": tuner,
        "trials": len(t.oracle.trials),
        "best_score": trials[0].score if trials else None,
        "monitor": task.monitor,
    }
    out = os.path.join(directory, tuner)
    config_lib.write_json(os.path.join(out, "best_hyperparameters.json"),
                          {"values": best_hp.values, **summary})
    config_lib.save(best_config, os.path.join(out, "best_config.json"))
    return best_config, dict(best_hp.values), summary


def changed_fields(base, new):
    """{field: (old, new)} for the fields that differ between two configs."""
    return {
        f.name: (getattr(base, f.name), getattr(new, f.name))
        for f in dataclasses.fields(base)
        if getattr(base, f.name) != getattr(new, f.name)
    }
