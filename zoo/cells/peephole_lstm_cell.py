import keras
from keras import ops

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

    def step(self, projected, states):
        a_prev, c_prev = states  # (batch, units) each
        n = self.units
        z = projected + ops.matmul(a_prev, self.recurrent_kernel)  # (batch, 4*units)
        gamma_u = ops.sigmoid(z[:, :n] + self.peephole_u * c_prev)
        gamma_f = ops.sigmoid(z[:, n : 2 * n] + self.peephole_f * c_prev)
        c_tilde = ops.tanh(z[:, 2 * n : 3 * n])
        c = gamma_u * c_tilde + gamma_f * c_prev
        seen_by_o = c_prev if self.output_peephole == "previous" else c
        gamma_o = ops.sigmoid(z[:, 3 * n :] + self.peephole_o * seen_by_o)
        a = gamma_o * ops.tanh(c)
        return a, [a, c]

    def get_config(self):
        return {
            **super().get_config(),
            "output_peephole": self.output_peephole,
            "peephole_initializer": keras.initializers.serialize(self.peephole_initializer),
        }
