"""Training that survives being killed: checkpoints every epoch, resumes on restart.

Work directory layout (``workdir``):
    config.json          the resolved config of the run
    meta.json            what the data step learned (vocabulary, labels)
    checkpoint/          last.keras (model + optimizer), best.weights.h5, state.json
    logs/                TensorBoard
    model.keras          the finished model (best epoch's weights)
    history.json         per-epoch metrics

A run killed at any moment (even SIGKILL) and started again with the same config
continues after its last completed epoch: every checkpoint file is written aside and
renamed into place, and state.json (the epoch counter) is renamed last.
"""

import dataclasses
import os
import shutil
import warnings

import keras

from pipelines.common import config as config_lib


class ResumeError(ValueError):
    """The work directory holds an unfinished run of a different config."""


def paths(workdir):
    ck = os.path.join(workdir, "checkpoint")
    return {
        "config": os.path.join(workdir, "config.json"),
        "meta": os.path.join(workdir, "meta.json"),
        "checkpoint": ck,
        "last": os.path.join(ck, "last.keras"),
        "best": os.path.join(ck, "best.weights.h5"),
        "state": os.path.join(ck, "state.json"),
        "logs": os.path.join(workdir, "logs"),
        "model": os.path.join(workdir, "model.keras"),
        "history": os.path.join(workdir, "history.json"),
    }


class EpochCheckpoint(keras.callbacks.Callback):
    """Saves the model, optimizer and best weights after each epoch, atomically;
    stops training after ``patience`` epochs without improvement of ``monitor``."""

    def __init__(self, workdir, monitor, mode, patience, state=None):
        super().__init__()
        self.p = paths(workdir)
        self.monitor, self.mode, self.patience = monitor, mode, patience
        state = state or {}
        self.best = state.get("best")
        self.wait = state.get("wait", 0)
        self.history = state.get("history", [])

    def _improved(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"Monitored metric {self.monitor!r} not in logs {sorted(logs)}")
        if self._improved(value):
            self.best, self.wait = value, 0
            tmp = self.p["best"].replace(".weights.h5", ".tmp.weights.h5")
            self.model.save_weights(tmp)
            os.replace(tmp, self.p["best"])
        else:
            self.wait += 1
        self.history.append({"epoch": epoch + 1, **logs})
        tmp = self.p["last"].replace(".keras", ".tmp.keras")
        self.model.save(tmp)
        os.replace(tmp, self.p["last"])
        stop = self.patience and self.wait >= self.patience
        config_lib.write_json(
            self.p["state"],
            {"epoch": epoch + 1, "best": self.best, "wait": self.wait,
             "stopped": bool(stop), "history": self.history},
        )
        if stop:
            self.model.stop_training = True


def fit(task, config, workdir, datasets, verbose=1, callbacks=(), fresh=False):
    """Trains ``task``'s model on ``datasets`` in ``workdir``, resuming if possible.

    Returns ``(model, info)``: the model holding the best epoch's weights, and a dict
    with ``history`` (list of per-epoch logs), ``resumed_from`` (epoch or 0),
    ``best`` (the monitored value) and ``epochs_run``. ``fresh`` discards an
    unfinished run instead of resuming it. A config with ``ensemble`` > 1 trains that
    many members (``fit_ensemble``). (Distributed training runs its own loop:
    ``pipelines.common.distribute.fit``.)
    """
    if getattr(config, "ensemble", 1) > 1:
        return fit_ensemble(task, config, workdir, datasets, verbose, callbacks, fresh)
    p = paths(workdir)
    os.makedirs(p["checkpoint"], exist_ok=True)
    state = None if fresh else _resumable_state(p, config, datasets.meta)
    if state is None:
        shutil.rmtree(p["checkpoint"])
        os.makedirs(p["checkpoint"])
        config_lib.save(config, p["config"])
        config_lib.write_json(p["meta"], dict(datasets.meta))
        keras.utils.set_random_seed(config.seed)
        model = task.build_model(config, datasets.meta)
        initial_epoch = 0
    else:
        model = keras.models.load_model(p["last"])
        initial_epoch = state["epoch"]
    checkpoint = EpochCheckpoint(workdir, task.monitor, task.monitor_mode, config.patience, state)
    done = state is not None and (state.get("stopped") or initial_epoch >= config.epochs)
    if not done:
        with warnings.catch_warnings():
            # tf.data inputs are shuffled in the chain; bucketed datasets have no length.
            warnings.filterwarnings("ignore", message=".*shuffle=True.*")
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            model.fit(
                datasets.train,
                validation_data=datasets.valid,
                epochs=config.epochs,
                initial_epoch=initial_epoch,
                callbacks=[checkpoint, keras.callbacks.TensorBoard(p["logs"]), *callbacks],
                verbose=verbose,
            )
    model.load_weights(p["best"])
    tmp = p["model"].replace(".keras", ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, p["model"])
    config_lib.write_json(p["history"], checkpoint.history)
    # The run is complete: the next `train` with this workdir starts a new run.
    os.remove(p["state"])
    return model, {
        "history": checkpoint.history,
        "resumed_from": initial_epoch,
        "best": checkpoint.best,
        "epochs_run": len(checkpoint.history),
    }


def fit_ensemble(task, config, workdir, datasets, verbose=1, callbacks=(), fresh=False):
    """Trains ``config.ensemble`` = K members one after the other, each a whole ``fit``
    in ``workdir/member-k`` on the same datasets (the same split and batches) with
    ``seed + k - 1`` (its own initial weights and dropout), then ``task.combine``s them
    into one model saved as ``workdir/model.keras`` (a classifier averages the
    members' probabilities). A killed run resumes: finished members are loaded, the
    unfinished one resumes after its last epoch (``ensemble.json`` lists the finished).

    Returns ``(model, info)`` as ``fit``; ``info["best"]`` is the combined model's
    monitored value on the valid split, ``info["members"]`` each member's info.
    """
    if task.combine is None:
        raise ValueError(f"Task {task.name!r} has no `combine`: it cannot train an ensemble "
                         f"(ensemble={config.ensemble}); use ensemble=1.")
    p = paths(workdir)
    state_path = os.path.join(workdir, "ensemble.json")
    os.makedirs(workdir, exist_ok=True)
    state = None
    if not fresh and os.path.exists(state_path):
        state = config_lib.read_json(state_path)
        if state["config"] != config_lib.to_dict(config):
            raise ResumeError(
                f"{workdir} holds an unfinished ensemble run with a different config. "
                "Resume it with the same settings, or pass another --workdir, or --fresh."
            )
        if state["meta"] != _jsonable(datasets.meta):
            raise ResumeError(
                f"{workdir} holds an unfinished ensemble run on different data (its "
                "vocabulary or labels differ). Pass another --workdir, or --fresh."
            )
    if state is None:
        state = {"config": config_lib.to_dict(config), "meta": _jsonable(datasets.meta),
                 "finished": []}
        config_lib.write_json(state_path, state)
    members, infos, loaded = [], [], list(state["finished"])
    for k in range(1, config.ensemble + 1):
        member_dir = os.path.join(workdir, f"member-{k}")
        member_config = dataclasses.replace(config, ensemble=1, seed=config.seed + k - 1)
        if k in state["finished"]:
            model = keras.models.load_model(paths(member_dir)["model"])
            info = {"history": config_lib.read_json(paths(member_dir)["history"]),
                    "resumed_from": 0}
        else:
            if verbose:
                print(f"ensemble member {k}/{config.ensemble} (seed {member_config.seed}) "
                      f"in {member_dir}", flush=True)
            model, info = fit(task, member_config, member_dir, datasets, verbose, callbacks,
                              fresh=fresh)
            state["finished"].append(k)
            config_lib.write_json(state_path, state)
        members.append(model)
        infos.append(info)
    model = task.combine(members, config, datasets.meta)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        logs = model.evaluate(datasets.valid, return_dict=True, verbose=0)
    best = float(logs[task.monitor[len("val_"):]])
    tmp = p["model"].replace(".keras", ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, p["model"])
    config_lib.save(config, p["config"])
    config_lib.write_json(p["meta"], dict(datasets.meta))
    history = {"members": [i["history"] for i in infos], "valid": logs}
    config_lib.write_json(p["history"], history)
    os.remove(state_path)  # complete: the next `train` here starts a new run
    return model, {
        "history": history,
        "resumed_from": sum(i["resumed_from"] for i in infos),
        "loaded_members": loaded,
        "best": best,
        "epochs_run": sum(len(i["history"]) for i in infos),
        "members": infos,
    }


def _resumable_state(p, config, meta):
    """The checkpoint state if the workdir holds an unfinished run of ``config``."""
    if not (os.path.exists(p["state"]) and os.path.exists(p["last"])):
        return None
    saved = config_lib.read_json(p["config"]) if os.path.exists(p["config"]) else None
    if saved != config_lib.to_dict(config):
        changed = sorted(
            k for k in set(saved or {}) | set(config_lib.to_dict(config))
            if (saved or {}).get(k) != config_lib.to_dict(config).get(k)
        )
        raise ResumeError(
            f"{p['checkpoint']} holds an unfinished run with a different config "
            f"(differs in {changed}). Resume it with the same settings, or pass another "
            "--workdir, or --fresh to discard it."
        )
    if config_lib.read_json(p["meta"]) != _jsonable(meta):
        raise ResumeError(
            f"{p['checkpoint']} holds an unfinished run on different data (its vocabulary "
            "or labels differ). Pass another --workdir, or --fresh to discard it."
        )
    return config_lib.read_json(p["state"])


def _jsonable(data):
    import json

    return json.loads(json.dumps(dict(data)))


def load_trained(workdir, config_class):
    """``(model, config, meta)`` of a finished run in ``workdir``."""
    p = paths(workdir)
    if not os.path.exists(p["model"]):
        raise FileNotFoundError(
            f"No trained model in {workdir} ({p['model']} is missing): run `train` first "
            "or pass the --workdir of a finished run."
        )
    model = keras.models.load_model(p["model"])
    return model, config_lib.load(config_class, p["config"]), config_lib.read_json(p["meta"])
