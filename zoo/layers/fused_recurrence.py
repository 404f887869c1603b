"""Fast path of ``Recurrent``: the whole recurrence with a hand-written backward pass.

Autodiff through a ``tf.while_loop`` keeps every intermediate of every op of every
step and replays the loop op by op. For the five zoo cells the backward pass is
written out here instead (backpropagation through time, one reverse loop):

    forward   for t = 1..T:  z<t> = P<t> + a<t-1> @ U;  state<t> = cell(z<t>, state<t-1>)
              saves a<t> (and c<t>) and the gate activations of each step
    backward  for t = T..1:  dz<t> = ∂L/∂z<t> from the saved gates,
                             ∂L/∂a<t-1> = dz<t> @ Uᵀ + the elementwise terms
    then      ∂L/∂U = Σ_t a<t-1>ᵀ dz<t>  as ONE (units, T·batch) @ (T·batch, G·units)
              product, and ∂L/∂P<t> = dz<t>, from which autodiff gets the kernel and
              bias gradients (again one large product).

Both loops run ``UNROLL`` steps per ``tf.while_loop`` iteration (``_loop``).

P<t> = x<t> @ kernel + bias is the projected input (``cell.input_projection``), computed
for all steps before the loop. Masked steps (mask False) carry the state over:
state<t> = m·cell(...) + (1 - m)·state<t-1>, and the backward pass routes the state
gradient around the cell where m = 0.

The equations are exactly those of each cell's ``step``; ``tests/zoo/test_fast_paths.py``
checks values and gradients against the step-by-step loop and finite differences.
Cells of other types (including subclasses of the zoo cells, which may change ``step``)
use the generic loop.
"""

import tensorflow as tf

from zoo.cells.basic_rnn_cell import BasicRNNCell
from zoo.cells.gru_cell import GRUCell
from zoo.cells.lstm_cell import LSTMCell
from zoo.cells.peephole_lstm_cell import PeepholeLSTMCell
from zoo.cells.simplified_gru_cell import SimplifiedGRUCell


def supports(cell):
    """True if ``cell`` has a fused implementation here (exact zoo cell types only)."""
    return type(cell) in _KERNELS


def run(cell, projected, states, step_mask=None, training=True):
    """Runs ``cell`` over time-major ``projected``.

    With ``training`` the recurrence carries the hand-written gradient; without it a
    lean forward loop that saves nothing for a backward pass (autodiff still works
    through it, at the speed of the generic loop).

    Args:
        cell: a built zoo cell with ``supports(cell)``.
        projected: P (time, batch, G*units), ``cell.input_projection`` of x.
        states: the cell's initial states, a list of (batch, units) tensors.
        step_mask: optional (time, batch, 1) booleans, True for real steps.
        training: whether a gradient will be taken (``Recurrent``'s training flag).

    Returns ``(a_seq, final_states)``: a_seq (time, batch, units) holds the state a<t>
    (masked steps carry a<t-1>), the cell's output at every step; final_states the
    list of states after the last step.
    """
    kernel = _KERNELS[type(cell)](cell, projected.dtype)
    weights = kernel.weights()
    mask = None if step_mask is None else tf.cast(step_mask, projected.dtype)
    if not training:
        kernel.prepare(weights)
        states_all, _, finals = _forward(kernel, projected, list(states), mask, save=False)
        return states_all[0][1:], finals
    num_states = len(states)

    @tf.custom_gradient
    def recurrence(projected, *args):
        states0, weights = list(args[:num_states]), list(args[num_states:])
        kernel.prepare(weights)
        states_all, saved, finals = _forward(kernel, projected, states0, mask, save=True)

        def grad(d_a_seq, *d_finals):
            d_a_seq = _zeros_if_none(d_a_seq, states_all[0][1:])
            d_finals = [_zeros_if_none(d, s) for d, s in zip(d_finals, states0)]
            kernel.prepare_backward()
            d_proj, d_states0 = _backward(kernel, states_all, saved, mask, d_a_seq, d_finals)
            d_weights = kernel.weight_grads(d_proj, states_all, saved)
            return [d_proj] + d_states0 + d_weights

        return (states_all[0][1:], *finals), grad

    results = recurrence(projected, *states, *weights)
    return results[0], list(results[1:])


def _zeros_if_none(d, like):
    return tf.zeros_like(like) if d is None else d


def _forward(kernel, projected, states0, mask, save):
    """The forward loop.

    Returns (states_all, saved, final states): states_all[i] (T+1, batch, units) =
    state i at t = 0..T (only a<t> unless ``save``); saved[k] (T, ...) the k-th
    tensor the cell saves for its backward step (none unless ``save``).
    """
    time = tf.shape(projected)[0]
    dtype = projected.dtype
    recorded = states0 if save else states0[:1]
    state_tas = [tf.TensorArray(dtype, size=time + 1).write(0, s) for s in recorded]
    saved_tas = [tf.TensorArray(dtype, size=time) for _ in range(kernel.num_saved if save else 0)]

    def step(t, carry):
        states, state_tas, saved_tas = carry
        new_states, saved = kernel.step(projected[t], states)
        if mask is not None:
            m = mask[t] > 0  # (batch, 1)
            new_states = [tf.where(m, n, s) for n, s in zip(new_states, states)]
        state_tas = [ta.write(t + 1, s) for ta, s in zip(state_tas, new_states)]
        saved_tas = [ta.write(t, s) for ta, s in zip(saved_tas, saved)]
        return new_states, state_tas, saved_tas

    finals, state_tas, saved_tas = _loop(time, step, (list(states0), state_tas, saved_tas))
    # Stacked tensors, not TensorArrays, cross into the backward pass: a gradient
    # function that captures a TensorArray's variant cannot be saved in a SavedModel,
    # and measured it needed more memory.
    return [ta.stack() for ta in state_tas], [_stack(ta) for ta in saved_tas], list(finals)


def _backward(kernel, states_all, saved, mask, d_a_seq, d_finals):
    """The reverse loop. Returns (dP (T, batch, G*units), gradients of the initial states)."""
    time = tf.shape(d_a_seq)[0]
    dz_ta = tf.TensorArray(d_a_seq.dtype, size=time)

    def step(t, carry):
        d_states, dz_ta = carry
        d_states = [d_states[0] + d_a_seq[t]] + list(d_states[1:])
        if mask is not None:
            m = mask[t]  # (batch, 1), 1.0 for real steps
            d_in = [d * m for d in d_states]
        else:
            d_in = d_states
        dz, d_prev = kernel.backward_step(
            [s[t + 1] for s in states_all],  # state<t>
            [s[t] for s in states_all],  # state<t-1>
            [s[t] for s in saved],
            d_in,
        )
        if mask is not None:
            d_prev = [p + d * (1.0 - m) for p, d in zip(d_prev, d_states)]
        return d_prev, dz_ta.write(t, dz)

    d_states0, dz_ta = _loop(time, step, (list(d_finals), dz_ta), reverse=True)
    return _stack(dz_ta), list(d_states0)


UNROLL = 4
"""Time steps per ``tf.while_loop`` iteration: fewer loop-control ops per step."""


def _loop(time, step, carry, reverse=False):
    """``carry = step(t, carry)`` for t = 0..time-1 (or time-1..0 with ``reverse``).

    The loop body runs ``UNROLL`` consecutive steps; the time % UNROLL leftover steps
    run in a second loop (after the blocks, or before them when reversed, so the
    steps keep their order).
    """
    k = UNROLL
    blocks = time // k
    split = blocks * k

    def block(i, carry):
        for j in range(k):
            t = i * k + (k - 1 - j if reverse else j)
            carry = step(t, carry)
        return carry

    def run(first, stop, fn, carry):
        def body(i, carry):
            return i + (-1 if reverse else 1), fn(i, carry)

        if reverse:
            cond, count = (lambda i, _: i >= stop), first - stop + 1
        else:
            cond, count = (lambda i, _: i < stop), stop - first
        _, carry = tf.while_loop(cond, body, (first, carry), maximum_iterations=tf.maximum(count, 0))
        return carry

    if reverse:
        carry = run(time - 1, split, step, carry)
        return run(blocks - 1, 0, block, carry)
    carry = run(tf.constant(0), blocks, block, carry)
    return run(split, time, step, carry)


def _stack(ta):
    """``ta.stack()``, also for an empty array whose element shape is not known (T = 0)."""
    if ta.element_shape.is_fully_defined():
        return ta.stack()
    return tf.cond(
        ta.size() > 0,
        ta.stack,
        lambda: tf.zeros([0] + [d if d is not None else 0 for d in ta.element_shape.as_list()], ta.dtype),
    )


def _rows(x):
    """(T, batch, d) -> (T*batch, d)."""
    return tf.reshape(x, (-1, tf.shape(x)[-1]))


def _outer_sum(a, dz):
    """Σ_t a<t>ᵀ dz<t> over time and batch: one (d, T*batch) @ (T*batch, k) product."""
    return tf.matmul(_rows(a), _rows(dz), transpose_a=True)


def _dsigmoid(s):
    return s * (1.0 - s)


def _dtanh(y):
    return 1.0 - y * y


class _Kernel:
    """Forward step, backward step and weight gradients of one cell type.

    ``weights()`` lists the tensors the recurrence differentiates (U first) and
    ``prepare`` unpacks them inside the differentiated function;
    ``step(P<t>, states<t-1>) -> (states<t>, saved<t>)``;
    ``backward_step(states<t>, states<t-1>, saved<t>, ∂L/∂states<t>) ->
    (dz<t>, ∂L/∂states<t-1>)``; ``weight_grads`` -> the gradients of ``weights()``.

    The backward products use Uᵀ materialised once (``prepare_backward``):
    ``matmul(dz, U, transpose_b=True)`` runs about 3x slower on CPU at these sizes.
    """

    num_saved = 0

    def __init__(self, cell, dtype):
        self.cell = cell
        self.n = cell.units
        self.dtype = dtype

    def _read(self, variable):
        return tf.cast(tf.convert_to_tensor(variable), self.dtype)

    def weights(self):
        return [self._read(self.cell.recurrent_kernel)]

    def prepare(self, weights):
        self.U = weights[0]  # (units, G*units)

    def prepare_backward(self):
        self.U_t = tf.transpose(self.U)  # (G*units, units)

    def weight_grads(self, d_proj, states_all, saved):
        return [_outer_sum(states_all[0][:-1], d_proj)]  # Σ a<t-1>ᵀ dz<t>


class _RNN(_Kernel):
    """a<t> = g(P<t> + a<t-1> @ U), g = tanh or relu."""

    def step(self, p, states):
        z = p + tf.matmul(states[0], self.U)
        a = tf.tanh(z) if self.cell.activation == "tanh" else tf.nn.relu(z)
        return [a], []

    def backward_step(self, states, prev, saved, d_states):
        a = states[0]
        if self.cell.activation == "tanh":
            dz = d_states[0] * _dtanh(a)
        else:
            dz = d_states[0] * tf.cast(a > 0, a.dtype)
        return dz, [tf.matmul(dz, self.U_t)]


class _SimplifiedGRU(_Kernel):
    """z = P + c<t-1> @ U; Γu = σ(z_u); c~ = tanh(z_c); c<t> = Γu c~ + (1 - Γu) c<t-1>."""

    num_saved = 2  # Γu, c~ (batch, units) each

    def step(self, p, states):
        c_prev = states[0]
        z_u, z_c = tf.split(p + tf.matmul(c_prev, self.U), 2, axis=1)
        gamma_u = tf.sigmoid(z_u)
        c_tilde = tf.tanh(z_c)
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return [c], [gamma_u, c_tilde]

    def backward_step(self, states, prev, saved, d_states):
        dc, c_prev = d_states[0], prev[0]
        gamma_u, c_tilde = saved
        dz = tf.concat(
            [dc * (c_tilde - c_prev) * _dsigmoid(gamma_u), dc * gamma_u * _dtanh(c_tilde)],
            axis=1,
        )
        return dz, [dc * (1.0 - gamma_u) + tf.matmul(dz, self.U_t)]


class _GRU(_Kernel):
    """[Γu|Γr] = σ(P_ur + c<t-1> @ U_ur); c~ = tanh(P_c + (Γr c<t-1>) @ U_c);
    c<t> = Γu c~ + (1 - Γu) c<t-1>."""

    num_saved = 3  # [Γu | Γr] (batch, 2*units), c~, Γr c<t-1> (batch, units)

    def prepare(self, weights):
        super().prepare(weights)
        n = self.n
        self.U_ur, self.U_c = self.U[:, : 2 * n], self.U[:, 2 * n :]

    def prepare_backward(self):
        self.U_ur_t, self.U_c_t = tf.transpose(self.U_ur), tf.transpose(self.U_c)

    def step(self, p, states):
        c_prev = states[0]
        n = self.n
        gates = tf.sigmoid(p[:, : 2 * n] + tf.matmul(c_prev, self.U_ur))
        gamma_u, gamma_r = gates[:, :n], gates[:, n:]
        rc = gamma_r * c_prev
        c_tilde = tf.tanh(p[:, 2 * n :] + tf.matmul(rc, self.U_c))
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return [c], [gates, c_tilde, rc]

    def backward_step(self, states, prev, saved, d_states):
        dc, c_prev = d_states[0], prev[0]
        gates, c_tilde, _ = saved
        gamma_u, gamma_r = tf.split(gates, 2, axis=1)
        dz_c = dc * gamma_u * _dtanh(c_tilde)  # (batch, units)
        d_rc = tf.matmul(dz_c, self.U_c_t)  # ∂L/∂(Γr c<t-1>)
        dz_ur = tf.concat(
            [dc * (c_tilde - c_prev) * _dsigmoid(gamma_u), d_rc * c_prev * _dsigmoid(gamma_r)],
            axis=1,
        )
        d_prev = dc * (1.0 - gamma_u) + d_rc * gamma_r + tf.matmul(dz_ur, self.U_ur_t)
        return tf.concat([dz_ur, dz_c], axis=1), [d_prev]

    def weight_grads(self, d_proj, states_all, saved):
        n = self.n
        d_u_ur = _outer_sum(states_all[0][:-1], d_proj[:, :, : 2 * n])
        d_u_c = _outer_sum(saved[2], d_proj[:, :, 2 * n :])
        return [tf.concat([d_u_ur, d_u_c], axis=1)]


class _LSTM(_Kernel):
    """z = P + a<t-1> @ U; Γu, Γf, Γo = σ(z_u, z_f, z_o); c~ = tanh(z_c);
    c<t> = Γu c~ + Γf c<t-1>; a<t> = Γo tanh(c<t>)."""

    num_saved = 4  # Γu, Γf, c~, Γo (batch, units) each

    def step(self, p, states):
        a_prev, c_prev = states
        z_u, z_f, z_c, z_o = tf.split(p + tf.matmul(a_prev, self.U), 4, axis=1)
        gamma_u = tf.sigmoid(z_u)
        gamma_f = tf.sigmoid(z_f)
        c_tilde = tf.tanh(z_c)
        gamma_o = tf.sigmoid(z_o)
        c = gamma_u * c_tilde + gamma_f * c_prev
        a = gamma_o * tf.tanh(c)
        return [a, c], [gamma_u, gamma_f, c_tilde, gamma_o]

    def backward_step(self, states, prev, saved, d_states):
        da, dc = d_states
        c, c_prev = states[1], prev[1]
        gamma_u, gamma_f, c_tilde, gamma_o = saved
        tanh_c = tf.tanh(c)
        dc = dc + da * gamma_o * _dtanh(tanh_c)
        dz = tf.concat(
            [
                dc * c_tilde * _dsigmoid(gamma_u),
                dc * c_prev * _dsigmoid(gamma_f),
                dc * gamma_u * _dtanh(c_tilde),
                da * tanh_c * _dsigmoid(gamma_o),
            ],
            axis=1,
        )
        return dz, [tf.matmul(dz, self.U_t), dc * gamma_f]


class _PeepholeLSTM(_LSTM):
    """As _LSTM with Γu = σ(z_u + p_u c<t-1>), Γf = σ(z_f + p_f c<t-1>),
    Γo = σ(z_o + p_o c<t-1>) (or p_o c<t> with ``output_peephole="current"``)."""

    def weights(self):
        cell = self.cell
        return [
            self._read(w)
            for w in (cell.recurrent_kernel, cell.peephole_u, cell.peephole_f, cell.peephole_o)
        ]

    def prepare(self, weights):
        self.U, self.p_u, self.p_f, self.p_o = weights
        self.current = self.cell.output_peephole == "current"

    def step(self, p, states):
        a_prev, c_prev = states
        z_u, z_f, z_c, z_o = tf.split(p + tf.matmul(a_prev, self.U), 4, axis=1)
        gamma_u = tf.sigmoid(z_u + self.p_u * c_prev)
        gamma_f = tf.sigmoid(z_f + self.p_f * c_prev)
        c_tilde = tf.tanh(z_c)
        c = gamma_u * c_tilde + gamma_f * c_prev
        gamma_o = tf.sigmoid(z_o + self.p_o * (c if self.current else c_prev))
        a = gamma_o * tf.tanh(c)
        return [a, c], [gamma_u, gamma_f, c_tilde, gamma_o]

    def backward_step(self, states, prev, saved, d_states):
        da, dc = d_states
        c, c_prev = states[1], prev[1]
        gamma_u, gamma_f, c_tilde, gamma_o = saved
        tanh_c = tf.tanh(c)
        dz_o = da * tanh_c * _dsigmoid(gamma_o)
        dc = dc + da * gamma_o * _dtanh(tanh_c)
        if self.current:
            dc = dc + dz_o * self.p_o
        dz_u = dc * c_tilde * _dsigmoid(gamma_u)
        dz_f = dc * c_prev * _dsigmoid(gamma_f)
        dz = tf.concat([dz_u, dz_f, dc * gamma_u * _dtanh(c_tilde), dz_o], axis=1)
        dc_prev = dc * gamma_f + dz_u * self.p_u + dz_f * self.p_f
        if not self.current:
            dc_prev = dc_prev + dz_o * self.p_o
        return dz, [tf.matmul(dz, self.U_t), dc_prev]

    def weight_grads(self, d_proj, states_all, saved):
        c_all = states_all[1]  # (T+1, batch, units): c<0..T>
        c_prev = c_all[:-1]
        seen_by_o = c_all[1:] if self.current else c_prev
        dz_u, dz_f, _, dz_o = tf.split(d_proj, 4, axis=2)
        return [
            _outer_sum(states_all[0][:-1], d_proj),
            tf.reduce_sum(dz_u * c_prev, axis=(0, 1)),
            tf.reduce_sum(dz_f * c_prev, axis=(0, 1)),
            tf.reduce_sum(dz_o * seen_by_o, axis=(0, 1)),
        ]


_KERNELS = {
    BasicRNNCell: _RNN,
    SimplifiedGRUCell: _SimplifiedGRU,
    GRUCell: _GRU,
    LSTMCell: _LSTM,
    PeepholeLSTMCell: _PeepholeLSTM,
}
