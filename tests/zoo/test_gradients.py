"""Backpropagation through time against central finite differences (float64)."""

import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.zoo.conftest import make_cell

B, T, D, U = 2, 6, 3, 4
EPS = 1e-6


def _loss_fn(layer, mask):
    rng = np.random.default_rng(7)
    w_out = tf.constant(rng.normal(size=(B, T, U)))
    w_states = [tf.constant(rng.normal(size=(B, U))) for _ in range(layer.num_states)]

    @tf.function
    def loss(x):
        # training=True: the hand-written BPTT of zoo.layers.fused_recurrence, which
        # fit() uses; tests/zoo/test_fast_paths.py ties it to the generic loop.
        outputs, *states = layer(x, mask=mask, training=True)
        total = tf.reduce_sum(outputs * w_out)
        for s, w in zip(states, w_states):
            total += tf.reduce_sum(s * w)
        return total

    return loss


def _check(variable_or_x, analytic, loss_of, rng, n=6):
    """Compare ``analytic`` with central differences at n random entries."""
    value = np.asarray(variable_or_x).copy()
    flat = value.reshape(-1)
    for idx in rng.choice(flat.size, size=min(n, flat.size), replace=False):
        plus, minus = flat.copy(), flat.copy()
        plus[idx] += EPS
        minus[idx] -= EPS
        numeric = (loss_of(plus.reshape(value.shape)) - loss_of(minus.reshape(value.shape))) / (2 * EPS)
        np.testing.assert_allclose(np.asarray(analytic).reshape(-1)[idx], numeric, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("masked", [False, True], ids=["unmasked", "masked"])
@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
def test_bptt_gradients_match_finite_differences(cell_case, masked, go_backwards):
    name, kwargs = cell_case
    rng = np.random.default_rng(11)
    cell = make_cell(name, U, D, **kwargs)
    layer = zoo.layers.Recurrent(
        cell, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64"
    )
    mask = None
    if masked:
        mask = tf.constant(np.arange(T)[None, :] < np.array([[T], [T - 2]]))
    loss = _loss_fn(layer, mask)
    x = tf.constant(rng.normal(size=(B, T, D)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    grads = tape.gradient(value, [x] + cell.trainable_weights)
    assert all(g is not None for g in grads)

    _check(x, grads[0], lambda v: float(loss(tf.constant(v))), rng)
    for weight, grad in zip(cell.trainable_weights, grads[1:]):
        original = np.asarray(weight).copy()

        def loss_of(v, weight=weight):
            weight.assign(v)
            return float(loss(x))

        _check(weight, grad, loss_of, rng)
        weight.assign(original)
