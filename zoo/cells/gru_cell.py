import keras
from keras import ops

from zoo.cells._fused import FusedGateCell, dsigmoid, dtanh, outer_sum


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
    num_saved = 3  # [Γu | Γr] (batch, 2*units), c~, Γr * c<t-1> (batch, units)

    def recurrent_weights(self, dtype):
        n = self.units
        u = ops.cast(self.recurrent_kernel, dtype)
        return [u[:, : 2 * n], u[:, 2 * n :]]  # U_ur = [U_u | U_r] (units, 2*units), U_c

    def forward_step(self, projected, states, weights):
        c_prev = states[0]  # (batch, units)
        u_ur, u_c = weights
        n = self.units
        gates = ops.sigmoid(projected[:, : 2 * n] + ops.matmul(c_prev, u_ur))  # [Γu | Γr]
        gamma_u, gamma_r = gates[:, :n], gates[:, n:]  # (batch, units) each
        rc = gamma_r * c_prev  # Γr * c<t-1>
        c_tilde = ops.tanh(projected[:, 2 * n :] + ops.matmul(rc, u_c))  # (batch, units)
        c = gamma_u * c_tilde + (1.0 - gamma_u) * c_prev
        return [c], [gates, c_tilde, rc]

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        dc, c_prev = d_states[0], prev_states[0]
        u_ur_t, u_c_t = weights_t
        gates, c_tilde, _ = saved
        gamma_u, gamma_r = ops.split(gates, 2, axis=1)
        dz_c = dc * gamma_u * dtanh(c_tilde)  # (batch, units)
        d_rc = ops.matmul(dz_c, u_c_t)  # ∂L/∂(Γr * c<t-1>)
        dz_ur = ops.concatenate(
            [dc * (c_tilde - c_prev) * dsigmoid(gamma_u), d_rc * c_prev * dsigmoid(gamma_r)],
            axis=1,
        )  # (batch, 2*units)
        d_prev = dc * (1.0 - gamma_u) + d_rc * gamma_r + ops.matmul(dz_ur, u_ur_t)
        return ops.concatenate([dz_ur, dz_c], axis=1), [d_prev]

    def recurrent_weight_grads(self, dz, states_all, saved):
        n = self.units
        d_u_ur = outer_sum(states_all[0][:-1], dz[:, :, : 2 * n])  # Σ c<t-1>ᵀ dz_ur<t>
        d_u_c = outer_sum(saved[2], dz[:, :, 2 * n :])  # Σ (Γr c<t-1>)ᵀ dz_c<t>
        return [d_u_ur, d_u_c]
