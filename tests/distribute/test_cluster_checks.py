"""Bad clusters fail fast with a message naming the bad value (in-process, seconds)."""

import json
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf

from pipelines.common import cluster, distribute, distributed_tune
from pipelines.common.cluster import DistributeError
from tests.distribute import loopback


def _config(**task):
    return json.dumps({"cluster": {"worker": ["127.0.0.1:2001", "127.0.0.1:2002"]},
                       "task": task or {"type": "worker", "index": 0}})


def test_parse_reads_roles():
    c = cluster.parse_tf_config(_config(type="worker", index=1))
    assert (c.num_workers, c.is_chief, c.rank, c.address) == (2, False, 1, "127.0.0.1:2002")
    assert c.peers == [("worker 0", "127.0.0.1:2001")]
    chief = cluster.parse_tf_config(json.dumps(
        {"cluster": {"chief": ["h:1"], "worker": ["h:2"]}, "task": {"type": "chief", "index": 0}}))
    assert chief.is_chief and chief.num_workers == 2 and chief.rank == 0


@pytest.mark.parametrize("text, expected", [
    ("", "needs the TF_CONFIG"),
    ("{'cluster': ", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), 'needs "cluster"'),
    (json.dumps({"cluster": {"worker": ["h:1"]}}), 'needs "task"'),
    (json.dumps({"cluster": {"worker": ["h:1"]}, "task": {"type": "worker"}}), 'needs "task"'),
    (_config(type="worker", index=2), "index must be in [0, 2)"),
    (_config(type="worker", index=-1), "Received: index=-1"),
    (_config(type="worker", index="0"), "Received: index='0'"),
    (_config(type="chief", index=0), "task.type 'chief' is not a job"),
    (json.dumps({"cluster": {"worker": ["h:1"], "ps": ["h:2"]},
                 "task": {"type": "worker", "index": 0}}), "no parameter servers"),
    (json.dumps({"cluster": {"worker": ["h1", "h:2"]},
                 "task": {"type": "worker", "index": 0}}), "Received: 'h1'"),
    (json.dumps({"cluster": {"worker": ["h:99999"]},
                 "task": {"type": "worker", "index": 0}}), "Received: 'h:99999'"),
    (json.dumps({"cluster": {"worker": []}, "task": {"type": "worker", "index": 0}}),
     "non-empty list"),
])
def test_malformed_tf_config_is_named(text, expected):
    with pytest.raises(DistributeError, match="TF_CONFIG") as e:
        cluster.parse_tf_config(text)
    assert expected in str(e.value)


def test_port_in_use_is_refused_before_tensorflow_listens():
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {"TF_CONFIG": json.dumps({"cluster": {"worker": [f"127.0.0.1:{port}", "127.0.0.1:1"]},
                                        "task": {"type": "worker", "index": 0}})}
        with pytest.raises(DistributeError, match=f"port {port} .* is in use"):
            cluster.make_strategy("multi-worker", environ=env)


def test_unknown_mode_and_misplaced_cpu_devices():
    with pytest.raises(DistributeError, match="Received: 'ring'"):
        cluster.make_strategy("ring")
    with pytest.raises(DistributeError, match="--cpu-devices is for --distribute mirrored"):
        cluster.make_strategy("none", cpu_devices=2)


def test_cli_reports_bad_tf_config(monkeypatch, capsys, tmp_path):
    from pipelines.common.cli import main
    from pipelines.sentiment import TASK

    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["127.0.0.1:1"]}, "task": ')
    code = main(TASK, ["train", "--preset", "small", "--workdir", str(tmp_path),
                       "--distribute", "multi-worker", "-q"])
    assert code == 2
    assert "TF_CONFIG is not valid JSON" in capsys.readouterr().err


def _ids(batches):
    return tf.data.Dataset.from_generator(
        lambda: iter(batches), output_signature=(tf.TensorSpec([None, 1], tf.int32),
                                                 tf.TensorSpec([None], tf.int32)))


@pytest.mark.parametrize("replicas, per_worker", [(2, 1), (4, 2), (3, 1)])
def test_replica_batches_show_every_example_once(replicas, per_worker):
    sizes, start, batches = [5, 8, 3, 1, 2], 0, []
    for n in sizes:  # global batches of ids start..start+n (the last ones small)
        ids = np.arange(start, start + n, dtype=np.int32)
        batches.append((ids[:, None], ids))
        start += n
    ds = _ids(batches)
    per_replica = {}
    for first in range(0, replicas, per_worker):
        elements = list(distribute.replica_batches(ds, replicas, first, per_worker))
        assert len(elements) == len(sizes) * per_worker  # every worker runs every step
        for k, el in enumerate(elements):
            replica = first + k % per_worker
            x, y = el["data"]
            assert int(el["rows"]) == sizes[k // per_worker]
            per_replica.setdefault(replica, []).append(y.numpy())
    for step, n in enumerate(sizes):
        parts = [per_replica[r][step] for r in range(replicas)]
        expected = range(sum(sizes[:step]), sum(sizes[:step + 1]))
        assert sorted(np.concatenate(parts)) == list(expected)
        assert max(map(len, parts)) - min(map(len, parts)) <= 1  # nobody starved


def test_replica_batches_rejects_bad_slices():
    with pytest.raises(ValueError, match="first_replica=2"):
        distribute.replica_batches(_ids([]), 2, first_replica=2)


def test_fingerprint_tells_order_apart_but_not_inputs():
    x = tf.constant([[1, 2], [3, 4]])
    y = tf.constant([0, 1])
    same = distribute.fingerprint((x + 7, y))  # augmented inputs: same examples
    assert float(distribute.fingerprint((x, y))) == float(same)
    assert float(distribute.fingerprint((x, y))) != float(distribute.fingerprint((x, y[::-1])))
    assert float(distribute.fingerprint((x, y))) != float(distribute.fingerprint((x[:, :1], y)))


@pytest.mark.parametrize("env, expected", [
    ({}, "missing: KERASTUNER_TUNER_ID, KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT"),
    ({"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1"},
     "missing: KERASTUNER_ORACLE_PORT"),
    ({"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
      "KERASTUNER_ORACLE_PORT": "80a"}, "Received: '80a'"),
])
def test_tuner_variables_are_checked(env, expected):
    class Args:
        distributed, connect_timeout = True, 1.0

    with pytest.raises(DistributeError) as e:
        distributed_tune.prepare(Args, environ=env)
    assert expected in str(e.value)


def test_tuner_chief_port_in_use_and_silent_chief():
    class Args:
        distributed, connect_timeout = True, 2.0

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        env = {"KERASTUNER_TUNER_ID": "chief", "KERASTUNER_ORACLE_IP": "127.0.0.1",
               "KERASTUNER_ORACLE_PORT": str(port)}
        with pytest.raises(DistributeError, match=f"port {port} .* in use"):
            distributed_tune.prepare(Args, environ=env)
    env = {"KERASTUNER_TUNER_ID": "tuner0", "KERASTUNER_ORACLE_IP": "127.0.0.1",
           "KERASTUNER_ORACLE_PORT": str(loopback.free_port())}
    with pytest.raises(DistributeError, match="did not answer within 2 s"):
        distributed_tune.prepare(Args, environ=env)
    with pytest.raises(DistributeError, match="pass --distributed"):
        distributed_tune.prepare(type("A", (), {"distributed": False}), environ=env)


def test_rendezvous_names_the_silent_peer_in_bounded_time():
    ports = [loopback.free_port(), loopback.free_port()]
    c = cluster.parse_tf_config(loopback.tf_config(ports, 0))
    started = time.monotonic()
    with pytest.raises(DistributeError, match=f"no answer within 1 s from worker 1 at "
                                              f"127.0.0.1:{ports[1]}"):
        cluster.rendezvous(c, timeout=1)
    assert time.monotonic() - started < 10


def test_rendezvous_meets_a_peer_and_refuses_a_taken_port():
    ports = [loopback.free_port(), loopback.free_port()]
    with socket.socket() as peer:  # worker 1 is up (listening)
        peer.bind(("127.0.0.1", ports[1]))
        peer.listen()
        cluster.rendezvous(cluster.parse_tf_config(loopback.tf_config(ports, 0)), 5)
        with pytest.raises(DistributeError, match=f"port {ports[1]} .* is in use"):
            cluster.rendezvous(cluster.parse_tf_config(loopback.tf_config(ports, 1)), 5)


def test_watchdog_kills_a_stuck_process_with_a_message():
    code = ("import time; from pipelines.common import cluster as d\n"
            "with d.watchdog(30, 'quick'): pass\n"
            "print('passed the quick block', flush=True)\n"
            "with d.watchdog(1, 'worker 0: the cluster did not form', "
            "[('worker 1', '127.0.0.1:1')]): time.sleep(60)\n")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, env=loopback.env(), cwd=loopback.ROOT)
    assert proc.returncode == -9 and "passed the quick block" in proc.stdout
    assert ("error: worker 0: the cluster did not form: no answer from worker 1 at "
            "127.0.0.1:1.") in proc.stderr
    assert time.monotonic() - started < 30
