"""zoo.layers.crf against brute-force enumeration of every tag sequence."""

import itertools

import keras
import numpy as np
import pytest

from zoo.layers.crf import CRF, crf_decode, crf_log_partition, crf_loss, crf_sequence_score


def brute_force(u, a, s, e):
    """log Z, the best path and the score function of one sentence, by enumeration.

    u (T, K) emissions, a (K, K) transitions, s/e (K) start/end scores."""
    t, k = u.shape

    def score(y):
        return (s[y[0]] + sum(u[i, y[i]] for i in range(t))
                + sum(a[y[i - 1], y[i]] for i in range(1, t)) + e[y[-1]])

    paths = list(itertools.product(range(k), repeat=t))
    scores = np.array([score(y) for y in paths])
    log_z = np.log(np.sum(np.exp(scores - scores.max()))) + scores.max()
    return log_z, list(paths[int(np.argmax(scores))]), score


def _layer(k, seed):
    rng = np.random.RandomState(seed)
    crf = CRF()
    crf.build((None, None, k))
    a, s, e = rng.randn(k, k), rng.randn(k), rng.randn(k)
    crf.set_weights([a, s, e])
    return crf, a, s, e


@pytest.mark.parametrize("lengths", [(4, 2, 1, 3), (1,), (3, 3)])
def test_log_z_path_and_score_match_enumeration(lengths):
    k, width = 3, max(lengths)
    crf, a, s, e = _layer(k, seed=len(lengths))
    rng = np.random.RandomState(7)
    u = rng.randn(len(lengths), width, k).astype("float32")
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    potentials = crf(u, mask=mask)
    log_z = keras.ops.convert_to_numpy(crf_log_partition(potentials))
    best = keras.ops.convert_to_numpy(crf_decode(potentials))
    tags = rng.randint(0, k, size=(len(lengths), width))
    tags = np.where(mask, tags, -1)
    gold = keras.ops.convert_to_numpy(crf_sequence_score(potentials, tags))
    loss = keras.ops.convert_to_numpy(crf_loss(tags.astype("float32"), potentials))
    for b, n in enumerate(lengths):
        want_z, want_path, score = brute_force(u[b, :n], a, s, e)
        np.testing.assert_allclose(log_z[b], want_z, rtol=1e-5, atol=1e-4)
        assert best[b, :n].tolist() == want_path
        np.testing.assert_allclose(gold[b], score(list(tags[b, :n])), rtol=1e-5, atol=1e-4)
        np.testing.assert_allclose(loss[b], want_z - score(list(tags[b, :n])), rtol=1e-5, atol=1e-4)


def test_probabilities_sum_to_one_and_empty_sequence_has_zero_loss():
    k = 2
    crf, a, s, e = _layer(k, seed=3)
    u = np.random.RandomState(0).randn(2, 3, k).astype("float32")
    mask = np.array([[True, True, True], [False, False, False]])
    potentials = crf(u, mask=mask)
    total = 0.0
    for y in itertools.product(range(k), repeat=3):
        nll = keras.ops.convert_to_numpy(crf_loss(np.array([y, [-1] * 3]), potentials))
        total += np.exp(-nll[0])
        assert nll[1] == pytest.approx(0.0, abs=1e-6)
    assert total == pytest.approx(1.0, rel=1e-5)


def test_padding_does_not_change_loss_or_path():
    crf, *_ = _layer(4, seed=5)
    u = np.random.RandomState(1).randn(1, 3, 4).astype("float32")
    padded = np.concatenate([u, np.random.RandomState(2).randn(1, 4, 4).astype("float32")], 1)
    tags = np.array([[1, 3, 0]])
    short = crf(u)
    long = crf(padded, mask=np.array([[True] * 3 + [False] * 4]))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(crf_loss(tags, short)),
                               keras.ops.convert_to_numpy(crf_loss(np.pad(tags, [[0, 0], [0, 4]], constant_values=-1), long)),
                               rtol=1e-6)
    assert (keras.ops.convert_to_numpy(crf_decode(long))[0, :3]
            == keras.ops.convert_to_numpy(crf_decode(short))[0]).all()


def test_gradient_of_loss_is_expected_minus_observed_counts():
    """d(-log P)/dU[t, j] = P(y_t = j) - [y_t = j]: checked against enumeration."""
    import tensorflow as tf

    k, t = 3, 3
    crf, a, s, e = _layer(k, seed=9)
    u = tf.Variable(np.random.RandomState(4).randn(1, t, k).astype("float32"))
    tags = np.array([[2, 0, 1]])
    with tf.GradientTape() as tape:
        loss = crf_loss(tags, crf(u))[0]
    grad = tape.gradient(loss, u).numpy()[0]
    log_z, _, score = brute_force(u.numpy()[0], a, s, e)
    marginal = np.zeros((t, k))
    for y in itertools.product(range(k), repeat=t):
        p = np.exp(score(list(y)) - log_z)
        for i, j in enumerate(y):
            marginal[i, j] += p
    np.testing.assert_allclose(grad, marginal - np.eye(k)[tags[0]], atol=1e-5)


def test_config_round_trip_and_saved_model(tmp_path):
    inputs = keras.Input((None, 3))
    masked = keras.layers.Masking()(inputs)
    model = keras.Model(inputs, CRF(name="crf")(masked))
    model.compile(loss=crf_loss, optimizer="adam")
    x = np.random.RandomState(0).randn(2, 4, 3).astype("float32")
    x[1, 2:] = 0.0
    y = np.array([[0, 1, 2, 1], [2, 2, -1, -1]])
    model.fit(x, y, epochs=1, verbose=0)
    path = str(tmp_path / "crf.keras")
    model.save(path)
    again = keras.models.load_model(path)
    np.testing.assert_allclose(again.predict(x, verbose=0), model.predict(x, verbose=0), rtol=1e-6)
    assert isinstance(again.get_layer("crf"), CRF)
    assert CRF.from_config(model.get_layer("crf").get_config()).use_boundary


def test_learns_a_transition_rule():
    """Emissions say nothing about tag 2 vs 1; the transition 'after 0 comes 2' is learned."""
    rng = np.random.RandomState(0)
    n, t = 256, 6
    first = rng.randint(0, 2, size=(n, t))
    x = np.eye(2, dtype="float32")[first]  # features: is the tag 0 or not
    y = np.where(first == 0, 0, 1)
    y[:, 1:] = np.where((first[:, 1:] == 1) & (first[:, :-1] == 0), 2, y[:, 1:])
    inputs = keras.Input((None, 2))
    potentials = CRF()(keras.layers.Dense(3)(inputs))
    model = keras.Model(inputs, potentials)
    model.compile(loss=crf_loss, optimizer=keras.optimizers.Adam(0.1))
    keras.utils.set_random_seed(0)
    model.fit(x, y, epochs=30, batch_size=64, verbose=0)
    decoded = keras.ops.convert_to_numpy(crf_decode(model.predict(x, verbose=0)))
    assert (decoded == y).mean() > 0.99


def _decode_in_graph(potentials):
    """crf_decode traced with unknown batch and time, as in an exported signature."""
    import tensorflow as tf

    k = potentials.shape[-1]
    fn = tf.function(crf_decode, input_signature=[tf.TensorSpec((None, None, k, k), tf.float32)])
    return fn(tf.constant(potentials, tf.float32)).numpy()


@pytest.mark.parametrize("lengths", [(1,), (1, 0), (0,), (1, 1, 1), (2, 1, 0)])
def test_decode_of_short_sentences_matches_enumeration_eager_and_in_graph(lengths):
    """T = 1 (backtracking has no earlier step) and sentences with no real step."""
    k, width = 3, max(lengths)
    crf, a, s, e = _layer(k, seed=11)
    u = np.random.RandomState(3).randn(len(lengths), width, k).astype("float32")
    mask = np.arange(width)[None, :] < np.array(lengths)[:, None]
    potentials = keras.ops.convert_to_numpy(crf(u, mask=mask))
    for best in (keras.ops.convert_to_numpy(crf_decode(potentials)), _decode_in_graph(potentials)):
        assert best.shape == (len(lengths), width) and best.dtype == np.int32
        for b, n in enumerate(lengths):
            if n:
                assert best[b, :n].tolist() == brute_force(u[b, :n], a, s, e)[1]


@pytest.mark.parametrize("shape", [(0, 0), (2, 0), (0, 3), (0, 1)])
def test_decode_and_log_partition_of_empty_shapes(shape):
    """batch 0 and/or T = 0: (batch, T) tags; log Z = 0 for the empty sequence."""
    k = 4
    potentials = np.zeros(shape + (k, k), "float32")
    for best in (keras.ops.convert_to_numpy(crf_decode(potentials)), _decode_in_graph(potentials)):
        assert best.shape == shape and best.dtype == np.int32
    log_z = keras.ops.convert_to_numpy(crf_log_partition(potentials))
    assert log_z.shape == (shape[0],)
    if shape[1] == 0:
        np.testing.assert_allclose(log_z, 0.0)


def test_log_partition_gradient_stays_accurate_over_long_sequences():
    """The scaled forward-backward gradient in float32 against the float64 one, 400
    steps (log Z ~ 2,700, where unscaled α + β - log Z would cancel badly)."""
    import tensorflow as tf

    p64 = np.random.RandomState(0).randn(4, 400, 13, 13) * 3

    def value_and_grad(p):
        p = tf.constant(p)
        with tf.GradientTape() as tape:
            tape.watch(p)
            log_z = tf.reduce_sum(crf_log_partition(p))
        return log_z.numpy(), tape.gradient(log_z, p).numpy()

    want_z, want = value_and_grad(p64)
    got_z, got = value_and_grad(p64.astype("float32"))
    assert abs(got_z - want_z) / abs(want_z) < 1e-6
    np.testing.assert_allclose(got, want, atol=3e-5)
    np.testing.assert_allclose(want.sum(axis=(2, 3)), 1.0, rtol=1e-9)  # marginals
