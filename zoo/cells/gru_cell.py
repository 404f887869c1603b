import keras
from keras import ops

from zoo.cells._fused import FusedGateCell


@keras.saving.register_keras_serializable(package="zoo")
class GRUCell(FusedGateCell):
    """Full GRU cell (update and relevance gates):

        Γu    = σ(W_u [c<t-1>, x<t>] + b_u)
        Γr    = σ(W_r [c<t-1>, x<t>] + b_r)
        c~<t> = tanh(W_c [Γr * c<t-1>, x<t>] + b_c)
        c<t>  = Γu * c~<t> + (1 - Γu) * c<t-1>
        a<t>  = c<t>

    This is Keras' ``GRUCell(reset_after=False)`` with its update gate z = 1 - Γu
    (Keras writes h = z*h_prev + (1-z)*h~): given the same weights with the update
    gate's columns negated, the two cells agree.

    Weights (see ``zoo.cells._fused``), gate columns in the order (Γu, Γr, c~):
    kernel (input_dim, 3*units) = [K_u | K_r | K_c], recurrent_kernel
    (units, 3*units) = [U_u | U_r | U_c], bias (3*units,) = [b_u | b_r | b_c].

    Args:
        units: size of c<t>.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras initializers.

    Call arguments:
        inputs: x<t>, (batch, input_dim).
        states: ``[c<t-1>]``, (batch, units).
    Returns ``(a<t>, [c<t>])``.

    Example:
        >>> zoo.layers.Recurrent(GRUCell(16))(np.zeros((2, 5, 3))).shape
        (2, 16)
    """

    gates = ("u", "r", "c")
    num_states = 1

    def step(self, projected, states):
        c_prev = states[0]  # (batch, units)
        n = self.units
        gate_z = projected[:, : 2 * n] + ops.matmul(
            c_prev, self.recurrent_kernel[:, : 2 * n]
        )  # (batch, 2*units): [Γu | Γr] pre-activations
        gates = ops.sigmoid(gate_z)
        gamma_u, gamma_r = gates[:, :n], gates[:, n:]  # (batch, units) each
        c_tilde = ops.tanh(
            projected[:, 2 * n :]
            + ops.matmul(gamma_r * c_prev, self.recurrent_kernel[:, 2 * n :])
        )  # (batch, units)
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return c, [c]
