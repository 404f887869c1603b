import keras
from keras import ops

from zoo.cells._fused import dsigmoid, dtanh, outer_sum
from zoo.cells.lstm_cell import LSTMCell


@keras.saving.register_keras_serializable(package="zoo")
class PeepholeLSTMCell(LSTMCell):
    """LSTM cell whose gates also see the memory cell elementwise (peepholes):

        c~<t> = tanh(W_c [a<t-1>, x<t>] + b_c)
        Γu    = σ(W_u [a<t-1>, x<t>] + p_u * c<t-1> + b_u)
        Γf    = σ(W_f [a<t-1>, x<t>] + p_f * c<t-1> + b_f)
        Γo    = σ(W_o [a<t-1>, x<t>] + p_o * c<t-1> + b_o)     (course, default)
        c<t>  = Γu * c~<t> + Γf * c<t-1>
        a<t>  = Γo * tanh(c<t>)

    p_u, p_f, p_o are vectors (units,), one per gate: the peephole is elementwise
    (a diagonal matrix), each unit sees only its own memory cell. The course lets all
    three gates look at c<t-1>. Gers, Schraudolph & Schmidhuber (2002) compute the
    output gate after the cell update, from c<t>:
    Γo = σ(W_o [a<t-1>, x<t>] + p_o * c<t> + b_o); ``output_peephole="current"``
    selects that form. With all peepholes at zero the cell is exactly ``LSTMCell``.

    Weights: as ``LSTMCell`` (gate columns Γu, Γf, c~, Γo), plus
    ``peephole_u``, ``peephole_f``, ``peephole_o`` (units,) = p_u, p_f, p_o.

    Args:
        units: size of a<t> and c<t>.
        output_peephole: ``"previous"`` (course: Γo sees c<t-1>) or ``"current"``
            (Gers et al. 2002: Γo sees c<t>).
        peephole_initializer: initializer of p_u, p_f, p_o (default zeros).
        Other arguments as ``LSTMCell``.

    Call arguments:
        inputs: x<t>, (batch, input_dim).
        states: ``[a<t-1>, c<t-1>]``, (batch, units) each.
    Returns ``(a<t>, [a<t>, c<t>])``.

    Example:
        >>> zoo.layers.Recurrent(PeepholeLSTMCell(16))(np.zeros((2, 5, 3))).shape
        (2, 16)
    """

    def __init__(
        self, units, output_peephole="previous", peephole_initializer="zeros", **kwargs
    ):
        if output_peephole not in ("previous", "current"):
            raise ValueError(
                "Expected output_peephole 'previous' or 'current'. "
                f"Received: output_peephole={output_peephole!r}"
            )
        super().__init__(units, **kwargs)
        self.output_peephole = output_peephole
        self.peephole_initializer = keras.initializers.get(peephole_initializer)

    def build(self, input_shape):
        super().build(input_shape)
        for gate in ("u", "f", "o"):
            weight = self.add_weight(
                shape=(self.units,),
                initializer=self.peephole_initializer,
                name=f"peephole_{gate}",
            )
            setattr(self, f"peephole_{gate}", weight)

    def recurrent_weights(self, dtype):
        weights = (self.recurrent_kernel, self.peephole_u, self.peephole_f, self.peephole_o)
        return [ops.cast(w, dtype) for w in weights]  # U (units, 4*units), p_u, p_f, p_o (units,)

    def forward_step(self, projected, states, weights):
        a_prev, c_prev = states  # (batch, units) each
        u, p_u, p_f, p_o = weights
        z_u, z_f, z_c, z_o = ops.split(projected + ops.matmul(a_prev, u), 4, axis=1)
        gamma_u = ops.sigmoid(z_u + p_u * c_prev)  # (batch, units) each
        gamma_f = ops.sigmoid(z_f + p_f * c_prev)
        c_tilde = ops.tanh(z_c)
        c = gamma_u * c_tilde + gamma_f * c_prev
        seen_by_o = c_prev if self.output_peephole == "previous" else c
        gamma_o = ops.sigmoid(z_o + p_o * seen_by_o)
        a = gamma_o * ops.tanh(c)
        return [a, c], [gamma_u, gamma_f, c_tilde, gamma_o]

    def backward_step(self, weights_t, states, prev_states, saved, d_states):
        u_t, p_u, p_f, p_o = weights_t
        current = self.output_peephole == "current"
        da, dc = d_states
        c, c_prev = states[1], prev_states[1]
        gamma_u, gamma_f, c_tilde, gamma_o = saved
        tanh_c = ops.tanh(c)
        dz_o = da * tanh_c * dsigmoid(gamma_o)
        dc = dc + da * gamma_o * dtanh(tanh_c)
        if current:  # Γo saw c<t>
            dc = dc + dz_o * p_o
        dz_u = dc * c_tilde * dsigmoid(gamma_u)
        dz_f = dc * c_prev * dsigmoid(gamma_f)
        dz = ops.concatenate([dz_u, dz_f, dc * gamma_u * dtanh(c_tilde), dz_o], axis=1)
        dc_prev = dc * gamma_f + dz_u * p_u + dz_f * p_f
        if not current:  # Γo saw c<t-1>
            dc_prev = dc_prev + dz_o * p_o
        return dz, [ops.matmul(dz, u_t), dc_prev]

    def recurrent_weight_grads(self, dz, states_all, saved):
        a_all, c_all = states_all  # (T+1, batch, units): t = 0..T
        c_prev = c_all[:-1]
        seen_by_o = c_all[1:] if self.output_peephole == "current" else c_prev
        dz_u, dz_f, _, dz_o = ops.split(dz, 4, axis=2)
        return [
            outer_sum(a_all[:-1], dz),
            ops.sum(dz_u * c_prev, axis=(0, 1)),
            ops.sum(dz_f * c_prev, axis=(0, 1)),
            ops.sum(dz_o * seen_by_o, axis=(0, 1)),
        ]

    def get_config(self):
        return {
            **super().get_config(),
            "output_peephole": self.output_peephole,
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
        }
