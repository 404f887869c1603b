"""A training run killed with SIGKILL resumes from its last completed epoch."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The child dies by SIGKILL in the middle of epoch 2 (after epoch 1's checkpoint).
KILLER = """
import os, signal, sys
from pipelines.common import train
def on_train_batch_end(self, batch, logs=None):
    if len(self.history) >= 1 and batch >= 2:
        os.kill(os.getpid(), signal.SIGKILL)
train.EpochCheckpoint.on_train_batch_end = on_train_batch_end
from pipelines.common.cli import main
from pipelines.sentiment import TASK
sys.exit(main(TASK, sys.argv[1:]))
"""


def run(args, tmp_path, killer=False):
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = [sys.executable, "-c", KILLER] if killer else [sys.executable, "-m", "pipelines.sentiment"]
    return subprocess.run(command + args, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow  # about 60 s (three processes); the in-process RunState tests below run by default
def test_killed_training_resumes_from_last_completed_epoch(tmp_path):
    workdir = tmp_path / "work"
    args = ["train", "--preset", "small", "--set", "max_examples=300", "--set", "epochs=3",
            "--set", "patience=0", "--workdir", str(workdir), "-q"]
    killed = run(args, tmp_path, killer=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    state = json.load(open(workdir / "checkpoint" / "state.json"))
    assert state["epoch"] == 1
    assert not (workdir / "model.keras").exists()

    changed = run(args[:-1] + ["--set", "units=4", "-q"], tmp_path)
    assert changed.returncode == 2, changed.stderr[-2000:]
    assert "unfinished run with a different config (units: saved 8, now 4)" in (
        changed.stderr)

    resumed = run(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resuming after epoch 1 (pass --fresh to start over)" in resumed.stdout
    history = json.load(open(workdir / "history.json"))
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[0] == state["history"][0], "epoch 1 was trained again"
    assert (workdir / "model.keras").exists()
    assert not (workdir / "checkpoint" / "state.json").exists(), "a finished run stays resumable"


# The shared run state, in both training loops (in-process, seconds): a run interrupted
# after its first committed epoch refuses another config naming the key, and resumes.
SMALL = ["max_examples=200", "epochs=2", "patience=0"]


def _loops():
    from pipelines.common import distribute

    def keras_loop(task, config, workdir, datasets):
        return distribute.fit(task, config, workdir, datasets, verbose=0)

    def distributed_loop(task, config, workdir, datasets):
        import tensorflow as tf

        strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
        return distribute.fit(task, config, workdir, datasets, strategy, verbose=0)

    return {"model.fit": keras_loop, "distributed": distributed_loop}


@pytest.fixture(scope="module")
def small():
    from pipelines.common import config as config_lib
    from pipelines.sentiment import TASK

    config = config_lib.override(TASK.presets["small"], SMALL)
    return config, TASK.make_datasets(config)


# The distributed loop's case is slow (about 90 s): .ci/run runs it in its second step.
@pytest.mark.parametrize("loop", ["model.fit", pytest.param("distributed", marks=pytest.mark.slow)])
def test_run_state_refuses_another_config_and_resumes(loop, small, tmp_path, monkeypatch):
    from pipelines.common import config as config_lib
    from pipelines.common import train
    from pipelines.sentiment import TASK

    fit = _loops()[loop]
    workdir = str(tmp_path / "work")
    config, datasets = small
    real_end_epoch = train.RunState.end_epoch

    def killed_after_commit(self, *args, **kwargs):
        real_end_epoch(self, *args, **kwargs)
        raise KeyboardInterrupt("killed after the commit of an epoch")

    monkeypatch.setattr(train.RunState, "end_epoch", killed_after_commit)
    with pytest.raises(KeyboardInterrupt):
        fit(TASK, config, workdir, datasets)
    monkeypatch.setattr(train.RunState, "end_epoch", real_end_epoch)
    state = json.load(open(os.path.join(workdir, "checkpoint", "state.json")))
    assert (state["epoch"], state["loop"], len(state["history"])) == (1, loop, 1)

    other = config_lib.override(config, ["units=4", "learning_rate=0.5"])
    with pytest.raises(train.ResumeError) as refused:
        fit(TASK, other, workdir, datasets)
    assert str(refused.value) == (
        f"{os.path.join(workdir, 'checkpoint')} holds an unfinished run with a different "
        f"config (learning_rate: saved {config.learning_rate!r}, now 0.5; units: saved 8, "
        "now 4). Resume it with the same settings, or pass another "
        "--workdir, or --fresh to discard it.")
    other_data = dataclasses.replace(datasets, meta={**datasets.meta, "labels": ["a", "b", "c"]})
    with pytest.raises(train.ResumeError, match=r"on different data \(its labels differ\)"):
        fit(TASK, config, workdir, other_data)
    the_other_loop = _loops()["distributed" if loop == "model.fit" else "model.fit"]
    with pytest.raises(train.ResumeError, match="resume it the same way"):
        the_other_loop(TASK, config, workdir, datasets)

    model, info = fit(TASK, config, workdir, datasets)
    assert info["resumed_from"] == 1 and info["epochs_run"] == 2
    history = json.load(open(os.path.join(workdir, "history.json")))
    assert [h["epoch"] for h in history] == [1, 2]
    assert history[0] == state["history"][0], "epoch 1 was trained again"
    values = [h[TASK.monitor] for h in history]
    assert info["best"] == max(values) and info["best_epoch"] == 1 + values.index(max(values))
    assert not os.path.exists(os.path.join(workdir, "checkpoint", "state.json"))


def test_run_state_keeps_the_best_epoch_stops_on_patience_and_fresh_discards(tmp_path):
    import types

    from pipelines.common import train
    from pipelines.sentiment import TASK

    task = types.SimpleNamespace(monitor="val_loss", monitor_mode="min")
    config = dataclasses.replace(TASK.presets["small"], epochs=6, patience=2)
    workdir, meta = str(tmp_path), {"labels": ["a", "b"]}
    state = train.RunState.open(task, config, workdir, meta)
    stops = []
    for loss in [0.9, 0.5, 0.5, 0.7]:  # the tie does not improve: 2 epochs without
        stops.append(state.end_epoch({"val_loss": loss},
                                     lambda path, loss=loss: open(path, "w").write(str(loss))))
    assert stops == [False, False, False, True]
    assert open(state.paths["best"]).read() == "0.5"
    assert (state.best, state.best_epoch, state.wait) == (0.5, 2, 2)
    with pytest.raises(ValueError, match=r"'val_loss' not in logs \['loss'\]"):
        state.end_epoch({"loss": 1.0}, print)

    again = train.RunState.open(task, config, workdir, meta)
    assert (again.epoch, again.best_epoch, again.stopped, again.done) == (4, 2, True, True)
    assert [h["val_loss"] for h in again.history] == [0.9, 0.5, 0.5, 0.7]
    fresh = train.RunState.open(task, dataclasses.replace(config, units=4), workdir, meta,
                                fresh=True)
    assert (fresh.epoch, fresh.history, fresh.best) == (0, [], None)
    assert os.listdir(fresh.paths["checkpoint"]) == []
    assert json.load(open(fresh.paths["config"]))["units"] == 4
