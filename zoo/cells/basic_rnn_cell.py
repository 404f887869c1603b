import keras
from keras import ops

from zoo.cells._fused import FusedGateCell, dtanh


@keras.saving.register_keras_serializable(package="zoo")
class BasicRNNCell(FusedGateCell):
    """Basic RNN cell: a<t> = g(W_a [a<t-1>, x<t>] + b_a), g = tanh or relu.

    Weights (see ``zoo.cells._fused``): W_a = [recurrent_kernel | kernel],
    b_a = bias. One gate, so kernel is (input_dim, units), recurrent_kernel
    (units, units), bias (units,).

    Args:
        units: size of a<t>.
        activation: g, ``"tanh"`` (default) or ``"relu"``.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras
            initializers of the three weights.

    Call arguments:
        inputs: x<t>, (batch, input_dim).
        states: ``[a<t-1>]``, (batch, units).
    Returns ``(a<t>, [a<t>])``.

    Example:
        >>> layer = zoo.layers.Recurrent(BasicRNNCell(32, activation="relu"))
        >>> layer(np.zeros((4, 10, 8))).shape
        (4, 32)
    """

    gates = ("a",)
    num_states = 1
    num_saved = 0

    def __init__(self, units, activation="tanh", **kwargs):
        if activation not in ("tanh", "relu"):
            raise ValueError(
                f"Expected activation 'tanh' or 'relu'. Received: activation={activation!r}"
            )
        super().__init__(units, **kwargs)
        self.activation = activation
        self._g = ops.tanh if activation == "tanh" else ops.relu

    def forward_step(self, projected, states, weights):
        (u,) = weights  # U_a (units, units)
        a = self._g(projected + ops.matmul(states[0], u))  # a<t> (batch, units)
        return [a], []

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        a = states[0]  # a<t> = g(z<t>)
        g_prime = dtanh(a) if self.activation == "tanh" else ops.cast(a > 0, a.dtype)
        dz = d_states[0] * g_prime  # (batch, units)
        return dz, [ops.matmul(dz, weights_t[0])]

    def get_config(self):
        return {**super().get_config(), "activation": self.activation}
