"""zoo.optimizers: FusedAdam against a NumPy Adam and Keras' Adam (dense, sparse, a
schedule, mixed precision, a strategy); LazyAdam against a NumPy reference of the lazy
update, plain Adam for dense gradients, untouched embedding rows in a trained model, and
saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.optimizers import FusedAdam, LazyAdam


def lazy_adam_reference(w, steps, lr=0.01, b1=0.9, b2=0.999, eps=1e-7):
    """steps: [(indices, values)], duplicates summed; only those rows move."""
    w, m, v = w.copy(), np.zeros_like(w), np.zeros_like(w)
    for t, (indices, values) in enumerate(steps, start=1):
        g = np.zeros_like(w)
        np.add.at(g, indices, values)
        rows = np.unique(indices)
        alpha = lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t)
        m[rows] = b1 * m[rows] + (1 - b1) * g[rows]
        v[rows] = b2 * v[rows] + (1 - b2) * g[rows] ** 2
        w[rows] -= alpha * m[rows] / (np.sqrt(v[rows]) + eps)
    return w


def adam_reference(w, grads, lrs, b1=0.9, b2=0.999, eps=1e-7):
    w, m, v = w.astype(np.float64), np.zeros(w.shape), np.zeros(w.shape)
    for t, (g, lr) in enumerate(zip(grads, lrs), start=1):
        m = m + (1 - b1) * (g - m)
        v = v + (1 - b2) * (g * g - v)
        w = w - lr * np.sqrt(1 - b2 ** t) / (1 - b1 ** t) * m / (np.sqrt(v) + eps)
    return w


def test_fused_adam_is_adam_for_dense_and_sparse_gradients_and_a_schedule():
    rng = np.random.RandomState(3)
    w0 = rng.randn(6, 4).astype(np.float32)
    schedule = keras.optimizers.schedules.ExponentialDecay(0.05, 1, 0.5)
    fused, plain = FusedAdam(schedule), keras.optimizers.Adam(schedule)
    a, b, c = keras.Variable(w0), keras.Variable(w0), keras.Variable(w0[:, :1])
    dense, lrs = [], []
    for t in range(4):
        indices = rng.randint(0, 6, 5)  # duplicates are summed
        values = rng.randn(5, 4).astype(np.float32)
        g = np.zeros_like(w0)
        np.add.at(g, indices, values)
        dense.append(g)
        lrs.append(0.05 * 0.5 ** t)
        sparse = tf.IndexedSlices(tf.constant(values), tf.constant(indices), (6, 4))
        fused.apply([sparse, tf.constant(g[:, :1])], [a, c])
        # Keras' Adam given the same rows as IndexedSlices squares each duplicate before
        # summing (v gets Σ g_i², not (Σ g_i)²): not Adam's update; given dense, it is
        plain.apply([tf.constant(g)], [b])
    want = adam_reference(w0, dense, lrs)
    np.testing.assert_allclose(a.numpy(), want, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.numpy(), want[:, :1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("how", ["mixed_bfloat16", "strategy", "amsgrad"])
def test_fused_adam_trains_as_adam_under_mixed_precision_a_strategy_and_amsgrad(how):
    def trained(optimizer_class):
        keras.utils.set_random_seed(0)
        policy = keras.mixed_precision.dtype_policy()
        if how == "mixed_bfloat16":
            keras.mixed_precision.set_dtype_policy("mixed_bfloat16")
        strategy = tf.distribute.MirroredStrategy(["/cpu:0"]) if how == "strategy" else None
        try:
            with strategy.scope() if strategy else _nothing():
                model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(8, "tanh"),
                                          keras.layers.Dense(2, dtype="float32")])
                model.compile(optimizer=optimizer_class(0.05, amsgrad=how == "amsgrad",
                                                        global_clipnorm=1.0),
                              loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
            x = np.random.RandomState(4).randn(48, 3).astype(np.float32)
            y = (x[:, 0] < 0.2).astype(np.int32)
            model.fit(x, y, epochs=2, batch_size=16, verbose=0, shuffle=False)
        finally:
            keras.mixed_precision.set_dtype_policy(policy)
        return [w.numpy() for w in model.weights]

    for got, want in zip(trained(FusedAdam), trained(keras.optimizers.Adam)):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_sparse_updates_move_only_the_rows_looked_up_as_the_reference():
    rng = np.random.RandomState(0)
    w0 = rng.randn(10, 3).astype(np.float32)
    steps = [(np.array([2, 5, 2]), rng.randn(3, 3).astype(np.float32)),
             (np.array([5]), rng.randn(1, 3).astype(np.float32)),
             (np.array([7, 2]), rng.randn(2, 3).astype(np.float32))]
    var = keras.Variable(w0)
    opt = LazyAdam(0.01)
    for indices, values in steps:
        opt.apply([tf.IndexedSlices(tf.constant(values), tf.constant(indices), (10, 3))], [var])
    want = lazy_adam_reference(w0, steps)
    np.testing.assert_allclose(var.numpy(), want, rtol=1e-5, atol=1e-6)
    untouched = [0, 1, 3, 4, 6, 8, 9]
    np.testing.assert_array_equal(var.numpy()[untouched], w0[untouched])


def test_dense_gradients_get_plain_adam():
    rng = np.random.RandomState(1)
    w0 = rng.randn(4, 3).astype(np.float32)
    lazy, plain = keras.Variable(w0), keras.Variable(w0)
    opts = LazyAdam(0.01), keras.optimizers.Adam(0.01)
    for _ in range(3):
        g = tf.constant(rng.randn(4, 3).astype(np.float32))
        opts[0].apply([g], [lazy])
        opts[1].apply([g], [plain])
    np.testing.assert_allclose(lazy.numpy(), plain.numpy(), rtol=1e-6, atol=1e-7)


def test_an_embedding_trained_with_it_keeps_unseen_rows_and_saves(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((4,), dtype="int32"), keras.layers.Embedding(50, 8),
                              keras.layers.GlobalAveragePooling1D(), keras.layers.Dense(2)])
    model.compile(optimizer=LazyAdam(0.05, clipnorm=1.0),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    before = model.layers[0].embeddings.numpy().copy()
    x = np.random.RandomState(2).randint(0, 20, (64, 4)).astype(np.int32)  # rows 0..19 only
    y = (x[:, 0] < 10).astype(np.int32)
    history = model.fit(x, y, epochs=3, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    after = model.layers[0].embeddings.numpy()
    np.testing.assert_array_equal(after[20:], before[20:])
    assert not np.allclose(after[:20], before[:20])
    model.save(tmp_path / "m.keras")
    loaded = keras.saving.load_model(tmp_path / "m.keras")
    assert isinstance(loaded.optimizer, LazyAdam) and loaded.optimizer.clipnorm == 1.0
    np.testing.assert_allclose(loaded.predict(x, verbose=0), model.predict(x, verbose=0))


def test_amsgrad_is_refused():
    with pytest.raises(ValueError, match=r"^Expected amsgrad=False: LazyAdam has no amsgrad. "
                                         r"Received: amsgrad=True$"):
        LazyAdam(amsgrad=True)


def test_the_config_chooses_the_optimizer():
    from pipelines.common import config as config_lib
    from pipelines.sentiment.config import PRESETS

    for name, kind in (("adam", keras.optimizers.Adam), ("fused_adam", FusedAdam),
                       ("lazy_adam", LazyAdam)):
        opt = config_lib.adam(config_lib.override(PRESETS["small"], [f"optimizer={name}"]))
        assert type(opt) is kind and opt.clipnorm == PRESETS["small"].clipnorm
