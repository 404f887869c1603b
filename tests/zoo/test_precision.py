"""``mixed_bfloat16`` against float32 for every zoo cell through ``Recurrent`` (the fused
path): the input projection runs in bfloat16, the recurrence and its states in float32,
the outputs come back in bfloat16. Tolerances: bfloat16 keeps 8 significant bits
(relative rounding 2^-9), so values agree to about 1e-2 and gradients to a few %."""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.zoo.conftest import CELL_CASES, CELL_IDS, make_cell
from zoo.layers import Recurrent


def _layers(name, kwargs, units=16, input_dim=8):
    """(float32 layer, mixed_bfloat16 layer) with the same random weights; the recurrent
    kernel scaled to a contraction (spectral radius about 0.5), as trained networks are:
    a chaotic recurrence would amplify any rounding, float32's too."""
    cell = make_cell(name, units, input_dim, dtype="float32", **kwargs)
    cell.recurrent_kernel.assign(cell.recurrent_kernel * 0.25)
    exact = Recurrent(cell, return_sequences=True, return_state=True)
    mixed_cell = zoo.cells.get(name, units, dtype="mixed_bfloat16", **kwargs)
    mixed_cell.build((None, input_dim))
    for target, source in zip(mixed_cell.weights, exact.cell.weights):
        target.assign(source)
    mixed = Recurrent(mixed_cell, return_sequences=True, return_state=True, dtype="mixed_bfloat16")
    return exact, mixed


def _inputs(time=60, batch=4, input_dim=8):
    rng = np.random.default_rng(7)
    x = rng.normal(0.0, 1.0, (batch, time, input_dim)).astype("float32")
    mask = np.arange(time)[None, :] < rng.integers(1, time + 1, batch)[:, None]
    return tf.constant(x), tf.constant(mask)


@pytest.mark.parametrize("case", CELL_CASES, ids=CELL_IDS)
def test_values_and_states_agree_with_float32(case):
    exact, mixed = _layers(*case)
    x, mask = _inputs()
    want, got = exact(x, mask=mask), mixed(x, mask=mask)
    assert all(t.dtype == tf.bfloat16 for t in got)
    for w, g in zip(want, got):
        np.testing.assert_allclose(tf.cast(g, tf.float32).numpy(), w.numpy(), rtol=2e-2, atol=3e-2)


@pytest.mark.parametrize("case", CELL_CASES, ids=CELL_IDS)
def test_gradients_agree_with_float32(case):
    exact, mixed = _layers(*case)
    x, mask = _inputs()
    target = tf.constant(np.random.default_rng(3).normal(size=(4, 60, 16)), tf.float32)

    def grads(layer):
        with tf.GradientTape() as tape:
            out = tf.cast(layer(x, mask=mask)[0], tf.float32)
            loss = tf.reduce_sum((out - target) ** 2)
        return tape.gradient(loss, layer.trainable_variables)

    for w, g in zip(grads(exact), grads(mixed)):
        assert g.dtype == tf.float32  # the variables stay float32
        assert np.linalg.norm(g - w) <= 0.05 * np.linalg.norm(w), (w.shape,)


def test_a_long_cell_state_accumulates_in_float32():
    """c<t> = Γf c<t-1> + Γu c~<t> with Γf = 1 and small steps: rounded to bfloat16 at
    every step, c<t> near 1 could not move by less than 2^-8 = 0.004 and would stall;
    in float32 it sums all 500 steps."""
    units, time = 4, 500
    exact, mixed = _layers("lstm", {}, units=units, input_dim=1)
    for layer in (exact, mixed):
        cell = layer.cell
        cell.kernel.assign(np.zeros(cell.kernel.shape, "float32"))
        cell.recurrent_kernel.assign(np.zeros(cell.recurrent_kernel.shape, "float32"))
        # gates [Γu, Γf, c~, Γo] (LSTMCell docstring): Γu = σ(-6.9) ~ 0.001, Γf = σ(20) ~ 1,
        # c~ = tanh(2) ~ 0.96, Γo = σ(20) ~ 1.
        cell.bias.assign(np.repeat([-6.9, 20.0, 2.0, 20.0], units).astype("float32"))
    x = tf.zeros((1, time, 1))
    want = exact(x)[2].numpy()  # c<T> ~ 500 x 0.001 x 0.96 ~ 0.48
    got = tf.cast(mixed(x)[2], tf.float32).numpy()
    assert want.min() > 0.4
    np.testing.assert_allclose(got, want, rtol=1e-2)
