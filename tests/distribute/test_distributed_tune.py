"""keras-tuner's distributed mode on 127.0.0.1: a chief (the oracle) and two workers."""

import glob
import json
import os
import time

import pytest

from tests.distribute import loopback


def _tune(workdir, *extra):
    return ["pipelines.sentiment", "tune", "--preset", "small", "--workdir", str(workdir),
            "--set", "max_examples=200", "--set", "epochs=1", "--max-trials", "3",
            "--distributed", "-q", *extra]


@pytest.mark.slow
def test_chief_and_two_workers_run_each_trial_once(tmp_path):
    port = loopback.free_port()
    work, export_dir = tmp_path / "work", tmp_path / "saved_models"
    oracle = dict(KERASTUNER_ORACLE_IP="127.0.0.1", KERASTUNER_ORACLE_PORT=port)
    procs = [loopback.start(_tune(work, "--train-best", "--export-dir", str(export_dir)),
                           tmp_path / "chief.txt", KERASTUNER_TUNER_ID="chief", **oracle)]
    procs += [loopback.start(_tune(work, "--connect-timeout", "120"), tmp_path / f"tuner{i}.txt",
                            KERASTUNER_TUNER_ID=f"tuner{i}", **oracle) for i in range(2)]
    try:
        codes = loopback.wait_all(procs, timeout=600)
    finally:
        loopback.kill(procs)
    logs = {n: loopback.read(tmp_path / f"{n}.txt") for n in ("chief", "tuner0", "tuner1")}
    assert codes == [0, 0, 0], logs
    project = work / "tune" / "random"
    state = json.load(open(project / "oracle.json"))
    assert sorted(state["run_times"]) == ["0", "1", "2"]
    assert set(state["run_times"].values()) == {1}  # every trial ran once
    for path in glob.glob(str(project / "trial_*" / "trial.json")):
        trial = json.load(open(path))
        assert trial["status"] == "COMPLETED" and trial["score"] is not None
    assert "3 trials; best val_accuracy" in logs["chief"]  # the chief holds all results
    for name in ("tuner0", "tuner1"):
        assert "search over; the chief holds the results" in logs[name]
    assert os.listdir(export_dir / "sentiment") == ["1"]  # the best model, exported


def test_worker_without_chief_stops_in_bounded_time(tmp_path):
    started = time.monotonic()
    proc = loopback.start(_tune(tmp_path / "work", "--connect-timeout", "3"),
                         tmp_path / "tuner0.txt", KERASTUNER_TUNER_ID="tuner0",
                         KERASTUNER_ORACLE_IP="127.0.0.1",
                         KERASTUNER_ORACLE_PORT=loopback.free_port())
    try:
        (code,) = loopback.wait_all([proc], timeout=120)
    finally:
        loopback.kill([proc])
    log = loopback.read(tmp_path / "tuner0.txt")
    assert code == 2 and "the chief oracle at 127.0.0.1:" in log and "within 3 s" in log
    assert time.monotonic() - started < 120
