import keras
from keras import ops

from zoo.cells._fused import FusedGateCell, dsigmoid, dtanh


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
    num_saved = 2  # Γu, c~ (batch, units) each

    def forward_step(self, projected, states, weights):
        c_prev = states[0]  # (batch, units)
        (u,) = weights  # [U_u | U_c] (units, 2*units)
        z_u, z_c = ops.split(projected + ops.matmul(c_prev, u), 2, axis=1)  # (batch, units) each
        gamma_u = ops.sigmoid(z_u)  # Γu
        c_tilde = ops.tanh(z_c)  # c~
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return [c], [gamma_u, c_tilde]

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        dc, c_prev = d_states[0], prev_states[0]
        gamma_u, c_tilde = saved
        dz = ops.concatenate(
            [dc * (c_tilde - c_prev) * dsigmoid(gamma_u), dc * gamma_u * dtanh(c_tilde)],
            axis=1,
        )  # (batch, 2*units): [dz_u | dz_c]
        return dz, [dc * (1.0 - gamma_u) + ops.matmul(dz, weights_t[0])]
