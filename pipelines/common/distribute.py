"""Training on several devices or machines with TensorFlow's own engines.

``train --distribute MODE`` (``cluster.MODES``; the strategy comes from
``pipelines.common.cluster``):

* ``none``: the default strategy, ``train.fit`` as usual.
* ``mirrored``: ``tf.distribute.MirroredStrategy`` over the local devices (GPUs; with
  ``--cpu-devices N`` the CPU split into N logical devices, a cheap way to run this
  path on one machine), in the custom loop below: Keras 3 ``model.fit`` under this
  strategy fails when a batch does not split evenly over the replicas (an ``AddN``
  shape error), which bucketed batches and last batches do.
* ``multi-worker``: ``tf.distribute.MultiWorkerMirroredStrategy`` across the
  processes or machines of ``TF_CONFIG``. Keras 3 ``model.fit`` fails under this
  strategy (keras-team/keras issue 20585), so ``fit_distributed`` runs a custom loop:
  ``strategy.run`` of a step that calls the task's compiled model
  (``model.compute_loss``, ``model.optimizer``), gradients all-reduced by the
  optimizer; the compiled metrics are computed on validation.

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

Resume, best weights and patience are ``train.RunState``'s, as for ``train.fit``:
after every epoch the chief writes the best weights, every worker saves a
``tf.train.Checkpoint`` (model, optimizer, epoch; the chief into
``<workdir>/checkpoint/backup/ckpt-<epoch>``, keeping the one before too, the others
into temporary directories they then delete), then the chief commits the epoch in
state.json. A restarted job restores the checkpoint of the committed epoch and
continues after it. The work directory must be on a filesystem every worker sees
(NFS, GCS); workers that restore different epochs stop with an error saying so. When
a worker dies, the others fail too (their next collective cannot reach it; they exit
with "lost contact with the cluster"): the cluster manager restarts them all, and
training continues after the last committed epoch.

Only the chief evaluates on the validation split, keeps the best weights, writes
TensorBoard summaries, ``model.keras``, ``history.json`` and exports.
"""

import os
import shutil
import time
import warnings

from pipelines.common import config as config_lib
from pipelines.common import train
from pipelines.common.cluster import (  # noqa: F401  (the CLI's entry points, kept here)
    Cluster,
    DistributeError,
    add_arguments,
    agree,
    strategy_from_args,
)


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
    if strategy is not None:
        return fit_distributed(task, config, workdir, datasets, strategy, verbose, fresh)
    model, info = train.fit(task, config, workdir, datasets, verbose=verbose, fresh=fresh)
    return model, {**info, "chief": True}


def fit_distributed(task, config, workdir, datasets, strategy, verbose=1, fresh=False):
    """The custom loop (see the module docstring) under a mirrored or multi-worker
    strategy; ``(model, info)`` as ``train.fit``, the model a plain (strategy-free)
    copy holding the best weights. ``info`` adds ``chief``, ``weights_digest`` (of
    the last weights: equal on every worker), ``stopped``, ``workers`` and ``seen``
    (this worker's examples per epoch run)."""
    import keras
    import tensorflow as tf

    if getattr(config, "ensemble", 1) > 1:
        raise ValueError(f"ensemble={config.ensemble} is trained member after member on one "
                         "machine; it does not run under --distribute. Use ensemble=1.")
    # One process (mirrored) is a cluster of one worker, the chief.
    cluster = getattr(strategy, "cluster", None) or Cluster({"worker": ["localhost:0"]},
                                                            "worker", 0)
    # Every worker checks the run (same config and data); the chief alone writes it.
    state = train.RunState.open(task, config, workdir, datasets.meta, train.DISTRIBUTED_LOOP,
                                fresh, writer=cluster.is_chief)
    backup = state.paths["backup"]
    # Non-chief workers save too (saving may need collectives) but into their own
    # temporary directory, deleted after each save.
    write_dir = backup if cluster.is_chief else os.path.join(
        state.paths["checkpoint"], f"tmp-{cluster.task_type}-{cluster.task_index}")

    keras.utils.set_random_seed(config.seed)
    with strategy.scope():
        model = train.build(task, config, datasets.meta)
        model.optimizer.build(model.trainable_variables)
        epoch = tf.Variable(0, dtype=tf.int64, trainable=False, name="epoch")
    checkpoint = tf.train.Checkpoint(model=model, optimizer=model.optimizer, epoch=epoch)
    # Two kept: the newest may be of an epoch killed before its commit in state.json.
    manager = tf.train.CheckpointManager(checkpoint, write_dir, max_to_keep=2)
    if state.epoch:
        saved = os.path.join(backup, f"ckpt-{state.epoch}")
        if not os.path.exists(saved + ".index"):
            raise DistributeError(
                f"{state.paths['state']} says epoch {state.epoch} is done but {backup} holds "
                f"no checkpoint of it ({saved}): the work directory {workdir} must be on a "
                "filesystem every worker sees, or pass --fresh.")
        checkpoint.restore(saved).expect_partial()
    start = int(epoch.numpy())
    low, high = agree(strategy, start, "MIN"), agree(strategy, start, "MAX")
    if low != high:
        raise DistributeError(
            f"The workers restored different epochs ({low:.0f} to {high:.0f}): the work "
            f"directory {workdir} must be on a filesystem every worker sees, or pass --fresh.")

    plain = writer = None
    if cluster.is_chief:  # validation, best weights and summaries: the chief alone
        keras.utils.set_random_seed(config.seed)
        plain = train.build(task, config, datasets.meta)  # outside the strategy
        writer = tf.summary.create_file_writer(state.paths["logs"])

    num_replicas = strategy.num_replicas_in_sync
    local = len(strategy.extended.worker_devices)
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: replica_batches(datasets.train, num_replicas,
                                    ctx.input_pipeline_id * local, local))
    step = _train_step(model, strategy, dist.element_spec)

    stopped, seen_per_epoch = state.stopped, []
    try:
        # A run whose patience ran out before the restart has no epoch left.
        for e in range(start, start if stopped else config.epochs):
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
            epoch.assign(e + 1)

            def save_last(number=e + 1):
                manager.save(checkpoint_number=number)

            stop = 0.0
            if cluster.is_chief:
                plain.set_weights(model.get_weights())
                with warnings.catch_warnings():  # bucketed datasets have no length
                    warnings.filterwarnings("ignore", message=".*ran out of data.*")
                    val = plain.evaluate(datasets.valid, verbose=0, return_dict=True)
                logs.update({f"val_{k}": float(v) for k, v in val.items()})
                logs.update(train.validation_logs(task, plain, datasets.valid, config,
                                                  datasets.meta))
                logs.update(examples=int(examples), train_seconds=round(train_seconds, 2))
                stop = float(state.end_epoch(logs, plain.save_weights, save_last))
                _summaries(writer, state.history[-1])
                if verbose:
                    shown = "  ".join(f"{k} {logs[k]:.4f}" for k in logs
                                      if k == "loss" or k.startswith("val_"))
                    print(f"epoch {e + 1}/{config.epochs} ({train_seconds:.1f} s, "
                          f"{examples:.0f} examples): {shown}", flush=True)
            else:
                save_last()
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
    info = {"history": [], "resumed_from": start, "chief": cluster.is_chief,
            "weights_digest": digest, "epochs_run": start + len(seen_per_epoch),
            "stopped": stopped, "workers": cluster.num_workers, "best": None,
            "seen": seen_per_epoch}
    if not cluster.is_chief:
        return model, info
    info.update(state.finish(plain), chief=True)
    # How the run was trained; the digest is the same on every worker (synchronous steps).
    config_lib.write_json(os.path.join(workdir, "distributed.json"), {
        "strategy": type(strategy).__name__, "workers": cluster.num_workers,
        "replicas": strategy.num_replicas_in_sync, "last_weights_digest": digest,
        "examples_per_epoch_on_chief": seen_per_epoch})
    return plain, info


def _summaries(writer, logs):
    """The epoch's float logs as TensorBoard scalars."""
    import tensorflow as tf

    with writer.as_default(step=logs["epoch"]):
        for k, v in logs.items():
            if isinstance(v, float):
                tf.summary.scalar(k, v)
    writer.flush()


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


