"""Recurrent language model: P(y<1..T>) = Π_t P(y<t> | y<1..t-1>).

    x<1> = 0 (the start token: a zero input), x<t> = y<t-1>
    e<t> = E[x<t>]                                  (batch, time, embedding_dim)
    a[l]<t>, state[l]<t> = cell_l(a[l-1]<t>, state[l]<t-1>),  a[0]<t> = e<t>
    z<t> = W_y a[N]<t> + b_y,   ŷ<t> = softmax(z<t>)  (batch, time, V)

The model outputs the logits z<t>: the softmax is taken by the loss
(``SparseCategoricalCrossentropy(from_logits=True)``), by ``log_softmax`` when
scoring, and after temperature/top-k/top-p when sampling (``zoo.decoding``).
Token id 0 is the start token and padding; its embedding is the zero vector.

``build_language_model`` returns the sequence model (token ids -> logits) used for
training and scoring; ``build_frame_model`` is the same model over multi-hot frames
(a piano roll: x<t> = y<t-1> in {0, 1}^P, e<t> = W_e x<t>, one sigmoid per component,
ŷ<t>[p] = σ(z<t>[p]); x<1> = 0 is the silent frame). ``build_step_model`` makes a
second functional model from the
*same layer objects* (shared weights) that also takes and returns the recurrent
states: fed one token at a time it gives exactly the sequence model's logits, and it
carries state across windows (truncated backpropagation through time) or across the
steps of a sampling loop.
"""

import keras
from keras import ops

from zoo import cells as zoo_cells
from zoo.layers.recurrent import Recurrent


@keras.saving.register_keras_serializable(package="zoo")
class StartTokenEmbedding(keras.layers.Layer):
    """Embedding with id 0 mapped to the zero vector: e<t> = E[x<t>] * [x<t> != 0].

    Id 0 is the start token x<1> (the course's zero input) and padding; it is not
    masked (the recurrent layers still step over it), it only contributes nothing.

    Args:
        input_dim: vocabulary size V. output_dim: embedding size.
    Call arguments:
        ids: (batch, time) ints. Returns (batch, time, output_dim).
    """

    def __init__(self, input_dim, output_dim, embeddings_initializer="uniform", **kwargs):
        super().__init__(**kwargs)
        self.input_dim = input_dim
        self.output_dim = output_dim
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        self.embedding = keras.layers.Embedding(
            input_dim, output_dim, embeddings_initializer=self.embeddings_initializer,
            dtype=self.dtype_policy, name="table"  # mixed precision survives loading
        )

    def build(self, ids_shape):
        self.embedding.build(ids_shape)

    def call(self, ids):
        not_start = ops.cast(ops.not_equal(ids, 0), self.compute_dtype)[..., None]  # (batch, time, 1)
        return self.embedding(ids) * not_start

    def compute_output_shape(self, ids_shape):
        return tuple(ids_shape) + (self.output_dim,)

    def get_config(self):
        return {
            **super().get_config(),
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "embeddings_initializer": keras.initializers.serialize(self.embeddings_initializer),
        }


def _check_stack(num_layers, dropout, units):
    if not isinstance(num_layers, int) or num_layers < 1:
        raise ValueError(f"Expected num_layers >= 1. Received: num_layers={num_layers!r}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"Expected 0 <= dropout < 1. Received: dropout={dropout!r}")
    units_list = list(units) if isinstance(units, (list, tuple)) else [units] * num_layers
    if len(units_list) != num_layers:
        raise ValueError(f"Expected one units per layer ({num_layers}). Received: units={units!r}")
    return units_list


def _stack(inputs, embedding, cell, units_list, dropout, cell_kwargs, output_size, name):
    """inputs -> embedding -> ``rnn_{l}`` / ``dropout_{l}`` layers -> ``logits``: the
    functional model both builders return (the names ``build_step_model`` looks up)."""
    # Layers.
    recurrent = [
        Recurrent(
            zoo_cells.get(cell, n, **dict(cell_kwargs or {})),
            return_sequences=True,
            return_state=True,
            name=f"rnn_{i}",
        )
        for i, n in enumerate(units_list)
    ]
    dropouts = [keras.layers.Dropout(dropout, name=f"dropout_{i}") for i in range(len(units_list))]
    output = keras.layers.Dense(output_size, dtype="float32", name="logits")

    # Functional model.
    x = embedding(inputs)  # (batch, time, embedding_dim)
    for layer, drop in zip(recurrent, dropouts):
        x = layer(x)[0]  # (batch, time, units); final states unused here
        x = drop(x)
    logits = output(x)  # (batch, time, output_size)
    return keras.Model(inputs, logits, name=name)


def build_language_model(
    vocab_size,
    embedding_dim=64,
    cell="lstm",
    units=256,
    num_layers=1,
    dropout=0.0,
    cell_kwargs=None,
    name="language_model",
):
    """The sequence language model: token ids (batch, time) -> logits (batch, time, V).

    Args:
        vocab_size: V, including id 0 (start/padding).
        embedding_dim: size of e<t>.
        cell: a ``zoo.cells.CELLS`` name.
        units: units per recurrent layer (an int, or one per layer).
        num_layers: N stacked recurrent layers.
        dropout: rate applied to every recurrent layer's output sequence (between
            layers and before the output layer), in [0, 1).
        cell_kwargs: extra arguments for every cell.

    Layers are named ``embedding``, ``rnn_0`` .. ``rnn_{N-1}``, ``dropout_{l}`` and
    ``logits``; ``build_step_model`` finds them by these names.
    """
    if not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"Expected vocab_size >= 2. Received: vocab_size={vocab_size!r}")
    units_list = _check_stack(num_layers, dropout, units)
    ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    embedding = StartTokenEmbedding(vocab_size, embedding_dim, name="embedding")
    return _stack(ids, embedding, cell, units_list, dropout, cell_kwargs, vocab_size, name)


def build_frame_model(
    frame_size,
    embedding_dim=64,
    cell="lstm",
    units=256,
    num_layers=1,
    dropout=0.0,
    cell_kwargs=None,
    name="frame_model",
):
    """The language model of multi-hot frames: frames (batch, time, P) -> logits
    (batch, time, P), one independent Bernoulli per component given the past:
    log P(y<t> | y<1..t-1>) = Σ_p y<t>[p] log σ(z<t>[p]) + (1 - y<t>[p]) log σ(-z<t>[p]).

    The input x<t> = y<t-1> (x<1> = 0) is projected by ``embedding``, a Dense layer
    (e<t> = W_e x<t> + b_e); the rest is ``build_language_model``'s stack and names.

    Args:
        frame_size: P, the components of a frame (pitches of a piano roll).
        embedding_dim, cell, units, num_layers, dropout, cell_kwargs, name: as in
            ``build_language_model``.
    """
    if not isinstance(frame_size, int) or frame_size < 1:
        raise ValueError(f"Expected frame_size >= 1. Received: frame_size={frame_size!r}")
    units_list = _check_stack(num_layers, dropout, units)
    frames = keras.Input(shape=(None, frame_size), dtype="float32", name="frames")
    embedding = keras.layers.Dense(embedding_dim, name="embedding")
    return _stack(frames, embedding, cell, units_list, dropout, cell_kwargs, frame_size, name)


def recurrent_layers(model):
    """The ``rnn_{l}`` layers of a language model, bottom first."""
    layers = []
    while True:
        try:
            layers.append(model.get_layer(f"rnn_{len(layers)}"))
        except ValueError:
            return layers


def state_shapes(model):
    """Unit counts of the model's states, flattened: layer by layer, each cell's states."""
    return [layer.units for layer in recurrent_layers(model) for _ in range(layer.num_states)]


def initial_states(model, batch_size):
    """Zero states (a list of (batch, units) float32 tensors) for ``build_step_model``."""
    return [ops.zeros((batch_size, n), "float32") for n in state_shapes(model)]


def build_step_model(model):
    """A stateful form of ``model`` sharing its weights (no copy).

    Inputs: the model's own input (``token_ids`` (batch, time) int32, or ``frames``
    (batch, time, P) float32), ``step_mask`` (batch, time) bool (False steps leave the
    states unchanged: padding), and the states ``state_{i}`` (batch, units_i), in the
    order of ``state_shapes(model)``.
    Outputs: ``logits`` (batch, time, V or P) and ``states`` (the list after the last
    unmasked step). Dropout is inactive unless called with training=True.
    With time = 1 it is one step of the RNN; any time works (a prompt, a window).
    """
    layers = recurrent_layers(model)
    if not layers:
        raise ValueError(f"Model {model.name!r} has no rnn_0 layer; build it with build_language_model.")
    spec = model.inputs[0]
    ids = keras.Input(shape=tuple(spec.shape[1:]), dtype=spec.dtype, name=spec.name)
    mask = keras.Input(shape=(None,), dtype="bool", name="step_mask")
    state_inputs = [
        keras.Input(shape=(n,), dtype="float32", name=f"state_{i}")
        for i, n in enumerate(state_shapes(model))
    ]
    x = model.get_layer("embedding")(ids)
    new_states, offset = [], 0
    for i, layer in enumerate(layers):
        own = state_inputs[offset : offset + layer.num_states]
        offset += layer.num_states
        outputs = layer(x, initial_state=own, mask=mask)
        x, states = outputs[0], outputs[1:]
        new_states.extend(states)
        x = model.get_layer(f"dropout_{i}")(x)
    logits = model.get_layer("logits")(x)
    return keras.Model(
        [ids, mask] + state_inputs,
        {"logits": logits, "states": new_states},
        name=f"{model.name}_step",
    )


@keras.saving.register_keras_serializable(package="zoo")
class CarriedStateModel(keras.Model):
    """Truncated backpropagation through time around a ``build_language_model`` model.

    In training, batch k starts from the final states of batch k-1 (held in
    non-trainable variables, gradients stopped at the window boundary), so row b of
    consecutive batches must be consecutive windows of one stream (see
    ``pipelines.char_lm.data.make_dataset(carry_state=True)``). Outside training
    (validation, scoring) it is the plain model: zero initial states.

    Args:
        language_model: the wrapped model (its weights are the trained ones).
        batch_size: rows per training batch (the carried state's batch dimension).

    Call arguments:
        ids: (batch_size, time) int. Returns logits (batch, time, V).
    """

    def __init__(self, language_model, batch_size, **kwargs):
        super().__init__(**kwargs)
        if isinstance(language_model, dict):
            language_model = keras.saving.deserialize_keras_object(language_model)
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size!r}")
        self.language_model = language_model
        self.batch_size = batch_size
        self.step_model = build_step_model(language_model)
        self.carried = [
            self.add_weight(shape=(batch_size, n), initializer="zeros", trainable=False,
                            name=f"carried_state_{i}")
            for i, n in enumerate(state_shapes(language_model))
        ]

    def call(self, ids, training=False):
        if not training:
            return self.language_model(ids, training=False)
        mask = ops.ones_like(ids, dtype="bool")
        states = [ops.convert_to_tensor(v) for v in self.carried]
        out = self.step_model([ids, mask] + states, training=True)
        for variable, state in zip(self.carried, out["states"]):
            variable.assign(ops.stop_gradient(state))
        return out["logits"]

    def reset_states(self):
        for variable in self.carried:
            variable.assign(ops.zeros_like(variable))

    def get_config(self):
        return {
            **super().get_config(),
            "language_model": keras.saving.serialize_keras_object(self.language_model),
            "batch_size": self.batch_size,
        }


def unwrap(model):
    """The language model inside a ``CarriedStateModel`` (or ``model`` itself)."""
    return model.language_model if isinstance(model, CarriedStateModel) else model
