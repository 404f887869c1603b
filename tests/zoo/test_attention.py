"""zoo.layers.attention against a NumPy transcription of the course's equations: scores,
masked softmax, context; one query or a sequence of them; all-padding rows; gradients
against finite differences; config and SavedModel round trips."""

import numpy as np
import pytest
import tensorflow as tf

from zoo.layers.attention import AdditiveAttention, MultiplicativeAttention


def _softmax_masked(e, mask):
    e = np.where(mask, e, -np.inf)
    out = np.zeros_like(e)
    for index in np.ndindex(*e.shape[:-1]):
        row = e[index]
        if np.isfinite(row).any():
            z = np.exp(row - row[np.isfinite(row)].max())
            out[index] = z / z.sum()
    return out


def _reference(layer, s, a, mask):
    """e<t'>, α and c by the equations, in float64."""
    if isinstance(layer, AdditiveAttention):
        w_s = layer.query_dense.kernel.numpy().astype("float64")
        w_a = layer.value_dense.kernel.numpy().astype("float64")
        b = layer.value_dense.bias.numpy().astype("float64")
        v = layer.score_dense.kernel.numpy()[:, 0].astype("float64")
        e = np.tanh((s @ w_s)[:, :, None, :] + (a @ w_a + b)[:, None, :, :]) @ v
    else:
        e = (s @ layer.kernel.numpy().astype("float64")) @ a.transpose(0, 2, 1)
    alpha = _softmax_masked(e, mask[:, None, :])
    return alpha @ a, alpha


LAYERS = [lambda: AdditiveAttention(5), lambda: MultiplicativeAttention()]


@pytest.mark.parametrize("make", LAYERS, ids=["additive", "multiplicative"])
def test_context_and_weights_follow_the_equations_with_padding_masked(make):
    rng = np.random.default_rng(0)
    s = rng.normal(size=(3, 4, 6))  # (batch, Ty, d_s)
    a = rng.normal(size=(3, 7, 8))  # (batch, Tx, d_a)
    mask = np.array([[1] * 7, [1] * 3 + [0] * 4, [0] * 7], bool)  # row 3: all padding
    layer = make()
    context, alpha = layer(tf.constant(s, tf.float32), tf.constant(a, tf.float32), mask=mask)
    want_c, want_alpha = _reference(layer, s, a, mask)
    np.testing.assert_allclose(alpha.numpy(), want_alpha, atol=1e-5)
    np.testing.assert_allclose(context.numpy(), want_c, atol=1e-5)
    assert alpha.numpy()[1, :, 3:].max() == 0 and context.numpy()[2].max() == 0
    np.testing.assert_allclose(alpha.numpy()[:2].sum(-1), 1.0, atol=1e-6)
    one_c, one_alpha = layer(tf.constant(s[:, 1], tf.float32), tf.constant(a, tf.float32),
                             mask=mask)  # one query: the decoder's step
    np.testing.assert_allclose(one_alpha.numpy(), want_alpha[:, 1], atol=1e-5)
    np.testing.assert_allclose(one_c.numpy(), want_c[:, 1], atol=1e-5)


@pytest.mark.parametrize("make", LAYERS, ids=["additive", "multiplicative"])
def test_gradients_match_finite_differences(make):
    rng = np.random.default_rng(1)
    s = tf.constant(rng.normal(size=(2, 3, 4)))
    a = tf.constant(rng.normal(size=(2, 5, 4)))
    mask = np.array([[1] * 5, [1, 1, 0, 0, 0]], bool)
    layer = make()
    theoretical, numerical = tf.test.compute_gradient(
        lambda q, v: tf.reduce_sum(layer(tf.cast(q, tf.float32), tf.cast(v, tf.float32),
                                         mask=mask)[0] ** 2), [s, a], delta=1e-3)
    for t, n in zip(theoretical, numerical):
        np.testing.assert_allclose(t, n, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("make", LAYERS, ids=["additive", "multiplicative"])
def test_config_round_trip(make):
    import keras

    layer = make()
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(clone) is type(layer) and clone.get_config() == layer.get_config()
    with pytest.raises(ValueError, match="Expected units >= 1. Received: units=0"):
        AdditiveAttention(0)
