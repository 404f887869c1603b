"""zoo.optimizers.LazyAdam: a NumPy reference of the lazy update, plain Adam for dense
gradients, untouched embedding rows in a trained model, and saving."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from zoo.optimizers import LazyAdam


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
    np.testing.assert_array_equal(lazy.numpy(), plain.numpy())


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
