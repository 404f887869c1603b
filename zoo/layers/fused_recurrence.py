"""Fast path of ``Recurrent``: the whole recurrence with a hand-written backward pass.

Autodiff through a ``tf.while_loop`` keeps every intermediate of every op of every
step and replays the loop op by op. Instead, each zoo cell writes the derivative of
its step next to its equations (the fused-step protocol of ``zoo.cells._fused``), and
this module drives them (backpropagation through time, one reverse loop):

    forward   for t = 1..T:  states<t>, saved<t> = cell.forward_step(P<t>, states<t-1>)
              keeps every state<t> and the tensors the cell saves (its gates)
    backward  for t = T..1:  dz<t>, ∂L/∂states<t-1> = cell.backward_step(...)
    then      cell.recurrent_weight_grads: ∂L/∂U = Σ_t a<t-1>ᵀ dz<t> as ONE
              (units, T·batch) @ (T·batch, G·units) product; dz<t> = ∂L/∂P<t> goes to
              autodiff, which gets the kernel and bias gradients (one large product).

Both loops run ``UNROLL`` steps per ``tf.while_loop`` iteration (``_loop``).

P<t> = x<t> @ kernel + bias is the projected input (``cell.input_projection``), computed
for all steps before the loop. Masked steps (mask False) carry the state over:
state<t> = m·cell(...) + (1 - m)·state<t-1>, and the backward pass routes the state
gradient around the cell where m = 0.

The recurrence always carries its gradient, whatever the caller's ``training`` flag:
any call under a ``tf.GradientTape`` (``layer(x)``, ``training=False``, ``fit``, inside
or outside a ``tf.function``) gets the hand-written backward pass. Where no gradient is
taken in a graph (``predict``, a SavedModel signature) the saved tensors feed nothing and
TensorFlow prunes them: measured, the forward pass costs the same as a loop that saves
nothing (benchmarks/RESULTS.md).

``tests/zoo/test_fast_paths.py`` checks values and gradients against the step-by-step
loop (autodiff through ``cell.step``) and finite differences. Cells without a
backward step, and subclasses that change a zoo cell's equations without writing their
derivative, take the generic loop (``zoo.cells._fused.has_fused_backward``).
"""

import tensorflow as tf

from zoo.cells._fused import has_fused_backward


def supports(cell):
    """True if ``cell`` brings the fused-step protocol for its own equations."""
    return has_fused_backward(cell)


def run(cell, projected, states, step_mask=None):
    """Runs ``cell`` over time-major ``projected`` with the hand-written gradient.

    Args:
        cell: a built cell with ``supports(cell)``.
        projected: P (time, batch, G*units), ``cell.input_projection`` of x.
        states: the cell's initial states, a list of (batch, units) tensors.
        step_mask: optional (time, batch, 1) booleans, True for real steps.

    Returns ``(a_seq, final_states)``: a_seq (time, batch, units) holds the state a<t>
    (masked steps carry a<t-1>), the cell's output at every step; final_states the
    list of states after the last step.
    """
    weights = list(cell.recurrent_weights(projected.dtype))
    mask = None if step_mask is None else tf.cast(step_mask, projected.dtype)
    num_states, num_weights = len(states), len(weights)

    @tf.custom_gradient
    def recurrence(projected, *args):
        states0, weights = list(args[:num_states]), list(args[num_states:])
        states_all, saved, finals = _forward(cell, weights, projected, states0, mask)

        def grad(d_a_seq, *d_finals):
            d_a_seq = _zeros_if_none(d_a_seq, states_all[0][1:])
            d_finals = [_zeros_if_none(d, s) for d, s in zip(d_finals, states0)]
            weights_t = [tf.transpose(w) if w.shape.rank == 2 else w for w in weights]
            d_proj, d_states0 = _backward(cell, weights_t, states_all, saved, mask, d_a_seq, d_finals)
            if d_proj is None:  # T = 0, eagerly
                d_proj = tf.zeros_like(projected)
            d_weights = list(cell.recurrent_weight_grads(d_proj, states_all, saved))
            if len(d_weights) != num_weights:
                raise ValueError(
                    f"{type(cell).__name__}.recurrent_weight_grads returned {len(d_weights)} "
                    f"gradients for {num_weights} recurrent weights."
                )
            return [d_proj] + d_states0 + d_weights

        return (states_all[0][1:], *finals), grad

    results = recurrence(projected, *states, *weights)
    return results[0], list(results[1:])


def _zeros_if_none(d, like):
    return tf.zeros_like(like) if d is None else d


def _forward(cell, weights, projected, states0, mask):
    """The forward loop.

    Returns (states_all, saved, final states): states_all[i] (T+1, batch, units) =
    state i at t = 0..T; saved[k] (T, ...) the k-th tensor ``cell.forward_step`` saves.
    """
    time = tf.shape(projected)[0]
    dtype = projected.dtype
    state_tas = [tf.TensorArray(dtype, size=time + 1).write(0, s) for s in states0]
    saved_tas = [tf.TensorArray(dtype, size=time) for _ in range(cell.num_saved)]

    def step(t, carry):
        states, state_tas, saved_tas = carry
        new_states, saved = cell.forward_step(projected[t], states, weights)
        if len(saved) != cell.num_saved:
            raise ValueError(
                f"{type(cell).__name__}.forward_step saved {len(saved)} tensors; "
                f"its num_saved is {cell.num_saved}."
            )
        if mask is not None:
            m = mask[t] > 0  # (batch, 1)
            new_states = [tf.where(m, n, s) for n, s in zip(new_states, states)]
        state_tas = [ta.write(t + 1, s) for ta, s in zip(state_tas, new_states)]
        saved_tas = [ta.write(t, s) for ta, s in zip(saved_tas, saved)]
        return list(new_states), state_tas, saved_tas

    finals, state_tas, saved_tas = _loop(time, step, (list(states0), state_tas, saved_tas))
    # Stacked tensors, not TensorArrays, cross into the backward pass: a gradient
    # function that captures a TensorArray's variant cannot be saved in a SavedModel,
    # and measured it needed more memory.
    saved = [_stack(ta) for ta in saved_tas]
    if any(s is None for s in saved):
        # T = 0, eagerly: no write told the arrays their shapes; one step on zeros does.
        _, like = cell.forward_step(tf.zeros(tf.shape(projected)[1:], dtype), list(states0), weights)
        saved = [tf.zeros([0] + l.shape.as_list(), dtype) if s is None else s for s, l in zip(saved, like)]
    return [ta.stack() for ta in state_tas], saved, list(finals)


def _backward(cell, weights_t, states_all, saved, mask, d_a_seq, d_finals):
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
        dz, d_prev = cell.backward_step(
            weights_t,
            [s[t + 1] for s in states_all],  # state<t>
            [s[t] for s in states_all],  # state<t-1>
            [s[t] for s in saved],
            d_in,
        )
        d_prev = list(d_prev)
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
    """``ta.stack()``, also for an empty array whose element shape is partly known (T = 0
    in a graph); None for an array of unknown rank (never written, eagerly)."""
    if ta.element_shape.is_fully_defined():
        return ta.stack()
    if ta.element_shape.rank is None:
        return None
    return tf.cond(
        ta.size() > 0,
        ta.stack,
        lambda: tf.zeros([0] + [d if d is not None else 0 for d in ta.element_shape.as_list()], ta.dtype),
    )
