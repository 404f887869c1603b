"""A training run killed with SIGKILL resumes from its last completed epoch."""

import json
import os
import signal
import subprocess
import sys

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
    assert changed.returncode == 2 and "different config" in changed.stderr

    resumed = run(args, tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "resumed from epoch 1" in resumed.stdout
    history = json.load(open(workdir / "history.json"))
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert history[0] == state["history"][0], "epoch 1 was trained again"
    assert (workdir / "model.keras").exists()
    assert not (workdir / "checkpoint" / "state.json").exists(), "a finished run stays resumable"
