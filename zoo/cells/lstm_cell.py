import keras
from keras import ops

from zoo.cells._fused import FusedGateCell, dsigmoid, dtanh


@keras.saving.register_keras_serializable(package="zoo")
class LSTMCell(FusedGateCell):
    """LSTM cell (update, forget and output gates):

        c~<t> = tanh(W_c [a<t-1>, x<t>] + b_c)
        Γu    = σ(W_u [a<t-1>, x<t>] + b_u)
        Γf    = σ(W_f [a<t-1>, x<t>] + b_f)
        Γo    = σ(W_o [a<t-1>, x<t>] + b_o)
        c<t>  = Γu * c~<t> + Γf * c<t-1>
        a<t>  = Γo * tanh(c<t>)

    Weights (see ``zoo.cells._fused``), gate columns in Keras' order (Γu, Γf, c~, Γo),
    so ``keras.layers.LSTMCell`` weights load unchanged: kernel (input_dim, 4*units)
    = [K_u | K_f | K_c | K_o], recurrent_kernel (units, 4*units) =
    [U_u | U_f | U_c | U_o], bias (4*units,) = [b_u | b_f | b_c | b_o].

    Args:
        units: size of a<t> and c<t>.
        unit_forget_bias: add 1 to the initial b_f (Jozefowicz et al. 2015), as Keras does.
        kernel_initializer, recurrent_initializer, bias_initializer: Keras initializers.

    Call arguments:
        inputs: x<t>, (batch, input_dim).
        states: ``[a<t-1>, c<t-1>]``, (batch, units) each.
    Returns ``(a<t>, [a<t>, c<t>])``.

    Example:
        >>> zoo.layers.Recurrent(LSTMCell(16))(np.zeros((2, 5, 3))).shape
        (2, 16)
    """

    gates = ("u", "f", "c", "o")
    num_states = 2
    num_saved = 4  # Γu, Γf, c~, Γo (batch, units) each

    def __init__(self, units, unit_forget_bias=True, **kwargs):
        super().__init__(units, **kwargs)
        self.unit_forget_bias = unit_forget_bias

    def build(self, input_shape):
        super().build(input_shape)
        if self.unit_forget_bias:
            n = self.units
            shift = ops.concatenate(
                [ops.zeros((n,)), ops.ones((n,)), ops.zeros((2 * n,))]
            )  # (4*units,): +1 on b_f only
            self.bias.assign(self.bias + ops.cast(shift, self.bias.dtype))

    def forward_step(self, projected, states, weights):
        a_prev, c_prev = states  # (batch, units) each
        (u,) = weights  # (units, 4*units)
        z_u, z_f, z_c, z_o = ops.split(projected + ops.matmul(a_prev, u), 4, axis=1)
        gamma_u = ops.sigmoid(z_u)  # (batch, units) each
        gamma_f = ops.sigmoid(z_f)
        c_tilde = ops.tanh(z_c)
        gamma_o = ops.sigmoid(z_o)
        c = gamma_u * c_tilde + gamma_f * c_prev
        a = gamma_o * ops.tanh(c)
        return [a, c], [gamma_u, gamma_f, c_tilde, gamma_o]

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        da, dc = d_states
        c, c_prev = states[1], prev_states[1]
        gamma_u, gamma_f, c_tilde, gamma_o = saved
        tanh_c = ops.tanh(c)
        dc = dc + da * gamma_o * dtanh(tanh_c)  # all of ∂L/∂c<t>
        dz = ops.concatenate(
            [
                dc * c_tilde * dsigmoid(gamma_u),
                dc * c_prev * dsigmoid(gamma_f),
                dc * gamma_u * dtanh(c_tilde),
                da * tanh_c * dsigmoid(gamma_o),
            ],
            axis=1,
        )  # (batch, 4*units)
        return dz, [ops.matmul(dz, weights_t[0]), dc * gamma_f]

    def get_config(self):
        return {**super().get_config(), "unit_forget_bias": self.unit_forget_bias}
