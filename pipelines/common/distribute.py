"""Training on several devices or machines with TensorFlow's own engines.

``train --distribute MODE`` (MODES):

* ``none``: the default strategy, ``train.fit`` as usual.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local devices (GPUs; with
  ``--cpu-devices N`` the CPU split into N logical devices, a cheap way to run this
  path on one machine), in the custom loop below: Keras 3 ``model.fit`` under this
  strategy fails when a batch does not split evenly over the replicas (an ``AddN``
  shape error), which bucketed batches and last batches do.
* ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across processes or
  machines described by the standard ``TF_CONFIG`` environment variable::

      {"cluster": {"worker": ["host1:port", "host2:port"]},
       "task": {"type": "worker", "index": 0}}

  Keras 3 ``model.fit`` fails under this strategy (keras-team/keras issue 20585), so
  ``fit_distributed`` runs a custom loop: ``strategy.run`` of a step that calls the
  task's compiled model (``model.compute_loss``, ``model.optimizer``), gradients
  all-reduced by the optimizer; the compiled metrics are computed on validation.

Data: each batch of the task's chain is a *global* batch of ``config.batch_size``
examples. Every worker runs the same chain and keeps its replicas' rows of each batch
(``replica_batches``): replica r of R gets rows [r*B/R, (r+1)*B/R), so an epoch shows
every example once, the replicas' shares differ by at most one row, and every worker
runs the same number of steps. This needs the chain to give the same batches in the
same order on every worker (a seeded shuffle); each step checks a fingerprint of the
global batch's targets and shapes across workers and stops with an error otherwise.
Replica r's loss is its mean loss weighted by its share n_r/B, so the summed
gradient is the gradient of the global batch's mean loss (exactly so for per-example
losses; masked per-step losses are averaged per replica first). As under
``model.fit`` with any strategy, ``clipnorm`` clips each replica's gradient before the
all-reduce.

Fault tolerance, as TensorFlow's guide describes for custom loops (the Keras
``BackupAndRestore`` scheme): after every epoch all workers save a
``tf.train.Checkpoint`` (model, optimizer, epoch), the chief into
``<workdir>/checkpoint/backup`` and the others into temporary directories they then
delete; a restarted job restores the chief's latest checkpoint and continues after
that epoch. The work directory must be on a filesystem every worker sees (NFS, GCS);
workers that restore different epochs stop with an error saying so. When a worker
dies, the others fail too (their next collective cannot reach it; they exit with
"lost contact with the cluster"): the cluster manager restarts them all, and training
continues after the last saved epoch.

Only the chief evaluates on the validation split, keeps the best weights, writes
TensorBoard summaries, ``model.keras``, ``history.json`` and exports.

Bounded failure: a malformed ``TF_CONFIG``, a port in use and peers that never join
(``connect_timeout`` seconds, naming the peers whose port does not answer) are errors,
never hangs: before TensorFlow starts, each task listens on its own port until every
peer's port answers (``rendezvous``); a cluster that still does not form is ended by a
watcher process (``watchdog``).
"""

import contextlib
import dataclasses
import json
import os
import shutil
import socket
import sys
import time
import warnings

from pipelines.common import config as config_lib

MODES = ("none", "mirrored", "multi-worker")
JOBS = ("chief", "worker")  # MultiWorkerMirroredStrategy's jobs (plus "evaluator", unused)


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
# forever for a missing peer without releasing the GIL (a thread cannot step in) and
# the strategy catches SIGTERM. At the deadline it prints the message and SIGKILLs us.
_WATCHER = """
import os, signal, socket, sys, threading
pid, seconds, message, peers = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], sys.argv[4:]
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
if not done.wait(seconds):
    def silent(address):
        host, _, port = address.rpartition(":")
        try:
            socket.create_connection((host.strip("[]"), int(port)), timeout=1).close()
            return False
        except OSError:
            return True
    names = [p.split("=", 1) for p in peers]
    quiet = [f"{n} at {a}" for n, a in names if silent(a)]
    detail = (f"no answer from {', '.join(quiet)}" if quiet else
              "the peers answer but the cluster did not form (check that every task has "
              "the same TF_CONFIG cluster and its own task)")
    sys.stderr.write(f"error: {message}: {detail}.\\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
"""


@contextlib.contextmanager
def watchdog(seconds, message, peers=()):
    """Kills this process (SIGKILL, after printing ``error: message: ...`` naming the
    ``peers`` [(name, address)] that do not answer) unless the block ends in time."""
    import subprocess

    watcher = subprocess.Popen(
        [sys.executable, "-c", _WATCHER, str(os.getpid()), str(seconds), message,
         *(f"{n}={a}" for n, a in peers)], stdin=subprocess.PIPE)
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


# ---------------------------------------------------------------------------- the data


def replica_batches(dataset, num_replicas, first_replica=0, local_replicas=1):
    """This worker's share of every global batch of ``dataset``.

    Each element of ``dataset`` is a global batch (a structure of tensors with the
    batch first, B rows). For each one, yields ``local_replicas`` elements, one per
    replica ``first_replica + j``: {"data": rows [r*B//R, (r+1)*B//R) of the batch,
    "rows": B, "fingerprint": a float32 hash of the batch's targets and shapes}.
    """
    import tensorflow as tf

    if not 0 <= first_replica < first_replica + local_replicas <= num_replicas:
        raise ValueError(f"Expected 0 <= first_replica < first_replica + local_replicas <= "
                         f"num_replicas. Received: {first_replica=}, {local_replicas=}, "
                         f"{num_replicas=}")

    def split(*batch):
        batch = batch[0] if len(batch) == 1 else batch
        rows = tf.shape(tf.nest.flatten(batch)[0])[0]
        fp = fingerprint(batch)

        def piece(r):
            r = tf.cast(r, tf.int32)
            start, stop = (r * rows) // num_replicas, ((r + 1) * rows) // num_replicas
            part = tf.nest.map_structure(lambda t: t[start:stop], batch)
            return {"data": part, "rows": rows, "fingerprint": fp}

        return tf.data.Dataset.range(first_replica, first_replica + local_replicas).map(piece)

    return dataset.flat_map(split)


def fingerprint(batch):
    """A float32 hash (< 2**24, exact) of a batch's targets and its tensors' shapes.

    Inputs are left out: random augmentation (word dropout) may differ per worker
    without harm; the same targets in the same order and shapes mean the same examples.
    """
    import keras
    import tensorflow as tf

    x, y, w = keras.utils.unpack_x_y_sample_weight(
        tuple(batch) if isinstance(batch, (tuple, list)) else batch)
    parts = [tf.io.serialize_tensor(t) for t in tf.nest.flatten(y)]
    parts += [tf.strings.reduce_join(tf.strings.as_string(tf.shape(t)), separator=",")
              for t in tf.nest.flatten((x, w)) if t is not None]
    joined = tf.strings.reduce_join(tf.stack(parts), separator="|")
    return tf.cast(tf.strings.to_hash_bucket_fast(joined, 2 ** 24), tf.float32)


# ------------------------------------------------------------------------- the training


def fit(task, config, workdir, datasets, strategy=None, verbose=1, fresh=False):
    """``train.fit`` under ``strategy``: the same ``(model, info)``; ``info["chief"]``
    says whether this process writes artifacts."""
    from pipelines.common import train

    if strategy is not None:
        return fit_distributed(task, config, workdir, datasets, strategy, verbose, fresh)
    model, info = train.fit(task, config, workdir, datasets, verbose=verbose, fresh=fresh)
    return model, {**info, "chief": True}


def fit_distributed(task, config, workdir, datasets, strategy, verbose=1, fresh=False):
    """The custom loop (see the module docstring) under a mirrored or multi-worker
    strategy; ``(model, info)`` as ``train.fit``, the model a plain (strategy-free)
    copy holding the best weights."""
    import keras
    import tensorflow as tf

    from pipelines.common import train

    if getattr(config, "ensemble", 1) > 1:
        raise ValueError(f"ensemble={config.ensemble} is trained member after member on one "
                         "machine; it does not run under --distribute. Use ensemble=1.")
    # One process (mirrored) is a cluster of one worker, the chief.
    cluster = getattr(strategy, "cluster", None) or Cluster({"worker": ["localhost:0"]},
                                                            "worker", 0)
    p = train.paths(workdir)
    backup = os.path.join(p["checkpoint"], "backup")
    # Non-chief workers save too (saving may need collectives) but into their own
    # temporary directory, deleted after each save.
    write_dir = backup if cluster.is_chief else os.path.join(
        p["checkpoint"], f"tmp-{cluster.task_type}-{cluster.task_index}")
    resumable = not fresh and tf.train.latest_checkpoint(backup) is not None
    if resumable:
        _check_same_run(p, config, datasets.meta)
    if cluster.is_chief:
        if not resumable:
            shutil.rmtree(p["checkpoint"], ignore_errors=True)
        os.makedirs(p["checkpoint"], exist_ok=True)
        config_lib.save(config, p["config"])
        config_lib.write_json(p["meta"], dict(datasets.meta))

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = task.build_model(config, datasets.meta)
        model.optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=1)
    if resumable:
        checkpoint.restore(tf.train.latest_checkpoint(backup)).expect_partial()
    start = int(epoch.numpy())
    low, high = agree(strategy, start, "MIN"), agree(strategy, start, "MAX")
    if low != high:
        raise DistributeError(
            f"The workers restored different epochs ({low:.0f} to {high:.0f}): the work "
            f"directory {workdir} must be on a filesystem every worker sees, or pass --fresh.")

    plain = None
    history = []
    if cluster.is_chief:  # validation, best weights and summaries: the chief alone
        keras.utils.set_random_seed(config.seed)
        plain = task.build_model(config, datasets.meta)  # outside the strategy
        history = _read_history(p, start)
        writer = tf.summary.create_file_writer(p["logs"])

    num_replicas = strategy.num_replicas_in_sync
    local = len(strategy.extended.worker_devices)
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: replica_batches(datasets.train, num_replicas,
                                    ctx.input_pipeline_id * local, local))
    step = _train_step(model, strategy, dist.element_spec)

    stopped, seen_per_epoch = False, []
    try:
        for e in range(start, config.epochs):
            started, total, count, seen = time.time(), 0.0, 0, 0
            for batch in dist:
                loss, rows, local_rows, mismatch = step(batch)
                if mismatch:
                    raise DistributeError(
                        f"{task.name}: the workers' training batches differ (step {count + 1} of "
                        f"epoch {e + 1}): the task's tf.data chain must give the same batches in "
                        "the same order on every worker (seed its shuffle).")
                total += float(loss) * int(rows)
                count, seen = count + int(rows), seen + int(local_rows)
            train_seconds = time.time() - started
            logs = {"loss": total / max(count, 1)}
            examples = agree(strategy, seen, "SUM")
            seen_per_epoch.append(seen)
            stop = 0.0
            if cluster.is_chief:
                plain.set_weights(model.get_weights())
                with warnings.catch_warnings():  # bucketed datasets have no length
                    warnings.filterwarnings("ignore", message=".*ran out of data.*")
                    val = plain.evaluate(datasets.valid, verbose=0, return_dict=True)
                logs.update({f"val_{k}": float(v) for k, v in val.items()})
                history.append({"epoch": e + 1, **logs, "examples": int(examples),
                                "train_seconds": round(train_seconds, 2)})
                config_lib.write_json(os.path.join(p["checkpoint"], "history.json"), history)
                stop = float(_after_epoch(task, config, p, plain, history, writer))
                if verbose:
                    shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items())
                    print(f"epoch {e + 1}/{config.epochs} ({train_seconds:.1f} s, "
                          f"{examples:.0f} examples): {shown}", flush=True)
            epoch.assign(e + 1)
            manager.save()
            if not cluster.is_chief:
                shutil.rmtree(write_dir, ignore_errors=True)
            if agree(strategy, stop, "MAX"):
                stopped = True
                break
    except _lost_peer_errors() as e:
        detail = str(e).strip().split("\n")[0][:200]
        raise DistributeError(
            f"{cluster.task_type} {cluster.task_index}: lost contact with the cluster "
            f"({type(e).__name__}: {detail}). A task stopped: restart every task with the "
            f"same command; training resumes after the last epoch saved in {backup}.") from None

    digest = weights_digest(model.get_weights())
    info = {"history": history, "resumed_from": start, "chief": cluster.is_chief,
            "weights_digest": digest, "epochs_run": start + len(seen_per_epoch),
            "stopped": stopped, "workers": cluster.num_workers, "best": None,
            "seen": seen_per_epoch}
    if not cluster.is_chief:
        return model, info
    if not history:
        raise DistributeError(f"{workdir}: no epoch was run (epochs={config.epochs}).")
    plain.load_weights(p["best"])
    tmp = p["model"].replace(".keras", ".tmp.keras")
    plain.save(tmp)
    os.replace(tmp, p["model"])
    config_lib.write_json(p["history"], history)
    info["best"] = _best(task, history)[1]
    # How the run was trained; the digest is the same on every worker (synchronous steps).
    config_lib.write_json(os.path.join(workdir, "distributed.json"), {
        "strategy": type(strategy).__name__, "workers": cluster.num_workers,
        "replicas": strategy.num_replicas_in_sync, "last_weights_digest": digest,
        "examples_per_epoch_on_chief": seen_per_epoch})
    return plain, info


def weights_digest(weights):
    """A short SHA-1 of a list of arrays (their bytes): equal digests, equal weights."""
    import hashlib

    import numpy as np

    h = hashlib.sha1()
    for w in weights:
        h.update(np.ascontiguousarray(w).tobytes())
    return h.hexdigest()[:16]


def _lost_peer_errors():
    import tensorflow as tf

    return (tf.errors.UnavailableError, tf.errors.CancelledError, tf.errors.AbortedError,
            tf.errors.DeadlineExceededError, tf.errors.InternalError)


def _train_step(model, strategy, element_spec):
    """A tf.function running one global batch on every replica; returns (mean loss
    of the global batch, its rows, this worker's rows, fingerprints differ)."""
    import keras
    import tensorflow as tf

    num_replicas = strategy.num_replicas_in_sync

    def replica_step(element):
        x, y, w = keras.utils.unpack_x_y_sample_weight(element["data"])
        rows = tf.shape(tf.nest.flatten(x)[0])[0]
        share = tf.cast(rows, tf.float32) / tf.cast(element["rows"], tf.float32)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            # compute_loss: this replica's mean, already divided by num_replicas.
            loss = model.compute_loss(x, y, y_pred, w, training=True)
            loss = tf.cast(loss, tf.float32) * (num_replicas * share)
        grads = tape.gradient(loss, model.trainable_variables)
        model.optimizer.apply(grads, model.trainable_variables)
        # No model.compute_metrics here: its variables, created on the first call inside
        # the step, break the step under MirroredStrategy; the chief's validation
        # computes every compiled metric.
        ctx = tf.distribute.get_replica_context()
        fp = element["fingerprint"]
        fps = ctx.all_gather(fp[None], axis=0)  # (num_replicas,)
        return loss, element["rows"], rows, tf.reduce_max(fps) > tf.reduce_min(fps)

    @tf.function(input_signature=[element_spec])
    def step(batch):
        loss, rows, local_rows, mismatch = strategy.run(replica_step, args=(batch,))
        local = strategy.experimental_local_results
        return (strategy.reduce("SUM", loss, axis=None), local(rows)[0],
                tf.add_n(list(local(local_rows))), local(mismatch)[0])

    return step


def _check_same_run(p, config, meta):
    from pipelines.common.train import ResumeError

    saved = config_lib.read_json(p["config"]) if os.path.exists(p["config"]) else None
    if saved != config_lib.to_dict(config):
        raise ResumeError(f"{p['checkpoint']} holds an unfinished run with a different config. "
                          "Resume it with the same settings, or pass --fresh.")
    if config_lib.read_json(p["meta"]) != json.loads(json.dumps(dict(meta))):
        raise ResumeError(f"{p['checkpoint']} holds an unfinished run on different data. "
                          "Pass another --workdir, or --fresh.")


def _read_history(p, epochs):
    """The chief's per-epoch logs of the epochs the restored checkpoint holds."""
    path = os.path.join(p["checkpoint"], "history.json")
    history = config_lib.read_json(path) if epochs and os.path.exists(path) else []
    return [h for h in history if h["epoch"] <= epochs]


def _best(task, history):
    """(epoch, value) of the best monitored value (the earliest on ties)."""
    values = [(h[task.monitor], h["epoch"]) for h in history if task.monitor in h]
    if not values:
        raise ValueError(f"Monitored metric {task.monitor!r} not in logs {sorted(history[-1])}")
    sign = 1.0 if task.monitor_mode == "min" else -1.0
    value, epoch = min(values, key=lambda ve: (sign * ve[0], ve[1]))
    return epoch, value


def _after_epoch(task, config, p, plain, history, writer):
    """Chief: best weights, summaries; returns True when patience is exhausted."""
    import tensorflow as tf

    best_epoch, _ = _best(task, history)
    if best_epoch == history[-1]["epoch"]:
        tmp = p["best"].replace(".weights.h5", ".tmp.weights.h5")
        plain.save_weights(tmp)
        os.replace(tmp, p["best"])
    with writer.as_default(step=history[-1]["epoch"]):
        for k, v in history[-1].items():
            if isinstance(v, float):
                tf.summary.scalar(k, v)
    writer.flush()
    wait = history[-1]["epoch"] - best_epoch
    return bool(config.patience) and wait >= config.patience
