import keras
from keras import ops

from zoo.cells._fused import FusedGateCell


@keras.saving.register_keras_serializable(package="zoo")
class SimplifiedGRUCell(FusedGateCell):
    """Simplified GRU cell (update gate only), as first shown in the course:

        c~<t> = tanh(W_c [c<t-1>, x<t>] + b_c)
        Γu    = σ(W_u [c<t-1>, x<t>] + b_u)
        c<t>  = Γu * c~<t> + (1 - Γu) * c<t-1>
        a<t>  = c<t>

    Weights (see ``zoo.cells._fused``), gate columns in the order (Γu, c~):
    kernel (input_dim, 2*units) = [K_u | K_c], recurrent_kernel (units, 2*units) =
    [U_u | U_c], bias (2*units,) = [b_u | b_c]; W_u = [U_u | K_u], W_c = [U_c | K_c].

    Args:
        units: size of c<t>.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras initializers.

    Call arguments:
        inputs: x<t>, (batch, input_dim).
        states: ``[c<t-1>]``, (batch, units).
    Returns ``(a<t>, [c<t>])``.

    Example:
        >>> zoo.layers.Recurrent(SimplifiedGRUCell(16))(np.zeros((2, 5, 3))).shape
        (2, 16)
    """

    gates = ("u", "c")
    num_states = 1

    def step(self, projected, states):
        c_prev = states[0]  # (batch, units)
        z = projected + ops.matmul(c_prev, self.recurrent_kernel)  # (batch, 2*units)
        gamma_u = ops.sigmoid(z[:, : self.units])  # Γu (batch, units)
        c_tilde = ops.tanh(z[:, self.units :])  # c~ (batch, units)
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return c, [c]
