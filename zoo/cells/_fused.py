"""Shared weight layout of the zoo cells.

The course writes every gate as ``W_g [a<t-1>, x<t>] + b_g``. A zoo cell stores the
same numbers split by the columns of the concatenation, with all gates side by side:

    W_g = [U_g | K_g]       U_g: (units, units) acts on a<t-1> (or c<t-1>)
                            K_g: (input_dim, units) acts on x<t>
    W_g [a, x] + b_g  =  a @ U_g + x @ K_g + b_g      (row-vector convention)

    kernel            (input_dim, G * units) = [K_g1 | K_g2 | ...]
    recurrent_kernel  (units, G * units)     = [U_g1 | U_g2 | ...]
    bias              (G * units,)           = [b_g1 | b_g2 | ...]

Splitting the product lets the sequence layer compute ``x @ kernel + bias`` for every
time step in one large matrix product before the time loop; only ``a @ U`` stays in
the loop. Each cell's docstring gives its gate order.

The fused-step protocol. A cell writes its equations once, as ``forward_step``, and
next to them their derivative, ``backward_step``; ``zoo.layers.fused_recurrence`` drives
both over the sequence (one forward loop, one reverse loop, a hand-written gradient)
and asks the cell for nothing else:

    num_saved                                how many tensors forward_step saves a step
    recurrent_weights(dtype)                 -> [U, ...]: the tensors the recurrence reads
    forward_step(P<t>, states<t-1>, weights) -> (states<t>, saved<t>)
    backward_step(weights_t, states<t>, states<t-1>, saved<t>, ∂L/∂states<t>)
                                             -> (dz<t>, ∂L/∂states<t-1>)
    recurrent_weight_grads(dz, states_all, saved)
                                             -> gradients of recurrent_weights

``step`` (the generic loop, ``keras.layers.RNN``) is ``forward_step`` on the cell's own
weights, so both loops run the same equations. The first state is the cell's output
a<t>. dz<t> = ∂L/∂z<t> for z<t> = P<t> + (the recurrent products) is also ∂L/∂P<t>,
from which autodiff gets the kernel and bias gradients. ``weights_t`` is
``recurrent_weights`` with every matrix transposed once before the reverse loop
(``matmul(dz, U, transpose_b=True)`` runs about 3x slower on CPU at these sizes);
vectors are unchanged. ``states_all[i]`` (T+1, batch, units) is state i at t = 0..T,
``saved[k]`` (T, ...) the k-th saved tensor of every step, ``dz`` (T, batch, G*units).

The fused path runs a cell only if ``has_fused_backward(cell)``: a subclass that
overrides ``step``, ``forward_step`` or ``recurrent_weights`` without also defining
``backward_step`` takes the generic loop (autodiff through its own equations), never
its parent's backward pass.
"""

import keras
import tensorflow as tf
from keras import ops

_FORWARD_SIDE = ("step", "forward_step", "recurrent_weights")


class FusedGateCell(keras.layers.Layer):
    """Base of the zoo cells: weights of G gates fused into three tensors.

    Subclasses set ``gates`` (names in column order), ``num_states`` and
    ``num_saved`` and implement ``forward_step`` and ``backward_step`` (the protocol
    in the module docstring); ``recurrent_weights`` and ``recurrent_weight_grads``
    default to U alone.

    Keras cell API: ``call(inputs, states) -> (output, new_states)`` with
    inputs (batch, input_dim) and states a list of (batch, units) tensors, so a zoo
    cell also runs inside ``keras.layers.RNN``.
    """

    gates = ()
    num_states = 1
    num_saved = 0

    def __init__(
        self,
        units,
        kernel_initializer="glorot_uniform",
        recurrent_initializer="orthogonal",
        bias_initializer="zeros",
        **kwargs,
    ):
        if not isinstance(units, int) or isinstance(units, bool) or units <= 0:
            raise ValueError(f"Expected units > 0 (an int). Received: units={units!r}")
        super().__init__(**kwargs)
        self.units = units
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.recurrent_initializer = keras.initializers.get(recurrent_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.state_size = units if self.num_states == 1 else [units] * self.num_states
        self.output_size = units

    def build(self, input_shape):
        input_dim = input_shape[-1]
        if input_dim is None:
            raise ValueError(
                f"{type(self).__name__} needs a known last input dimension. "
                f"Received: input_shape={input_shape}"
            )
        width = len(self.gates) * self.units
        self.kernel = self.add_weight(
            shape=(input_dim, width), initializer=self.kernel_initializer, name="kernel"
        )
        self.recurrent_kernel = self.add_weight(
            shape=(self.units, width),
            initializer=self.recurrent_initializer,
            name="recurrent_kernel",
        )
        self.bias = self.add_weight(
            shape=(width,), initializer=self.bias_initializer, name="bias"
        )

    def input_projection(self, inputs):
        """x @ kernel + bias for (batch, input_dim) or (batch, time, input_dim)."""
        return ops.add(ops.matmul(inputs, self.kernel), self.bias)

    def recurrent_weights(self, dtype):
        """[U (units, G*units)] cast to ``dtype``: what ``forward_step`` reads."""
        return [ops.cast(self.recurrent_kernel, dtype)]

    def forward_step(self, projected, states, weights):
        """The cell's equations: (states<t>, saved<t>) from P<t> (batch, G*units),
        states<t-1> (a list of (batch, units)) and ``recurrent_weights``."""
        raise NotImplementedError

    backward_step = None
    """``backward_step(weights_t, states, prev_states, saved, d_states) -> (dz, d_prev)``,
    the derivative of ``forward_step`` (None: no fused path, autodiff instead)."""

    def recurrent_weight_grads(self, dz, states_all, saved):
        """Gradients of ``recurrent_weights``; for [U]: ∂L/∂U = Σ_t a<t-1>ᵀ dz<t>."""
        return [outer_sum(states_all[0][:-1], dz)]

    def step(self, projected, states):
        """One time step: (a<t>, states<t>) from P<t> (batch, G*units) and states<t-1>."""
        new_states, _ = self.forward_step(
            projected, list(states), self.recurrent_weights(projected.dtype)
        )
        return new_states[0], new_states

    def call(self, inputs, states, training=False):
        if not isinstance(states, (list, tuple)):
            states = [states]
        return self.step(self.input_projection(inputs), list(states))

    def get_initial_state(self, batch_size=None):
        return [
            ops.zeros((batch_size, self.units), dtype=self.compute_dtype)
            for _ in range(self.num_states)
        ]

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "recurrent_initializer": keras.initializers.serialize(
                    self.recurrent_initializer
                ),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config


def _owner(cls, name):
    """The class of ``cls.__mro__`` whose body defines ``name`` (None: none does)."""
    return next((klass for klass in cls.__mro__ if name in vars(klass)), None)


def has_fused_backward(cell):
    """True if ``cell``'s ``backward_step`` is the derivative of its own equations.

    That is: ``backward_step`` is implemented, and the class defining it is the class
    (or a subclass of the class) defining each of ``step``, ``forward_step`` and
    ``recurrent_weights``. A subclass that changes the equations without writing their
    derivative is refused, so it never runs its parent's backward pass.
    """
    names = _FORWARD_SIDE + ("backward_step", "recurrent_weight_grads")
    if not all(callable(getattr(cell, name, None)) for name in names):
        return False
    cls = type(cell)
    owners = [_owner(cls, name) for name in _FORWARD_SIDE]
    backward = _owner(cls, "backward_step")
    if backward is None or None in owners:
        return False
    return all(issubclass(backward, owner) for owner in owners)


def outer_sum(a, dz):
    """Σ_t a<t>ᵀ dz<t> over time and batch, a (T, batch, d), dz (T, batch, k): one
    (d, T*batch) @ (T*batch, k) product -> (d, k)."""
    a_rows = ops.reshape(a, (-1, a.shape[-1]))  # (T*batch, d)
    dz_rows = ops.reshape(dz, (-1, dz.shape[-1]))  # (T*batch, k)
    # tf.matmul's transpose_a (keras.ops has none): ops.transpose would materialise
    # aᵀ, a (d, T*batch) copy, measured +2-7 MiB on a training step.
    return tf.matmul(a_rows, dz_rows, transpose_a=True)


def dsigmoid(s):
    """σ'(z) from s = σ(z)."""
    return s * (1.0 - s)


def dtanh(y):
    """tanh'(z) from y = tanh(z)."""
    return 1.0 - y * y
