import weakref

import keras

from zoo import cells as zoo_cells
from zoo.layers.recurrent import Recurrent

# Each Bidirectional wrapper made by ``make_bidirectional`` -> the layer it was made from.
_TEMPLATES = weakref.WeakKeyDictionary()


def make_bidirectional(layer, **kwargs):
    """``keras.layers.Bidirectional(layer, **kwargs)``, with ``layer`` kept alive as long
    as the wrapper. Bidirectional rebuilds its forward and backward layers by
    serializing ``layer``; inside ``keras.models.load_model`` Keras remembers serialized
    objects by ``id()``, so a template freed after one wrapper and its address reused by
    the next wrapper's template (several bidirectional layers in one loaded model, an
    ensemble's members) would be taken for the first one: a layer of another member,
    or a cell, comes back. Kept alive, no two templates share an address."""
    wrapper = keras.layers.Bidirectional(layer, **kwargs)
    _TEMPLATES[wrapper] = layer
    return wrapper


@keras.saving.register_keras_serializable(package="zoo")
class DeepRNN(keras.layers.Layer):
    """A deep (stacked) RNN: a[l]<t> = cell_l(a[l-1]<t>, state[l]<t-1>), l = 1..N.

    Layer l reads the whole output sequence of layer l-1 (a[0]<t> = x<t>). Each layer
    may be bidirectional (forward and backward a<t> concatenated), dropout is applied
    between layers, and optional dense layers act on the top output (per step when
    ``return_sequences``). Masks flow through every layer.

    Args:
        cell: cell name (``zoo.cells.CELLS``: rnn, simplified_gru, gru, lstm,
            peephole_lstm).
        units: units per layer and direction, an int or one int per layer.
        num_layers: N >= 1.
        bidirectional: a bool for all layers or one bool per layer.
        dropout: rate of the dropout between recurrent layers (and before the dense
            layers), in [0, 1).
        return_sequences: return the top layer's a<1..T> instead of its last a<t>.
        dense_units: sizes of dense layers on top (may be empty).
        dense_activation: their activation.
        cell_kwargs: extra arguments for every cell (e.g. ``{"activation": "relu"}``).

    Call arguments:
        sequences: (batch, time, input_dim); mask: optional (batch, time) booleans.
    Returns (batch, time, d) or (batch, d), d = dense_units[-1] if any, else units of
    the top layer (doubled if it is bidirectional).

    Example:
        >>> deep = DeepRNN("gru", units=32, num_layers=2, bidirectional=True, dropout=0.2)
        >>> deep(np.zeros((4, 10, 8))).shape
        (4, 64)
    """

    def __init__(
        self,
        cell="lstm",
        units=64,
        num_layers=1,
        bidirectional=False,
        dropout=0.0,
        return_sequences=False,
        dense_units=(),
        dense_activation="relu",
        cell_kwargs=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if not isinstance(num_layers, int) or num_layers < 1:
            raise ValueError(f"Expected num_layers >= 1. Received: num_layers={num_layers!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}")
        units_list = _per_layer(units, num_layers, "units")
        bidi_list = _per_layer(bidirectional, num_layers, "bidirectional")
        self.cell = cell
        self.units = units
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.return_sequences = return_sequences
        self.dense_units = tuple(dense_units)
        self.dense_activation = dense_activation
        self.cell_kwargs = dict(cell_kwargs or {})
        self.supports_masking = True

        self.recurrent_layers = []
        for i, (n, bidi) in enumerate(zip(units_list, bidi_list)):
            # Sub-layers take this layer's dtype policy (mixed precision survives loading).
            policy = self.dtype_policy
            layer = Recurrent(
                zoo_cells.get(cell, n, dtype=policy, **self.cell_kwargs),
                return_sequences=return_sequences or i < num_layers - 1,
                dtype=policy,
                name=f"{cell}_{i}",
            )
            if bidi:
                layer = make_bidirectional(layer, dtype=policy, name=f"bidirectional_{i}")
            self.recurrent_layers.append(layer)
        self.dropout_layer = keras.layers.Dropout(dropout, dtype=policy) if dropout > 0 else None
        self.dense_layers = [
            keras.layers.Dense(d, activation=dense_activation, dtype=policy, name=f"dense_{i}")
            for i, d in enumerate(self.dense_units)
        ]

    def build(self, sequences_shape):
        shape = sequences_shape
        for layer in self.recurrent_layers:
            layer.build(shape)
            shape = layer.compute_output_shape(shape)
        for dense in self.dense_layers:
            dense.build(shape)
            shape = dense.compute_output_shape(shape)

    def call(self, sequences, mask=None, training=False):
        x = sequences
        for i, layer in enumerate(self.recurrent_layers):
            if i > 0 and self.dropout_layer is not None:
                x = self.dropout_layer(x, training=training)
            x = layer(x, mask=mask, training=training)
        if not self.return_sequences:
            mask = None
        if self.dense_layers and self.dropout_layer is not None:
            x = self.dropout_layer(x, training=training)
        for dense in self.dense_layers:
            x = dense(x)
        return x

    def compute_mask(self, sequences, mask=None):
        return mask if self.return_sequences else None

    def compute_output_shape(self, sequences_shape):
        shape = sequences_shape
        for layer in self.recurrent_layers + self.dense_layers:
            shape = layer.compute_output_shape(shape)
        return shape

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "cell": self.cell,
                "units": self.units,
                "num_layers": self.num_layers,
                "bidirectional": self.bidirectional,
                "dropout": self.dropout,
                "return_sequences": self.return_sequences,
                "dense_units": list(self.dense_units),
                "dense_activation": self.dense_activation,
                "cell_kwargs": self.cell_kwargs,
            }
        )
        return config


def _per_layer(value, num_layers, name):
    """``value`` repeated for every layer, or checked to have one entry per layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != num_layers:
            raise ValueError(
                f"Expected one {name} per layer ({num_layers}). Received: {name}={value!r}"
            )
        return list(value)
    return [value] * num_layers
