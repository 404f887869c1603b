import keras
import tensorflow as tf
from keras import ops

from zoo.layers import fused_recurrence


@keras.saving.register_keras_serializable(package="zoo")
class Recurrent(keras.layers.Layer):
    """Runs a zoo cell over time: a<t>, state<t> = cell(x<t>, state<t-1>), t = 1..T.

    The input projections ``x<t> @ kernel + bias`` of all T steps are computed in one
    matrix product before the loop; the loop only does the recurrent part. Cells that
    bring their backward step (the five zoo cells: the fused-step protocol of
    ``zoo.cells._fused``) run through ``zoo.layers.fused_recurrence``, whose hand-written
    backward pass every gradient of the layer takes, however it is called; other cells
    (and subclasses that change a zoo cell's step) run a generic ``tf.while_loop``
    differentiated by autodiff.

    Masking: where ``mask[b, t]`` is False the step is skipped for that sequence:
    its state is carried over unchanged and its output is zero (or the previous
    output with ``zero_output_for_mask=False``), so a padded, masked batch gives the
    same outputs and final states as each sequence run alone. The mask comes from
    an upstream layer (``Embedding(mask_zero=True)``, ``Masking``) or is passed.

    Args:
        cell: a zoo cell instance (``zoo.cells``) or its serialized config.
        return_sequences: return a<1..T> (batch, time, units) instead of the last
            a<t> (batch, units).
        return_state: also return the final states (a list after the output).
        go_backwards: process t = T..1; with ``return_sequences`` the outputs come
            in that reversed order, as in Keras.
        zero_output_for_mask: masked steps output zeros (default) rather than the
            previous output.
        stateful: must be False (kept for ``keras.layers.Bidirectional``); carry
            state across calls with ``return_state`` and ``initial_state``.

    Call arguments:
        sequences: (batch, time, input_dim).
        initial_state: optional list of (batch, units) tensors, the cell's states.
        mask: optional (batch, time) booleans, True for real steps.
        training: accepted for the Keras layer API; the recurrence is the same
            either way (the fast backward pass does not depend on it).

    Example:
        >>> layer = Recurrent(zoo.cells.LSTMCell(32), return_sequences=True)
        >>> layer(np.zeros((4, 10, 8))).shape
        (4, 10, 32)
    """

    def __init__(
        self,
        cell,
        return_sequences=False,
        return_state=False,
        go_backwards=False,
        zero_output_for_mask=True,
        stateful=False,
        **kwargs,
    ):
        if isinstance(cell, dict):
            cell = keras.saving.deserialize_keras_object(cell)
        if not hasattr(cell, "step") or not hasattr(cell, "input_projection"):
            raise ValueError(
                "Expected a zoo cell (with input_projection and step). "
                f"Received: cell={cell!r}; wrap other cells in keras.layers.RNN."
            )
        if stateful:
            raise ValueError(
                "Recurrent does not support stateful=True; pass initial_state and "
                "use return_state=True to carry state across calls."
            )
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences = return_sequences
        self.return_state = return_state
        self.go_backwards = go_backwards
        self.zero_output_for_mask = zero_output_for_mask
        self.stateful = False
        self.supports_masking = True
        self.input_spec = keras.layers.InputSpec(min_ndim=3)

    @property
    def units(self):
        return self.cell.units

    @property
    def num_states(self):
        return self.cell.num_states

    def build(self, sequences_shape, initial_state_shape=None):
        if not self.cell.built:
            self.cell.build(sequences_shape)

    def compute_output_shape(self, sequences_shape, initial_state_shape=None):
        batch, time = sequences_shape[0], sequences_shape[1]
        units = self.cell.units
        output = (batch, time, units) if self.return_sequences else (batch, units)
        if self.return_state:
            return (output,) + tuple((batch, units) for _ in range(self.num_states))
        return output

    def compute_mask(self, sequences, mask=None):
        out_mask = mask if self.return_sequences else None
        if self.return_state:
            return [out_mask] + [None] * self.num_states
        return out_mask

    def call(self, sequences, initial_state=None, mask=None, training=False):
        batch = ops.shape(sequences)[0]
        if initial_state is None:
            states = self.cell.get_initial_state(batch)
        else:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            if len(states) != self.num_states:
                raise ValueError(
                    f"{type(self.cell).__name__} has {self.num_states} state(s); "
                    f"received {len(states)} initial state tensor(s)."
                )

        x = ops.transpose(sequences, (1, 0, 2))  # (time, batch, input_dim)
        step_mask = None
        if mask is not None:
            step_mask = ops.transpose(ops.cast(mask, "bool"), (1, 0))[:, :, None]  # (time, batch, 1)
        if self.go_backwards:
            x = ops.flip(x, axis=0)
            if step_mask is not None:
                step_mask = ops.flip(step_mask, axis=0)
        projected = self.cell.input_projection(x)  # (time, batch, G*units)
        # Mixed precision (the cell computes in bfloat16 / float16): the input projection
        # runs in it; the recurrence (states, gates, a<t-1> @ U with U read rounded to it,
        # as Keras autocasts weights) in float32, so the states that accumulate over time
        # are not rounded at every step; outputs come back in the cell's dtype.
        out_dtype = keras.backend.standardize_dtype(projected.dtype)
        loop_dtype = "float32" if out_dtype in ("bfloat16", "float16") else out_dtype
        projected = ops.cast(projected, loop_dtype)
        states = [ops.cast(s, loop_dtype) for s in states]

        if fused_recurrence.supports(self.cell):
            a_seq, final_states = fused_recurrence.run(self.cell, projected, states, step_mask)
            outputs, last_output = _outputs_from_states(
                a_seq, step_mask, self.zero_output_for_mask
            )
        else:
            outputs, last_output, final_states = _time_loop(
                self.cell,
                projected,
                states,
                step_mask,
                return_sequences=self.return_sequences,
                zero_output_for_mask=self.zero_output_for_mask,
            )
        if self.return_sequences:
            output = ops.transpose(outputs, (1, 0, 2))  # (batch, time, units)
        else:
            output = last_output
        output = ops.cast(output, out_dtype)
        if self.return_state:
            return [output] + [ops.cast(s, out_dtype) for s in final_states]
        return output

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": keras.saving.serialize_keras_object(self.cell),
                "return_sequences": self.return_sequences,
                "return_state": self.return_state,
                "go_backwards": self.go_backwards,
                "zero_output_for_mask": self.zero_output_for_mask,
            }
        )
        return config


def _outputs_from_states(a_seq, step_mask, zero_output_for_mask):
    """Layer outputs from the state sequence a<t> (time, batch, units) of the fused path.

    Masked steps carry a<t-1> in a_seq; their output is zero, or with
    ``zero_output_for_mask=False`` the last real output (zero before the first real
    step), as in ``_time_loop``. Returns (outputs (time, batch, units), last output).
    """
    if step_mask is None:
        return a_seq, _last_step(a_seq)
    if zero_output_for_mask:
        outputs = tf.where(step_mask, a_seq, tf.zeros_like(a_seq))
    else:
        seen = tf.cast(tf.math.cumsum(tf.cast(step_mask, "int32"), axis=0), "bool")  # (time, batch, 1)
        outputs = tf.where(seen, a_seq, tf.zeros_like(a_seq))
    any_real = tf.reduce_any(step_mask, axis=0)  # (batch, 1)
    last = _last_step(a_seq)
    return outputs, tf.where(any_real, last, tf.zeros_like(last))


def _last_step(seq):
    """seq[-1], or zeros (batch, units) for a sequence of length 0."""
    if seq.shape[0] is not None and seq.shape[0] > 0:
        return seq[-1]
    return tf.cond(
        tf.shape(seq)[0] > 0, lambda: seq[-1], lambda: tf.zeros(tf.shape(seq)[1:], seq.dtype)
    )


def _time_loop(cell, projected, states, step_mask, return_sequences, zero_output_for_mask):
    """Drives ``cell.step`` over the time-major ``projected`` (time, batch, G*units).

    The generic path, for cells without a fused backward step (``fused_recurrence``)
    and as the reference the fused path is tested against.

    A ``tf.while_loop`` over TensorArrays: ``keras.ops.scan`` on the TensorFlow
    backend requires per-step outputs shaped like the carry, which the state lists
    of the zoo cells are not. Reading the inputs from a TensorArray (not slicing a
    tensor) keeps the gradient from materialising a full-size zero tensor per step.

    Returns (outputs (time, batch, units) or None, last output, final states).
    """
    time = tf.shape(projected)[0]
    inputs_ta = tf.TensorArray(projected.dtype, size=time).unstack(projected)
    if step_mask is not None:
        mask_ta = tf.TensorArray(tf.bool, size=time).unstack(step_mask)
    last_output = tf.zeros_like(states[0])  # (batch, units)
    outputs_ta = (tf.TensorArray(projected.dtype, size=time),) if return_sequences else ()

    def body(t, states, last_output, *outputs_ta):
        output, new_states = cell.step(inputs_ta.read(t), states)
        emitted = output
        if step_mask is not None:
            m = mask_ta.read(t)  # (batch, 1)
            new_states = [tf.where(m, n, s) for n, s in zip(new_states, states)]
            output = tf.where(m, output, last_output)
            emitted = tf.where(m, output, tf.zeros_like(output)) if zero_output_for_mask else output
        outputs_ta = tuple(ta.write(t, emitted) for ta in outputs_ta)
        return (t + 1, list(new_states), output) + outputs_ta

    result = tf.while_loop(
        lambda t, *_: t < time,
        body,
        (tf.constant(0), list(states), last_output) + outputs_ta,
        maximum_iterations=time,
    )
    outputs = result[3].stack() if return_sequences else None
    return outputs, result[2], result[1]
