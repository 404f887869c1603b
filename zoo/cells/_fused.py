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
"""

import keras
from keras import ops


class FusedGateCell(keras.layers.Layer):
    """Base of the zoo cells: weights of G gates fused into three tensors.

    Subclasses set ``gates`` (names in column order) and ``num_states`` and
    implement ``step(projected, states)``.

    Keras cell API: ``call(inputs, states) -> (output, new_states)`` with
    inputs (batch, input_dim) and states a list of (batch, units) tensors, so a zoo
    cell also runs inside ``keras.layers.RNN``.
    """

    gates = ()
    num_states = 1

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

    def step(self, projected, states):
        """One time step from the projected input (batch, G*units); see subclasses."""
        raise NotImplementedError

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
