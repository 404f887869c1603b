"""Training that survives being killed: checkpoints every epoch, resumes on restart.

Work directory layout (``workdir``):
    config.json          the resolved config of the run
    meta.json            what the data step learned (vocabulary, labels)
    checkpoint/          state.json, best.weights.h5 and the loop's last checkpoint
                         (last.keras: model + optimizer; backup/: the distributed loop's)
    logs/                TensorBoard
    model.keras          the finished model (best epoch's weights)
    history.json         per-epoch metrics

A run killed at any moment (even SIGKILL) and started again with the same config
continues after its last completed epoch: every checkpoint file is written aside and
renamed into place, and state.json (the epoch counter) is renamed last. ``RunState``
keeps that record for both training loops: ``fit`` here (``model.fit`` with the
``EpochCheckpoint`` callback) and ``pipelines.common.distribute.fit_distributed``.
"""

import dataclasses
import json
import os
import shutil
import warnings

import keras

from pipelines.common import config as config_lib

# Which loop wrote a run's checkpoint: each resumes only its own.
KERAS_LOOP, DISTRIBUTED_LOOP = "model.fit", "distributed"


class ResumeError(ValueError):
    """The work directory holds an unfinished run of a different config."""


def paths(workdir):
    ck = os.path.join(workdir, "checkpoint")
    return {
        "config": os.path.join(workdir, "config.json"),
        "meta": os.path.join(workdir, "meta.json"),
        "checkpoint": ck,
        "last": os.path.join(ck, "last.keras"),
        "backup": os.path.join(ck, "backup"),
        "best": os.path.join(ck, "best.weights.h5"),
        "state": os.path.join(ck, "state.json"),
        "logs": os.path.join(workdir, "logs"),
        "model": os.path.join(workdir, "model.keras"),
        "history": os.path.join(workdir, "history.json"),
    }


def save_atomically(save, path):
    """``save(tmp)`` then renames tmp to ``path``: readers see the old file or the
    new one, never a part. tmp keeps the suffix Keras checks (.keras, .weights.h5)."""
    head, name = os.path.split(path)
    stem, _, suffix = name.partition(".")
    tmp = os.path.join(head, f"{stem}.tmp{os.getpid()}.{suffix}")
    save(tmp)
    os.replace(tmp, path)


def check_same_run(where, config, meta, saved_config, saved_meta, what="run"):
    """Raises ResumeError unless an unfinished ``what`` in ``where`` had this
    ``config`` (a dataclass) and ``meta`` (what the data step learned); the message
    names the keys that differ (config keys with both values)."""
    new = config_lib.to_dict(config)
    saved_config = saved_config or {}
    changed = sorted(k for k in set(saved_config) | set(new)
                     if saved_config.get(k, _MISSING) != new.get(k, _MISSING))
    if changed:
        detail = "; ".join(f"{k}: saved {_show(saved_config.get(k, _MISSING))}, "
                           f"now {_show(new.get(k, _MISSING))}" for k in changed)
        raise ResumeError(
            f"{where} holds an unfinished {what} with a different config ({detail}). "
            "Resume it with the same settings, or pass another --workdir, or --fresh to "
            "discard it.")
    new, saved_meta = _jsonable(meta), saved_meta or {}
    changed = sorted(k for k in set(saved_meta) | set(new)
                     if saved_meta.get(k, _MISSING) != new.get(k, _MISSING))
    if changed:
        raise ResumeError(
            f"{where} holds an unfinished {what} on different data (its {', '.join(changed)} "
            "differ). Pass another --workdir, or --fresh to discard it.")


def refuse_finished_run(workdir, config):
    """Raises ResumeError if ``workdir`` holds a finished run (model.keras and no
    unfinished state): training again would overwrite it. The message names the config
    keys that differ from it, if any; ``--fresh`` (not calling this) trains over it."""
    p = paths(workdir)
    unfinished = os.path.exists(p["state"]) or os.path.exists(os.path.join(workdir, "ensemble.json"))
    if not os.path.exists(p["model"]) or unfinished:
        return
    saved = config_lib.read_json(p["config"]) if os.path.exists(p["config"]) else {}
    new = config_lib.to_dict(config)
    changed = sorted(k for k in set(saved) | set(new) if saved.get(k, _MISSING) != new.get(k, _MISSING))
    detail = ("; ".join(f"{k}: saved {_show(saved.get(k, _MISSING))}, now {_show(new.get(k, _MISSING))}"
                        for k in changed))
    raise ResumeError(
        f"{workdir} holds a finished run ({p['model']}"
        + (f", a different config: {detail}" if changed else ", the same config")
        + "): pass --fresh to train over it, or another --workdir.")


def resume_point(workdir):
    """What a ``train`` in ``workdir`` continues: ("epoch", N) for an unfinished run after
    N epochs, ("members", [k...]) for an ensemble with finished members, or None."""
    p = paths(workdir)
    ensemble = os.path.join(workdir, "ensemble.json")
    if os.path.exists(ensemble):
        finished = config_lib.read_json(ensemble).get("finished", [])
        return ("members", finished) if finished else None
    if os.path.exists(p["state"]):
        epoch = config_lib.read_json(p["state"]).get("epoch", 0)
        return ("epoch", epoch) if epoch else None
    return None


_MISSING = "<not set>"


def _show(value, limit=60):
    text = repr(value) if value is not _MISSING else value
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _jsonable(data):
    return json.loads(json.dumps(dict(data)))


class RunState:
    """The record of one training run in ``workdir``, shared by both training loops.

    ``checkpoint/state.json`` holds the completed ``epoch``s, their ``history`` (one
    dict of logs per epoch), the ``best`` value of the task's monitored metric and its
    ``best_epoch``, ``wait`` (epochs since the best), ``stopped`` (patience ran out)
    and the ``loop`` that wrote it. After each epoch ``end_epoch`` writes, each aside
    and renamed: the best weights (when the epoch improved), the loop's own last
    checkpoint (model and optimizer), then state.json, the commit of the epoch. A
    run killed before that last rename resumes after the epoch before.

    Make one with ``RunState.open``; ``finish`` turns it into the finished model.
    """

    def __init__(self, workdir, monitor, mode, patience, epochs, loop, saved=None):
        self.workdir, self.paths = workdir, paths(workdir)
        self.monitor, self.mode, self.patience, self.epochs = monitor, mode, patience, epochs
        self.loop = loop
        saved = saved or {}
        self.epoch = saved.get("epoch", 0)
        self.history = list(saved.get("history", []))
        self.best = saved.get("best")
        self.best_epoch = saved.get("best_epoch")
        self.wait = saved.get("wait", 0)
        self.stopped = bool(saved.get("stopped", False))
        self.resumed_from = self.epoch

    @classmethod
    def open(cls, task, config, workdir, meta, loop=KERAS_LOOP, fresh=False, writer=True):
        """The state of the unfinished run in ``workdir`` if there is one (ResumeError
        if it was of another config, data or loop), else of a new run. ``fresh``
        discards an unfinished run. The ``writer`` (every process but the
        non-chief workers of a cluster) starts a new run: deletes the checkpoint
        directory and writes config.json and meta.json."""
        p = paths(workdir)
        saved = None
        if not fresh and os.path.exists(p["state"]):
            check_same_run(
                p["checkpoint"], config, meta,
                config_lib.read_json(p["config"]) if os.path.exists(p["config"]) else None,
                config_lib.read_json(p["meta"]) if os.path.exists(p["meta"]) else None)
            saved = config_lib.read_json(p["state"])
            if saved.get("loop", KERAS_LOOP) != loop:
                how = "with --distribute" if loop == KERAS_LOOP else "without --distribute"
                raise ResumeError(
                    f"{p['checkpoint']} holds an unfinished run trained {how} (the "
                    f"{saved.get('loop', KERAS_LOOP)} loop): resume it the same way, or pass "
                    "another --workdir, or --fresh to discard it.")
        if saved is None and writer:
            shutil.rmtree(p["checkpoint"], ignore_errors=True)
            os.makedirs(p["checkpoint"])
            config_lib.save(config, p["config"])
            config_lib.write_json(p["meta"], dict(meta))
        return cls(workdir, task.monitor, task.monitor_mode, config.patience, config.epochs,
                   loop, saved)

    @property
    def done(self):
        """True when no epoch is left to run (all run, or patience ran out)."""
        return self.stopped or self.epoch >= self.epochs

    def improved(self, value):
        if self.best is None:
            return True
        return value < self.best if self.mode == "min" else value > self.best

    def end_epoch(self, logs, save_best, save_last=None):
        """Records epoch ``self.epoch + 1`` with its ``logs`` (the monitored metric
        among them): ``save_best(path)`` writes the weights when the epoch improved
        (written aside, renamed), then ``save_last()`` the loop's last checkpoint,
        then state.json. Returns True when patience is exhausted (stop training)."""
        value = logs.get(self.monitor)
        if value is None:
            raise ValueError(f"Monitored metric {self.monitor!r} not in logs {sorted(logs)}")
        epoch = self.epoch + 1
        if self.improved(value):
            self.best, self.best_epoch, self.wait = float(value), epoch, 0
            save_atomically(save_best, self.paths["best"])
        else:
            self.wait += 1
        self.history.append({"epoch": epoch, **logs})
        if save_last is not None:
            save_last()
        self.epoch = epoch
        self.stopped = bool(self.patience) and self.wait >= self.patience
        config_lib.write_json(self.paths["state"], {
            "epoch": self.epoch, "best": self.best, "best_epoch": self.best_epoch,
            "wait": self.wait, "stopped": self.stopped, "loop": self.loop,
            "history": self.history})
        return self.stopped

    def finish(self, model):
        """Loads the best weights into ``model``, saves it as model.keras and the
        history as history.json, and ends the run (the next run here starts anew).
        Returns the info dict of ``fit``."""
        if not self.history:
            raise ValueError(f"{self.workdir}: no epoch was run. Expected epochs > 0. "
                             f"Received: epochs={self.epochs}")
        model.load_weights(self.paths["best"])
        save_atomically(model.save, self.paths["model"])
        config_lib.write_json(self.paths["history"], self.history)
        os.remove(self.paths["state"])
        return {"history": self.history, "resumed_from": self.resumed_from,
                "best": self.best, "best_epoch": self.best_epoch,
                "epochs_run": len(self.history)}


class EpochCheckpoint(keras.callbacks.Callback):
    """``model.fit``'s end of epoch in the ``RunState``: the best weights, last.keras
    (model + optimizer), state.json, each atomically; stops training after
    ``patience`` epochs without improvement of the monitored metric."""

    def __init__(self, state):
        super().__init__()
        self.state = state

    @property
    def history(self):
        return self.state.history

    def on_epoch_end(self, epoch, logs=None):
        logs = {k: float(v) for k, v in (logs or {}).items()}
        last = self.state.paths["last"]
        if self.state.end_epoch(logs, self.model.save_weights,
                                lambda: save_atomically(self.model.save, last)):
            self.model.stop_training = True


class ValidationMetrics(keras.callbacks.Callback):
    """Adds ``val_<name>`` of ``task.validation_metrics`` on the validation split to
    each epoch's logs, in place, so the callbacks after it (checkpoint, early stopping,
    keras-tuner's) see them. Must come first in the callback list."""

    def __init__(self, task, dataset, config_of, meta):
        super().__init__()
        self.task, self.dataset, self.config_of, self.meta = task, dataset, config_of, meta

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs.update(validation_logs(self.task, self.model, self.dataset,
                                        self.config_of(self.model), self.meta))

    def __deepcopy__(self, memo):  # keras-tuner copies the callbacks of every trial
        return ValidationMetrics(self.task, self.dataset, self.config_of, self.meta)


def validation_logs(task, model, dataset, config, meta):
    """{"val_<name>": value} of ``task.validation_metrics`` ({} when it has none)."""
    if task.validation_metrics is None:
        return {}
    return {f"val_{k}": float(v)
            for k, v in task.validation_metrics(model, dataset, config, meta).items()}


def metric_callbacks(task, datasets, config, config_of=None):
    """[ValidationMetrics] for a task with ``validation_metrics``, else [].
    ``config_of(model)``: the config a model was built from (tuning: the trial's;
    default ``config``)."""
    if task.validation_metrics is None:
        return []
    return [ValidationMetrics(task, datasets.valid, config_of or (lambda model: config),
                              datasets.meta)]


def build(task, config, meta):
    """``task.build_model(config, meta)`` with its layers made under the config's
    ``precision`` (a Keras dtype policy, saved with each layer); the global policy is
    restored afterwards."""
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(getattr(config, "precision", "float32"))
    try:
        return with_steps_per_execution(task.build_model(config, meta), config)
    finally:
        keras.config.set_dtype_policy(previous)


def with_steps_per_execution(model, config):
    """``model`` running ``config.steps_per_execution`` steps per call of its compiled
    train/test/predict function (compile's argument, set after the task compiled it;
    a loaded model gets its saved compile's value, so resuming sets it again)."""
    model.steps_per_execution = getattr(config, "steps_per_execution", 1)
    return model


def fit(task, config, workdir, datasets, verbose=1, callbacks=(), fresh=False, trainer=None):
    """Trains ``task``'s model on ``datasets`` in ``workdir``, resuming if possible.

    Returns ``(model, info)``: the model holding the best epoch's weights, and a dict
    with ``history`` (list of per-epoch logs), ``resumed_from`` (epoch or 0),
    ``best`` (the monitored value), ``best_epoch`` and ``epochs_run``. ``fresh``
    discards an unfinished run instead of resuming it. A config with ``ensemble`` > 1
    trains that many members (``fit_ensemble``). (Distributed training runs its own
    loop on the same ``RunState``: ``pipelines.common.distribute.fit``.)

    ``trainer``: a compiled model built from the same config but for the seed (another
    ensemble member's), whose traced train and test functions are reused: a new run
    builds its model as usual, loads that model's initial state (weights, dropout
    seeds, a fresh optimizer) into ``trainer``, trains ``trainer`` and returns the built
    model holding the result (the same training; one trace of the step per ensemble
    instead of one per member). A resumed run trains its loaded model.
    """
    if getattr(config, "ensemble", 1) > 1:
        return fit_ensemble(task, config, workdir, datasets, verbose, callbacks, fresh)
    state = RunState.open(task, config, workdir, datasets.meta, KERAS_LOOP, fresh)
    built = None
    if state.epoch:
        task.import_modules()  # its Keras classes, registered before loading
        model = with_steps_per_execution(keras.models.load_model(state.paths["last"]), config)
    else:
        keras.utils.set_random_seed(config.seed)
        model = build(task, config, datasets.meta)
        if trainer is not None:
            built, model = model, trainer
            for m in (built, trainer):  # the built one's fresh optimizer state, to copy
                if not m.optimizer.built:
                    m.optimizer.build(m.trainable_variables)
            copy_state(built, model)
    if not state.done:
        with warnings.catch_warnings():
            # tf.data inputs are shuffled in the chain; bucketed datasets have no length.
            warnings.filterwarnings("ignore", message=".*shuffle=True.*")
            warnings.filterwarnings("ignore", message=".*ran out of data.*")
            model.fit(
                datasets.train,
                validation_data=datasets.valid,
                epochs=config.epochs,
                initial_epoch=state.epoch,
                callbacks=[*metric_callbacks(task, datasets, config), EpochCheckpoint(state),
                           keras.callbacks.TensorBoard(state.paths["logs"]), *callbacks],
                verbose=verbose,
            )
    info = state.finish(model)
    if built is not None:
        copy_state(model, built)
        return built, info
    return model, info


def copy_state(source, target):
    """Assigns every variable of ``source`` (weights, dropout seed states, and the
    optimizer's step, learning rate and moments) to ``target``, a model of the same
    build; raises ValueError if their variables differ in number or shape."""
    pairs = [(source.variables, target.variables),
             (source.optimizer.variables, target.optimizer.variables)]
    for a, b in pairs:
        if len(a) != len(b) or any(tuple(x.shape) != tuple(y.shape) for x, y in zip(a, b)):
            raise ValueError(f"Cannot copy the state of {source.name!r} to {target.name!r}: "
                             f"their variables differ in number or shape ({len(a)} against "
                             f"{len(b)}).")
    for a, b in pairs:
        for x, y in zip(a, b):
            y.assign(x)


def inference_function(model, dataset):
    """``model`` in inference mode as one ``tf.function`` for the inputs of ``dataset``
    ((inputs, targets) batches): traced once for the dataset's element spec, whatever
    each batch's shape (``predict_on_batch`` traces again for new shapes; a trace of
    an ensemble's recurrent stacks costs about a second per member)."""
    import tensorflow as tf

    spec = dataset.element_spec[0]
    return tf.function(lambda inputs: model(inputs, training=False), input_signature=[spec])


def mean_of_members(members, name, loss="sparse_categorical_crossentropy",
                    metrics=("accuracy",), stack=False):
    """One model from trained ``members`` (models with the same inputs and outputs of
    one shape): the same inputs -> the mean of their outputs (probabilities, values), or
    with ``stack`` their outputs stacked (batch, members, ...) (``zoo.layers.MemberStack``)
    for a task that combines whole outputs itself (speech: transcript probabilities);
    compiled for evaluation with ``loss`` and ``metrics``; a task's ``combine``."""
    from zoo.layers import MemberStack

    template = members[0].input
    inputs = keras.tree.map_structure(
        lambda t: keras.Input(shape=t.shape[1:], dtype=t.dtype, name=t.name), template)
    # Each member is re-wrapped under a unique name (they were all built alike).
    outputs = [keras.Model(m.input, m.output, name=f"member_{k}")(inputs)
               for k, m in enumerate(members, 1)]
    if stack:
        mean = MemberStack(name="ensemble_members", dtype="float32")(outputs)
    else:
        mean = keras.layers.Average(name="ensemble_mean")(outputs)
    model = keras.Model(inputs, mean, name=name)
    model.compile(loss=loss, metrics=list(metrics))
    model.optimizer.build(model.trainable_variables)  # saved and loaded alike (no warning)
    return model


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
        check_same_run(workdir, config, datasets.meta, state["config"], state["meta"],
                       what="ensemble run")
    if state is None:
        state = {"config": config_lib.to_dict(config), "meta": _jsonable(datasets.meta),
                 "finished": []}
        config_lib.write_json(state_path, state)
    members, infos, loaded = [], [], list(state["finished"])
    trainer = None  # one model trains every new member (its step traced once)
    for k in range(1, config.ensemble + 1):
        member_dir = os.path.join(workdir, f"member-{k}")
        member_config = dataclasses.replace(config, ensemble=1, seed=config.seed + k - 1)
        if k in state["finished"]:
            task.import_modules()
            model = keras.models.load_model(paths(member_dir)["model"])
            info = {"history": config_lib.read_json(paths(member_dir)["history"]),
                    "resumed_from": 0}
        else:
            if verbose:
                print(f"ensemble member {k}/{config.ensemble} (seed {member_config.seed}) "
                      f"in {member_dir}", flush=True)
            if trainer is None:
                trainer = build(task, member_config, datasets.meta)
            model, info = fit(task, member_config, member_dir, datasets, verbose, callbacks,
                              fresh=fresh, trainer=trainer)
            state["finished"].append(k)
            config_lib.write_json(state_path, state)
        members.append(model)
        infos.append(info)
    model = task.combine(members, config, datasets.meta)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*ran out of data.*")
        logs = model.evaluate(datasets.valid, return_dict=True, verbose=0)
    best = float(logs[task.monitor[len("val_"):]])
    save_atomically(model.save, p["model"])
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


def load_trained(workdir, config_class, task=None):
    """``(model, config, meta)`` of a finished run in ``workdir``; ``task`` (the
    ``Task``): its modules are imported first, registering its Keras classes."""
    p = paths(workdir)
    if not os.path.exists(p["model"]):
        raise FileNotFoundError(
            f"No trained model in {workdir} ({p['model']} is missing): run `train` first "
            "or pass the --workdir of a finished run."
        )
    if task is not None:
        task.import_modules()  # its Keras classes, registered before loading
    model = keras.models.load_model(p["model"])
    return model, config_lib.load(config_class, p["config"]), config_lib.read_json(p["meta"])
