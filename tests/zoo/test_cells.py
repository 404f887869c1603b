"""Every zoo cell against the NumPy reference of its course equations, and against the
stock Keras cells where the math coincides."""

import keras
import numpy as np
import pytest

import zoo
from tests.zoo import reference
from tests.zoo.conftest import make_cell

B, T, D, U = 3, 7, 4, 5


def random_states(cell, rng):
    return [rng.normal(size=(B, U)) for _ in range(cell.num_states)]


def test_layer_matches_reference_over_whole_sequences(cell_case):
    name, kwargs = cell_case
    rng = np.random.default_rng(0)
    cell = make_cell(name, U, D, **kwargs)
    x = rng.normal(size=(B, T, D))
    h0 = random_states(cell, rng)
    layer = zoo.layers.Recurrent(cell, return_sequences=True, return_state=True, dtype="float64")
    outputs, *states = layer(x, initial_state=h0)
    for b in range(B):
        ref_out, ref_states = reference.run(cell, x[b], [h[b] for h in h0])
        np.testing.assert_allclose(np.asarray(outputs)[b], ref_out, rtol=1e-10, atol=1e-12)
        for s, r in zip(states, ref_states):
            np.testing.assert_allclose(np.asarray(s)[b], r, rtol=1e-10, atol=1e-12)


def test_cell_runs_inside_keras_rnn_with_same_results(cell_case):
    name, kwargs = cell_case
    cell = make_cell(name, U, D, **kwargs)
    x = np.random.default_rng(1).normal(size=(B, T, D))
    ours = zoo.layers.Recurrent(cell, return_sequences=True, dtype="float64")(x)
    theirs = keras.layers.RNN(cell, return_sequences=True, dtype="float64")(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-10, atol=1e-12)


def _keras_peer(name, units):
    if name == "lstm":
        return keras.layers.LSTMCell(units, dtype="float64")
    if name == "gru":
        return keras.layers.GRUCell(units, reset_after=False, dtype="float64")
    return keras.layers.SimpleRNNCell(units, dtype="float64")


@pytest.mark.parametrize("name", ["rnn", "gru", "lstm"])
def test_equals_stock_keras_cell_given_same_weights(name):
    rng = np.random.default_rng(2)
    cell = make_cell(name, U, D)
    peer = _keras_peer(name, U)
    peer.build((None, D))
    kernel, recurrent, bias = (np.asarray(w) for w in (cell.kernel, cell.recurrent_kernel, cell.bias))
    if name == "gru":
        # Keras' update gate z is 1 - Γu: the same numbers with the Γu columns negated.
        kernel, recurrent, bias = kernel.copy(), recurrent.copy(), bias.copy()
        kernel[:, :U] *= -1
        recurrent[:, :U] *= -1
        bias[:U] *= -1
    peer.set_weights([kernel, recurrent, bias])
    x = rng.normal(size=(B, T, D))
    ours = zoo.layers.Recurrent(cell, return_sequences=True, dtype="float64")(x)
    theirs = keras.layers.RNN(peer, return_sequences=True, dtype="float64")(x)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), rtol=1e-10, atol=1e-12)


def test_peephole_lstm_with_zero_peepholes_is_lstm():
    lstm = make_cell("lstm", U, D)
    peep = zoo.cells.PeepholeLSTMCell(U, dtype="float64")
    peep.build((None, D))
    peep.kernel.assign(lstm.kernel)
    peep.recurrent_kernel.assign(lstm.recurrent_kernel)
    peep.bias.assign(lstm.bias)
    x = np.random.default_rng(3).normal(size=(B, T, D))
    a = zoo.layers.Recurrent(lstm, dtype="float64")(x)
    b = zoo.layers.Recurrent(peep, dtype="float64")(x)
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_peephole_output_gate_variants_differ():
    x = np.random.default_rng(4).normal(size=(B, T, D))
    course = make_cell("peephole_lstm", U, D, seed=5)
    gers = make_cell("peephole_lstm", U, D, seed=5, output_peephole="current")
    a = zoo.layers.Recurrent(course, dtype="float64")(x)
    b = zoo.layers.Recurrent(gers, dtype="float64")(x)
    assert np.abs(np.asarray(a) - np.asarray(b)).max() > 1e-3


def test_golden_values_from_constant_initializers():
    # All weights 0.25 (exact in float32), bias 0, x = 1, one step from zero state:
    # z = 0.25 * input_dim = 0.5 for every gate; c~ = tanh(0.5), Γ = σ(0.5) except
    # Γf's bias +1 from unit_forget_bias (unused at c<0> = 0).
    init = keras.initializers.Constant(0.25)
    x = np.ones((1, 1, 2))
    z = 0.5
    expected = {
        "rnn": np.tanh(z),
        "simplified_gru": reference.sigmoid(z) * np.tanh(z),
        "gru": reference.sigmoid(z) * np.tanh(z),
        "lstm": reference.sigmoid(z) * np.tanh(reference.sigmoid(z) * np.tanh(z)),
    }
    for name, value in expected.items():
        cell = zoo.cells.get(
            name, 3, kernel_initializer=init, recurrent_initializer=init, dtype="float64"
        )
        out = zoo.layers.Recurrent(cell, dtype="float64")(x)
        np.testing.assert_allclose(np.asarray(out), np.full((1, 3), value), rtol=1e-12)


def test_unit_forget_bias_sets_forget_bias_to_one():
    cell = zoo.cells.LSTMCell(4)
    cell.build((None, 3))
    np.testing.assert_array_equal(np.asarray(cell.bias), np.repeat([0.0, 1.0, 0.0, 0.0], 4))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: zoo.cells.LSTMCell(0), "Expected units > 0"),
        (lambda: zoo.cells.GRUCell(2.5), "units=2.5"),
        (lambda: zoo.cells.BasicRNNCell(4, activation="sigmoid"), "activation='sigmoid'"),
        (lambda: zoo.cells.PeepholeLSTMCell(4, output_peephole="next"), "output_peephole='next'"),
        (lambda: zoo.cells.get("transformer", 4), "Unknown cell 'transformer'"),
        (lambda: zoo.layers.Recurrent(keras.layers.LSTMCell(4)), "Expected a zoo cell"),
        (lambda: zoo.layers.Recurrent(zoo.cells.LSTMCell(4), stateful=True), "stateful"),
        (lambda: zoo.layers.DeepRNN("lstm", [4, 4], num_layers=3), "one units per layer"),
        (lambda: zoo.layers.DeepRNN("lstm", 4, dropout=1.5), "dropout=1.5"),
        (lambda: zoo.layers.OutputHead(3, activation="relu"), "activation='relu'"),
    ],
)
def test_bad_arguments_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        make()


def test_wrong_number_of_initial_states_is_reported():
    layer = zoo.layers.Recurrent(zoo.cells.LSTMCell(4))
    with pytest.raises(ValueError, match="2 state"):
        layer(np.zeros((2, 3, 5), "float32"), initial_state=[np.zeros((2, 4), "float32")])
