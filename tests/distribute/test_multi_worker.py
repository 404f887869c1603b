"""Multi-worker training on 127.0.0.1: two worker processes with TF_CONFIG, always
killed at the end, every wait bounded."""

import json
import os
import re
import time

import numpy as np
import pytest

from tests.distribute import loopback

# Deterministic training, so that 2 workers can be compared with 1 process: no dropout
# (each replica draws its own masks) and no clipping (it clips each replica's gradient).
SAME = ["--set", "max_examples=200", "--set", "epochs=1", "--set", "dropout=0",
        "--set", "embedding_dropout=0", "--set", "word_dropout=0", "--set", "clipnorm=0"]


def _train_args(workdir, *extra):
    return ["pipelines.sentiment", "train", "--preset", "small", "--workdir", str(workdir),
            "-q", *extra]


def _weights(path):
    import keras

    import pipelines.sentiment.model  # noqa: F401  (registers the model's layers)

    return keras.models.load_model(path).get_weights()


@pytest.mark.slow  # about 4 minutes on the shared 2-core machine (3 TensorFlow processes)
def test_two_workers_train_together_like_one_process(tmp_path):
    ports = [loopback.free_port(), loopback.free_port()]
    work = tmp_path / "work"
    procs = [loopback.start(_train_args(work, "--distribute", "multi-worker", *SAME),
                           tmp_path / f"worker{i}.txt", TF_CONFIG=loopback.tf_config(ports, i))
             for i in range(2)]
    procs.append(loopback.start(_train_args(tmp_path / "single", *SAME), tmp_path / "single.txt"))
    try:
        codes = loopback.wait_all(procs, timeout=400)
    finally:
        loopback.kill(procs)
    logs = [loopback.read(tmp_path / f) for f in ("worker0.txt", "worker1.txt", "single.txt")]
    assert codes == [0, 0, 0], logs
    # Only the chief writes artifacts; the other worker reports its share and weights.
    assert "trained 1 epochs" in logs[0] and "worker trained 1 epochs" in logs[1]
    run = json.load(open(work / "distributed.json"))
    assert run["workers"] == 2 and run["replicas"] == 2
    assert f"weights {run['last_weights_digest']}" in logs[1]  # identical weights
    history = json.load(open(work / "history.json"))
    train_size = int(re.search(r"data: .*\btrain (\d+)", logs[0]).group(1))
    assert history[0]["examples"] == train_size  # every example once per epoch
    chief_share = run["examples_per_epoch_on_chief"][0]
    worker_share = int(logs[1].split("this worker: [")[1].split("]")[0])
    assert chief_share + worker_share == train_size
    assert abs(chief_share - worker_share) <= 0.1 * train_size  # nobody starved
    # Same global batch, same result as one process, up to float summation order.
    single = json.load(open(tmp_path / "single" / "history.json"))
    assert abs(history[0]["loss"] - single[0]["loss"]) < 1e-4
    assert abs(history[0]["val_loss"] - single[0]["val_loss"]) < 1e-4
    for a, b in zip(_weights(work / "model.keras"), _weights(tmp_path / "single" / "model.keras")):
        np.testing.assert_allclose(a, b, atol=1e-4)


@pytest.mark.slow  # the CLI end to end; test_cluster_checks covers the rendezvous in-process
def test_missing_peer_is_an_error_in_bounded_time(tmp_path):
    ports = [loopback.free_port(), loopback.free_port()]
    started = time.monotonic()
    proc = loopback.start(_train_args(tmp_path / "work", "--distribute", "multi-worker",
                                     "--connect-timeout", "5"),
                         tmp_path / "worker0.txt", TF_CONFIG=loopback.tf_config(ports, 0))
    try:
        (code,) = loopback.wait_all([proc], timeout=120)
    finally:
        loopback.kill([proc])
    log = loopback.read(tmp_path / "worker0.txt")
    assert code == 2, log
    assert f"error: worker 0: no answer within 5 s from worker 1 at 127.0.0.1:{ports[1]}" in log
    assert time.monotonic() - started < 120


@pytest.mark.slow
def test_killed_worker_restarted_run_completes(tmp_path):
    """Worker 1 is killed after the first saved epoch; worker 0 fails (its peer is gone);
    both are restarted, as a cluster manager does, and the run completes from epoch 1."""
    ports = [loopback.free_port(), loopback.free_port()]
    work = tmp_path / "work"
    args = _train_args(work, "--distribute", "multi-worker", "--set", "epochs=3",
                       "--set", "patience=0", "--set", "max_examples=400")
    procs = [loopback.start(args, tmp_path / f"a{i}.txt", TF_CONFIG=loopback.tf_config(ports, i))
             for i in range(2)]
    committed = work / "checkpoint" / "state.json"  # the chief's commit of an epoch
    try:
        assert loopback.wait_until(lambda: committed.exists(), 400)
        procs[1].kill()
        (code,) = loopback.wait_all(procs[:1], timeout=120)  # the survivor notices
        assert code == 2
        assert "lost contact with the cluster" in loopback.read(tmp_path / "a0.txt")
        loopback.kill(procs)
        procs = [loopback.start(args, tmp_path / f"b{i}.txt",
                               TF_CONFIG=loopback.tf_config(ports, i)) for i in range(2)]
        codes = loopback.wait_all(procs, timeout=600)
    finally:
        loopback.kill(procs)
    logs = [loopback.read(tmp_path / f"b{i}.txt") for i in range(2)]
    assert codes == [0, 0], logs
    resumed = int(logs[0].split("resuming after epoch ")[1].split()[0])
    assert resumed >= 1 and f"resuming after epoch {resumed}" in logs[1]
    history = json.load(open(work / "history.json"))
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert os.path.exists(work / "model.keras")


@pytest.mark.slow
def test_mirrored_over_two_cpu_devices_matches_one_device(tmp_path):
    procs = [loopback.start(_train_args(tmp_path / "mirrored", "--distribute", "mirrored",
                                       "--cpu-devices", "2", *SAME), tmp_path / "mirrored.txt"),
             loopback.start(_train_args(tmp_path / "single", *SAME), tmp_path / "single.txt")]
    try:
        codes = loopback.wait_all(procs, timeout=400)
    finally:
        loopback.kill(procs)
    assert codes == [0, 0], loopback.read(tmp_path / "mirrored.txt")
    for a, b in zip(_weights(tmp_path / "mirrored" / "model.keras"),
                    _weights(tmp_path / "single" / "model.keras")):
        np.testing.assert_allclose(a, b, atol=1e-4)
