"""Padded steps, when masked, change neither outputs nor states."""

import keras
import numpy as np
import pytest

import zoo
from tests.zoo.conftest import make_cell

D, U = 3, 4
LENGTHS = [7, 3, 5]


def padded_batch(rng):
    """Sequences of LENGTHS padded with junk (not zeros) to the longest, and the mask."""
    T = max(LENGTHS)
    x = rng.normal(size=(len(LENGTHS), T, D)) * 10.0  # junk everywhere ...
    seqs = [rng.normal(size=(n, D)) for n in LENGTHS]
    for i, s in enumerate(seqs):
        x[i, : len(s)] = s  # ... real steps at the front
    mask = np.arange(T)[None, :] < np.array(LENGTHS)[:, None]
    return seqs, x, mask


@pytest.mark.parametrize("go_backwards", [False, True], ids=["forwards", "backwards"])
def test_masked_padding_equals_unpadded(cell_case, go_backwards):
    name, kwargs = cell_case
    rng = np.random.default_rng(0)
    cell = make_cell(name, U, D, **kwargs)
    layer = zoo.layers.Recurrent(
        cell, return_sequences=True, return_state=True, go_backwards=go_backwards, dtype="float64"
    )
    seqs, x, mask = padded_batch(rng)
    outputs, *states = (np.asarray(t) for t in layer(x, mask=mask))
    for i, s in enumerate(seqs):
        alone_out, *alone_states = (np.asarray(t) for t in layer(s[None]))
        n = len(s)
        if go_backwards:
            # Outputs come in processing order: for a right-padded sequence read
            # backwards, the padding comes first (zeros), then the n real steps.
            real, pad = outputs[i, -n:], outputs[i, : len(outputs[i]) - n]
        else:
            real, pad = outputs[i, :n], outputs[i, n:]
        np.testing.assert_allclose(real, alone_out[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(pad, 0.0)
        for s_full, s_alone in zip(states, alone_states):
            np.testing.assert_allclose(s_full[i], s_alone[0], rtol=1e-10, atol=1e-12)


def test_masked_padding_equals_unpadded_bidirectionally(cell_case):
    name, kwargs = cell_case
    rng = np.random.default_rng(1)
    seqs, x, mask = padded_batch(rng)
    layer = keras.layers.Bidirectional(
        zoo.layers.Recurrent(zoo.cells.get(name, U, dtype="float64", **kwargs), return_sequences=True),
        dtype="float64",
    )
    outputs = np.asarray(layer(x, mask=mask))
    last = keras.layers.Bidirectional(
        zoo.layers.Recurrent(zoo.cells.get(name, U, dtype="float64", **kwargs)), dtype="float64"
    )
    last(x[:1])
    last.set_weights(layer.get_weights())
    finals = np.asarray(last(x, mask=mask))
    for i, s in enumerate(seqs):
        alone = np.asarray(layer(s[None]))[0]
        np.testing.assert_allclose(outputs[i, : len(s)], alone, rtol=1e-10, atol=1e-12)
        np.testing.assert_array_equal(outputs[i, len(s) :], 0.0)
        np.testing.assert_allclose(finals[i], np.asarray(last(s[None]))[0], rtol=1e-10, atol=1e-12)


def test_keep_previous_output_when_asked():
    rng = np.random.default_rng(2)
    seqs, x, mask = padded_batch(rng)
    layer = zoo.layers.Recurrent(
        make_cell("gru", U, D), return_sequences=True, zero_output_for_mask=False, dtype="float64"
    )
    outputs = np.asarray(layer(x, mask=mask))
    n = LENGTHS[1]
    np.testing.assert_array_equal(outputs[1, n:], np.repeat(outputs[1, n - 1 : n], len(outputs[1]) - n, 0))


def test_deep_bidirectional_stack_is_pad_invariant_through_embedding_mask():
    rng = np.random.default_rng(3)
    ids = rng.integers(1, 50, size=(3, 9))
    lengths = [9, 4, 6]
    for i, n in enumerate(lengths):
        ids[i, n:] = 0
    inputs = keras.Input((None,), dtype="int32")
    h = keras.layers.Embedding(50, 6, mask_zero=True)(inputs)
    h = zoo.layers.DeepRNN(
        "lstm", units=5, num_layers=2, bidirectional=[True, False], dropout=0.3, dense_units=[4]
    )(h)
    model = keras.Model(inputs, zoo.layers.OutputHead(3)(h))
    batch = np.asarray(model(ids, training=False))
    for i, n in enumerate(lengths):
        alone = np.asarray(model(ids[i : i + 1, :n], training=False))
        np.testing.assert_allclose(batch[i], alone[0], rtol=1e-5, atol=1e-6)


def test_output_head_takes_last_real_step_of_sequences():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(2, 5, 3)).astype("float32")
    mask = np.array([[1, 1, 1, 1, 1], [1, 1, 0, 0, 0]], bool)
    head = zoo.layers.OutputHead(2)
    out = np.asarray(head(x, mask=mask))
    np.testing.assert_allclose(out[0], np.asarray(head(x[:1, 4]))[0], rtol=1e-6)
    np.testing.assert_allclose(out[1], np.asarray(head(x[1:, 1]))[0], rtol=1e-6)
    per_step = zoo.layers.OutputHead(1, per_step=True)
    probs = np.asarray(per_step(x))
    assert probs.shape == (2, 5, 1) and ((probs > 0) & (probs < 1)).all()
