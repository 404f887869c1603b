"""The fused recurrence (hand-written BPTT) against the generic step-by-step loop.

``zoo.layers.fused_recurrence`` replaces autodiff through the time loop for the five zoo
cells. A subclass whose ``step`` overrides the parent's takes the generic path (autodiff
through ``step``), so the two paths are compared layer to layer with shared weights, in
float64. The fused backward pass must be taken however the layer is called, and never
for a subclass that changed the equations.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

import zoo
from tests.zoo.conftest import CELL_CASES, CELL_IDS, make_cell
from zoo.layers import fused_recurrence

B, T, D, U = 3, 7, 4, 5
EPS = 1e-6


def _copy_weights(source, target):
    target.build((None, D))
    for w, v in zip(target.weights, source.weights):
        w.assign(v)
    return target


def _generic_copy(cell):
    """The same cell (config, weights) as a subclass whose ``step`` overrides the
    parent's with the same equations, so the generic loop runs it."""
    parent = type(cell)
    generic_cls = type("Generic" + parent.__name__, (parent,), {"step": lambda self, p, s: parent.step(self, p, s)})
    plain = _copy_weights(cell, generic_cls.from_config(cell.get_config()))
    assert not fused_recurrence.supports(plain) and fused_recurrence.supports(cell)
    return plain


def _inputs(rng, masked, num_states):
    x = tf.constant(rng.normal(size=(B, T, D)))
    mask = None
    if masked:  # a full row, a row with padding at the end, a row with a hole and padding
        mask = tf.constant(
            [[True] * T, [True] * (T - 3) + [False] * 3, [False, True, True, False, True, False, False]]
        )
    init = [tf.constant(rng.normal(size=(B, U))) for _ in range(num_states)]
    return x, mask, init


def _loss_and_grads(layer, x, mask, init, training, weights):
    rng = np.random.default_rng(5)
    w_out = tf.constant(rng.normal(size=(B, T, U)))
    w_states = [tf.constant(rng.normal(size=(B, U))) for _ in init]

    @tf.function
    def run(x, init):
        with tf.GradientTape() as tape:
            tape.watch([x] + init)
            outputs, *states = layer(x, initial_state=init, mask=mask, training=training)
            loss = tf.reduce_sum(outputs * w_out)
            for s, w in zip(states, w_states):
                loss += tf.reduce_sum(s * w)
        return outputs, states, tape.gradient(loss, [x] + init + weights)

    return run(x, init)


# Every cell plain and masked backwards; the carried output (zero_output_for_mask=False)
# is computed outside the cell kernels, so one cell covers it.
EQUALITY_CASES = [
    (case, config)
    for case in CELL_CASES
    for config in ((False, False, True), (True, True, True))
] + [(("lstm", {}), (True, False, False))]
EQUALITY_IDS = [
    f"{cid}-{'masked' if m else 'plain'}{'-backwards' if b else ''}{'' if z else '-carry-out'}"
    for cid, (_, (m, b, z)) in zip(
        [i for i in CELL_IDS for _ in range(2)] + ["lstm"], EQUALITY_CASES
    )
]


@pytest.mark.parametrize("case, config", EQUALITY_CASES, ids=EQUALITY_IDS)
def test_fused_path_equals_generic_loop(case, config):
    (name, kwargs), (masked, go_backwards, zero_output_for_mask) = case, config
    rng = np.random.default_rng(3)
    cell = make_cell(name, U, D, **kwargs)
    plain = _generic_copy(cell)
    x, mask, init = _inputs(rng, masked, cell.num_states)
    results = []
    for c in (cell, plain):
        layer = zoo.layers.Recurrent(
            c,
            return_sequences=True,
            return_state=True,
            go_backwards=go_backwards,
            zero_output_for_mask=zero_output_for_mask,
            dtype="float64",
        )
        results.append(_loss_and_grads(layer, x, mask, init, True, c.trainable_weights))
    (out_f, states_f, grads_f), (out_g, states_g, grads_g) = results
    np.testing.assert_allclose(out_f, out_g, rtol=1e-12, atol=1e-12)
    for s_f, s_g in zip(states_f, states_g):
        np.testing.assert_allclose(s_f, s_g, rtol=1e-12, atol=1e-12)
    assert len(grads_f) == len(grads_g) == 1 + cell.num_states + len(cell.trainable_weights)
    for g_f, g_g in zip(grads_f, grads_g):
        assert g_f is not None and g_g is not None
        np.testing.assert_allclose(g_f, g_g, rtol=1e-9, atol=1e-10)


def test_training_flag_changes_neither_values_nor_gradients(cell_case):
    name, kwargs = cell_case
    cell = make_cell(name, U, D, **kwargs)
    x, mask, init = _inputs(np.random.default_rng(4), True, cell.num_states)
    layer = zoo.layers.Recurrent(cell, return_sequences=True, return_state=True, dtype="float64")
    out_t, states_t, grads_t = _loss_and_grads(layer, x, mask, init, True, cell.trainable_weights)
    out_i, states_i, grads_i = _loss_and_grads(layer, x, mask, init, False, cell.trainable_weights)
    np.testing.assert_array_equal(out_t, out_i)
    for a, b in zip(list(states_t) + list(grads_t), list(states_i) + list(grads_i)):
        np.testing.assert_array_equal(a, b)


def test_hand_written_gradient_matches_finite_differences(cell_case, masked=True):
    name, kwargs = cell_case
    rng = np.random.default_rng(11)
    cell = make_cell(name, U, D, **kwargs)
    x, mask, init = _inputs(rng, masked, cell.num_states)
    layer = zoo.layers.Recurrent(cell, return_sequences=True, return_state=True, dtype="float64")
    w_out = tf.constant(np.random.default_rng(5).normal(size=(B, T, U)))

    @tf.function
    def loss(x, init):
        outputs, *states = layer(x, initial_state=init, mask=mask, training=True)
        return tf.reduce_sum(outputs * w_out) + sum(tf.reduce_sum(s) for s in states)

    def check(value, analytic, loss_of):
        value = np.asarray(value)
        flat = value.reshape(-1)
        for idx in rng.choice(flat.size, size=min(5, flat.size), replace=False):
            plus, minus = flat.copy(), flat.copy()
            plus[idx] += EPS
            minus[idx] -= EPS
            numeric = (loss_of(plus.reshape(value.shape)) - loss_of(minus.reshape(value.shape))) / (2 * EPS)
            np.testing.assert_allclose(np.asarray(analytic).reshape(-1)[idx], numeric, rtol=1e-5, atol=1e-7)

    with tf.GradientTape() as tape:
        tape.watch([x] + init)
        value = loss(x, init)
    grads = tape.gradient(value, [x] + init + cell.trainable_weights)
    check(x, grads[0], lambda v: float(loss(tf.constant(v), init)))
    for i, s in enumerate(init):
        check(s, grads[1 + i], lambda v, i=i: float(loss(x, init[:i] + [tf.constant(v)] + init[i + 1 :])))
    for weight, grad in zip(cell.trainable_weights, grads[1 + len(init) :]):
        original = np.asarray(weight).copy()

        def loss_of(v, weight=weight):
            weight.assign(v)
            return float(loss(x, init))

        check(weight, grad, loss_of)
        weight.assign(original)


def test_unknown_batch_and_time_and_empty_sequence():
    """One trace with unknown batch and time serves several lengths, 0 included."""
    cell = make_cell("lstm", U, D)
    layer = zoo.layers.Recurrent(cell, return_sequences=True, return_state=True, dtype="float64")

    @tf.function(input_signature=[tf.TensorSpec((None, None, D), tf.float64)])
    def step(x):
        with tf.GradientTape() as tape:
            outputs, a, c = layer(x, training=True)
            loss = tf.reduce_sum(outputs) + tf.reduce_sum(a) + tf.reduce_sum(c)
        return outputs, a, tape.gradient(loss, cell.recurrent_kernel)

    rng = np.random.default_rng(0)
    for batch, time in ((2, 5), (3, 1), (2, 0)):
        x = rng.normal(size=(batch, time, D))
        outputs, a, d_u = step(x)
        assert outputs.shape == (batch, time, U) and a.shape == (batch, U)
        expected = layer(x, training=False)[0]
        np.testing.assert_allclose(outputs, expected, rtol=1e-12, atol=1e-12)
        if time == 0:
            np.testing.assert_array_equal(a, np.zeros((batch, U)))
        if time <= 1:  # ∂L/∂U = Σ a<t-1>ᵀ dz<t> with a<0> = 0
            np.testing.assert_array_equal(d_u, np.zeros((U, 4 * U)))
        else:
            assert np.abs(np.asarray(d_u)).sum() > 0


def test_fused_path_inside_bidirectional_and_deep_rnn_trains():
    """fit() runs the training path in Bidirectional and DeepRNN; weights move, loss falls."""
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.normal(size=(16, 6, D)).astype("float32")
    y = (x.sum(axis=(1, 2)) > 0).astype("float32")
    inputs = keras.Input((None, D))
    h = keras.layers.Bidirectional(zoo.layers.Recurrent(zoo.cells.GRUCell(8), return_sequences=True))(inputs)
    h = zoo.layers.DeepRNN("lstm", units=8, num_layers=2)(h)
    model = keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(h))
    model.compile("adam", "binary_crossentropy")
    before = [np.asarray(w).copy() for w in model.trainable_weights]
    history = model.fit(x, y, epochs=8, batch_size=16, verbose=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert all(not np.allclose(b, np.asarray(w)) for b, w in zip(before, model.trainable_weights))


def _counting(cell):
    """The same cell (config, weights) as a subclass that counts its backward steps.

    Defining ``backward_step`` keeps the fused path (the protocol); every call is one
    step traced into (or, eagerly, run by) the hand-written backward pass.
    """
    parent = type(cell)

    class Counting(parent):
        calls = 0

        def backward_step(self, *args):
            type(self).calls += 1
            return parent.backward_step(self, *args)

    counting = _copy_weights(cell, Counting.from_config(cell.get_config()))
    assert fused_recurrence.supports(counting)
    return counting


def _calls_of_each_kind(layer, x):
    """Gradients of sum(layer(x)) w.r.t. x, the ways a user records them."""
    def plain(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x))
        return tape.gradient(loss, x)

    def inference_flag(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x, training=False))
        return tape.gradient(loss, x)

    forward = tf.function(lambda x: layer(x))

    def tape_outside_function(x):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(forward(x))
        return tape.gradient(loss, x)

    return {
        "layer(x) eager": plain,
        "layer(x, training=False) eager": inference_flag,
        "layer(x) in tf.function": tf.function(plain),
        "layer(x, training=False) in tf.function": tf.function(inference_flag),
        "tape around a tf.function": tape_outside_function,
    }


@pytest.mark.parametrize("name", ["gru", "lstm"])
def test_fused_backward_is_taken_however_the_layer_is_called(name):
    cell = make_cell(name, U, D)
    counting = _counting(cell)
    generic = zoo.layers.Recurrent(_generic_copy(cell), dtype="float64")
    layer = zoo.layers.Recurrent(counting, dtype="float64")
    x = tf.constant(np.random.default_rng(6).normal(size=(B, T, D)))
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss = tf.reduce_sum(generic(x))
    expected = tape.gradient(loss, x)
    for kind, gradient in _calls_of_each_kind(layer, x).items():
        before = type(counting).calls
        np.testing.assert_allclose(gradient(x), expected, rtol=1e-9, atol=1e-12, err_msg=kind)
        assert type(counting).calls > before, f"{kind}: the fused backward pass was not taken"


def test_fused_backward_is_taken_in_fit_and_a_custom_training_loop():
    keras.utils.set_random_seed(0)
    cell = _counting(make_cell("lstm", U, D, dtype="float32"))
    inputs = keras.Input((None, D))
    model = keras.Model(inputs, keras.layers.Dense(1)(zoo.layers.Recurrent(cell)(inputs)))
    x = np.random.default_rng(0).normal(size=(8, T, D)).astype("float32")
    y = x.sum(axis=(1, 2))[:, None]
    model.compile("adam", "mse")
    model.fit(x, y, epochs=1, batch_size=8, verbose=0)
    after_fit = type(cell).calls
    assert after_fit > 0

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x) - y))
        return tape.gradient(loss, model.trainable_variables)

    grads = train_step(x, y)
    assert type(cell).calls > after_fit and all(g is not None for g in grads)
    # Inference records no gradient and traces no backward step.
    before = type(cell).calls
    model.predict(x, verbose=0)
    assert type(cell).calls == before


class _HalfInputLSTM(zoo.cells.LSTMCell):
    """Changes the equations through ``step`` only: z<t> = P<t>/2 + a<t-1> @ U."""

    def step(self, projected, states):
        return super().step(0.5 * projected, states)


class _HalfInputForwardLSTM(zoo.cells.LSTMCell):
    """Changes the equations through ``forward_step`` only."""

    def forward_step(self, projected, states, weights):
        return super().forward_step(0.5 * projected, states, weights)


class _RestatedLSTM(zoo.cells.LSTMCell):
    """Overrides ``forward_step`` and writes its ``backward_step`` too (here: the
    parent's again): the class that owns the equations owns their derivative."""

    def forward_step(self, projected, states, weights):
        return super().forward_step(projected, states, weights)

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        return super().backward_step(weights_t, states, prev_states, saved, d_states)


class _HalfProjectionLSTM(zoo.cells.LSTMCell):
    """Changes P<t> (outside the recurrence, differentiated by autodiff): stays fused."""

    def input_projection(self, inputs):
        return 0.5 * super().input_projection(inputs)


class _ForwardOnlyCell(zoo.cells.BasicRNNCell):
    """A new cell that writes its equations but no backward step (backward_step = None)."""

    def forward_step(self, projected, states, weights):
        a = keras.ops.sin(projected + keras.ops.matmul(states[0], weights[0]))
        return [a], []


def test_which_cells_take_the_fused_path():
    supports = fused_recurrence.supports
    assert all(supports(cls(3)) for cls in zoo.cells.CELLS.values())
    assert supports(type("Renamed", (zoo.cells.GRUCell,), {})(3))  # no equation changed
    assert not supports(_HalfInputLSTM(3))
    assert not supports(_HalfInputForwardLSTM(3))
    assert supports(_RestatedLSTM(3)) and supports(_HalfProjectionLSTM(3))
    assert not supports(_ForwardOnlyCell(3))


@pytest.mark.parametrize("cls", [_HalfInputLSTM, _HalfInputForwardLSTM, _ForwardOnlyCell, _HalfProjectionLSTM])
def test_subclass_that_changes_the_equations_gets_their_gradient(cls):
    """Never the parent's backward pass for other equations: gradients equal finite
    differences of the subclass' own equations, which differ from the parent's."""
    rng = np.random.default_rng(8)
    cell = cls(U, dtype="float64")
    cell.build((None, D))
    for w in cell.weights:
        w.assign(rng.normal(0.0, 0.5, size=w.shape))
    parent = _copy_weights(cell, cls.__mro__[1](U, dtype="float64"))
    layer = zoo.layers.Recurrent(cell, return_sequences=True, dtype="float64")
    x = tf.constant(rng.normal(size=(B, T, D)))
    w_out = tf.constant(rng.normal(size=(B, T, U)))
    assert not np.allclose(layer(x), zoo.layers.Recurrent(parent, return_sequences=True, dtype="float64")(x))

    def loss(x):
        return tf.reduce_sum(layer(x) * w_out)

    with tf.GradientTape() as tape:
        tape.watch(x)
        value = loss(x)
    grads = tape.gradient(value, [x, cell.kernel, cell.recurrent_kernel])
    for target, grad in zip([x, cell.kernel, cell.recurrent_kernel], grads):
        original = np.asarray(target).copy()
        flat = original.reshape(-1)
        for idx in rng.choice(flat.size, size=4, replace=False):
            numeric = []
            for sign in (1, -1):
                moved = flat.copy()
                moved[idx] += sign * EPS
                if isinstance(target, tf.Tensor):
                    numeric.append(float(loss(tf.constant(moved.reshape(original.shape)))))
                else:
                    target.assign(moved.reshape(original.shape))
                    numeric.append(float(loss(x)))
            if not isinstance(target, tf.Tensor):
                target.assign(original)
            fd = (numeric[0] - numeric[1]) / (2 * EPS)
            np.testing.assert_allclose(np.asarray(grad).reshape(-1)[idx], fd, rtol=1e-5, atol=1e-7)
