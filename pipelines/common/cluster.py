"""Cluster set-up for ``train --distribute``: the strategy, and failures that are bounded.

``make_strategy`` (``strategy_from_args`` from the CLI flags of ``add_arguments``) gives
the ``tf.distribute`` strategy of a mode (``MODES``); ``pipelines.common.distribute``
trains under it.

* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local devices (with
  ``--cpu-devices N`` the CPU split into N logical devices).
* ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the processes
  or machines of the standard ``TF_CONFIG`` environment variable::

      {"cluster": {"worker": ["host1:port", "host2:port"]},
       "task": {"type": "worker", "index": 0}}

Bounded failure: a malformed ``TF_CONFIG`` (``parse_tf_config``), a port in use and
peers that never join (``connect_timeout`` seconds, naming the peers whose port does
not answer) are errors, never hangs: before TensorFlow starts, each task listens on its
own port until every peer's port answers (``rendezvous``); a cluster that still does
not form is ended by a watcher process (``watchdog``, running
``python -m pipelines.common.watcher``).
"""

import contextlib
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time

from pipelines.common import config as config_lib

MODES = ("none", "mirrored", "multi-worker")
JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's jobs (plus "evaluator", unused)
# The directory holding the ``pipelines`` package (child processes must import it).
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class DistributeError(config_lib.ConfigError):
    """A cluster that cannot work: bad TF_CONFIG, port in use, unreachable peer."""


# ----------------------------------------------------------------------------- TF_CONFIG


@dataclasses.dataclass(frozen=True)
class Cluster:
    """The parsed ``TF_CONFIG``: ``jobs`` {job: [host:port]}, this task's type and index."""

    jobs: dict
    task_type: str
    task_index: int

    @property
    def address(self):
        return self.jobs[self.task_type][self.task_index]

    @property
    def tasks(self):
        """[(name, address)] of every task, chief first: "chief 0", "worker 1"..."""
        return [(f"{job} {i}", a) for job in JOBS for i, a in enumerate(self.jobs.get(job, []))]

    @property
    def peers(self):
        return [(n, a) for n, a in self.tasks if n != f"{self.task_type} {self.task_index}"]

    @property
    def num_workers(self):
        return len(self.tasks)

    @property
    def is_chief(self):
        """The chief task, or worker 0 when the cluster has no chief job."""
        if "chief" in self.jobs:
            return self.task_type == "chief"
        return self.task_index == 0

    @property
    def rank(self):
        return [n for n, _ in self.tasks].index(f"{self.task_type} {self.task_index}")


def parse_tf_config(text):
    """Checks a ``TF_CONFIG`` string; returns a ``Cluster``. Raises DistributeError
    naming the bad field and value."""
    if not text or not text.strip():
        raise DistributeError(
            "--distribute multi-worker needs the TF_CONFIG environment variable, e.g. "
            '{"cluster": {"worker": ["host1:12345", "host2:12345"]}, '
            '"task": {"type": "worker", "index": 0}}'
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DistributeError(f"TF_CONFIG is not valid JSON ({e}). Received: {text!r}") from None
    if not isinstance(data, dict):
        raise DistributeError(f"TF_CONFIG must be a JSON object. Received: {text!r}")
    cluster, task = data.get("cluster"), data.get("task")
    if not isinstance(cluster, dict) or not cluster:
        raise DistributeError(f'TF_CONFIG needs "cluster": {{"worker": ["host:port", ...]}}. '
                              f"Received: cluster={cluster!r}")
    unknown = sorted(set(cluster) - set(JOBS) - {"evaluator"})
    if unknown:
        raise DistributeError(
            f"TF_CONFIG cluster jobs {unknown} are not supported: MultiWorkerMirroredStrategy "
            f"takes 'chief' and 'worker' (no parameter servers). Received: {sorted(cluster)}"
        )
    jobs = {}
    for job in JOBS:
        if job not in cluster:
            continue
        addresses = cluster[job]
        if not isinstance(addresses, list) or not addresses:
            raise DistributeError(f"TF_CONFIG cluster.{job} must be a non-empty list of "
                                  f"'host:port'. Received: {addresses!r}")
        for a in addresses:
            _split_address(a, f"cluster.{job}")
        jobs[job] = list(addresses)
    if len(cluster.get("chief", [])) > 1:
        raise DistributeError(f"TF_CONFIG may have one chief. Received: {cluster['chief']!r}")
    if not jobs:
        raise DistributeError(f"TF_CONFIG cluster has no 'worker' job. Received: {cluster!r}")
    if not isinstance(task, dict) or "type" not in task or "index" not in task:
        raise DistributeError(f'TF_CONFIG needs "task": {{"type": "worker", "index": N}}. '
                              f"Received: task={task!r}")
    kind, index = task["type"], task["index"]
    if kind not in jobs:
        raise DistributeError(f"TF_CONFIG task.type {kind!r} is not a job of the cluster "
                              f"{sorted(jobs)}.")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(jobs[kind]):
        raise DistributeError(f"TF_CONFIG task.index must be in [0, {len(jobs[kind])}) for "
                              f"job {kind!r}. Received: index={index!r}")
    return Cluster(jobs, kind, index)


def _split_address(address, where="address"):
    host, sep, port = str(address).rpartition(":")
    if not (isinstance(address, str) and sep and host and port.isdigit()
            and 0 < int(port) < 65536):
        raise DistributeError(f"TF_CONFIG {where}: expected 'host:port'. Received: {address!r}")
    return host.strip("[]"), int(port)


# ------------------------------------------------------------------- bounded connectivity


def port_in_use(port):
    """True if this machine cannot listen on ``port`` (another process holds it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # As the gRPC server does: connections of a previous run in TIME_WAIT do not count.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            return True
    return False


def answers(address, timeout=1.0):
    """True if ``host:port`` accepts a TCP connection within ``timeout`` seconds."""
    host, port = _split_address(address)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(address, timeout, poll=0.5):
    """Waits until ``address`` accepts a TCP connection; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        if answers(address, timeout=min(2.0, max(0.1, deadline - time.monotonic()))):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


# A separate process watches the cluster start: TensorFlow's collective setup waits
# TensorFlow's collective setup waits forever for a missing peer without releasing the
# GIL (a thread cannot step in) and the strategy catches SIGTERM: a separate process
# (pipelines/common/watcher.py) prints the message and SIGKILLs us at the deadline.
@contextlib.contextmanager
def watchdog(seconds, message, peers=()):
    """Kills this process (SIGKILL, after printing ``error: message: ...`` naming the
    ``peers`` [(name, address)] that do not answer) unless the block ends in time."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (ROOT, env.get("PYTHONPATH")) if p)
    watcher = subprocess.Popen(
        [sys.executable, "-m", "pipelines.common.watcher", str(os.getpid()), str(seconds),
         message, *(f"{n}={a}" for n, a in peers)], stdin=subprocess.PIPE, env=env)
    try:
        yield
    finally:
        watcher.stdin.close()  # the block ended: the watcher exits quietly
        watcher.wait()


def rendezvous(cluster, timeout, poll=0.5):
    """Waits until every peer's port answers, listening on ours meanwhile (then
    released for TensorFlow). Raises DistributeError naming the silent peers."""
    host, port = _split_address(cluster.address)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("", port))
        except OSError:
            raise DistributeError(f"{cluster.task_type} {cluster.task_index}: port {port} "
                                  f"({cluster.address} in TF_CONFIG) is in use on this "
                                  "machine.") from None
        s.listen(64)
        deadline = time.monotonic() + timeout
        waiting = list(cluster.peers)
        while waiting:
            waiting = [(n, a) for n, a in waiting if not answers(a, timeout=1.0)]
            if waiting and time.monotonic() >= deadline:
                silent = ", ".join(f"{n} at {a}" for n, a in waiting)
                raise DistributeError(
                    f"{cluster.task_type} {cluster.task_index}: no answer within {timeout:.0f} s "
                    f"from {silent}. Start every task of TF_CONFIG (same cluster, its own "
                    "task), check the addresses and firewalls, or raise --connect-timeout.")
            if waiting:
                time.sleep(poll)


# -------------------------------------------------------------------------- strategies


def add_arguments(parser):
    """The ``train``/``run`` flags: --distribute, --cpu-devices, --connect-timeout."""
    parser.add_argument("--distribute", choices=MODES, default="none",
                        help="none (default); mirrored: the local devices; multi-worker: "
                        "the machines in TF_CONFIG")
    parser.add_argument("--cpu-devices", type=int, default=0, metavar="N",
                        help="mirrored: split the CPU into N logical devices (no GPU)")
    parser.add_argument("--connect-timeout", type=float, default=120.0, metavar="S",
                        help="multi-worker: seconds to wait for every peer (default %(default)s)")


def make_strategy(mode="none", cpu_devices=0, connect_timeout=120.0, environ=None):
    """The strategy for ``mode`` (None for "none"); call it before any TensorFlow op.

    ``multi-worker`` reads ``TF_CONFIG`` from ``environ`` (default os.environ), checks
    it and this task's port, and waits at most ``connect_timeout`` seconds for the
    cluster to form (DistributeError naming the silent peers; see ``rendezvous``).
    """
    import tensorflow as tf

    if mode not in MODES:
        raise DistributeError(f"Expected --distribute in {MODES}. Received: {mode!r}")
    if cpu_devices and mode != "mirrored":
        raise DistributeError(f"--cpu-devices is for --distribute mirrored. Received: {mode!r}")
    if mode == "none":
        return None
    if mode == "mirrored":
        if cpu_devices:
            if cpu_devices < 1:
                raise DistributeError(f"Expected --cpu-devices >= 1. Received: {cpu_devices}")
            cpu = tf.config.list_physical_devices("CPU")[0]
            try:
                tf.config.set_logical_device_configuration(
                    cpu, [tf.config.LogicalDeviceConfiguration()] * cpu_devices)
            except RuntimeError:
                raise DistributeError("--cpu-devices must be set before TensorFlow starts "
                                      "(run it as a new process).") from None
        return tf.distribute.MirroredStrategy()
    environ = os.environ if environ is None else environ
    cluster = parse_tf_config(environ.get("TF_CONFIG", ""))
    started = time.monotonic()
    rendezvous(cluster, connect_timeout)  # every peer's port answers (or a clear error)
    left = max(30.0, connect_timeout - (time.monotonic() - started))
    with watchdog(left, f"{cluster.task_type} {cluster.task_index}: the cluster did not "
                  f"form within {left:.0f} s", cluster.peers):
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
        agree(strategy, 0.0)  # the first collective: every worker is there
    strategy.cluster = cluster
    return strategy


def strategy_from_args(args):
    """``make_strategy`` from parsed CLI flags (commands without them: None)."""
    return make_strategy(getattr(args, "distribute", "none"), getattr(args, "cpu_devices", 0),
                         getattr(args, "connect_timeout", 120.0))


def agree(strategy, value, op="MAX"):
    """The ``op`` ("MAX", "MIN", "SUM") of a Python number over all replicas (a
    collective: every worker must call it at the same point)."""
    import tensorflow as tf

    functions = strategy.__dict__.setdefault("_seqzoo_agree", {})
    if op not in functions:
        reducer = {"MAX": tf.reduce_max, "MIN": tf.reduce_min, "SUM": tf.reduce_sum}[op]

        def reduce(v):  # all_reduce has SUM and MEAN only
            return reducer(tf.distribute.get_replica_context().all_gather(v[None], axis=0))

        @tf.function
        def run(v):
            return strategy.run(reduce, args=(v,))

        functions[op] = run
    result = functions[op](tf.constant(float(value), tf.float32))
    return float(strategy.experimental_local_results(result)[0])

