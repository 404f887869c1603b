"""DNA models: base ids -> a tag per base (many-to-many) or a label / value per
sequence (many-to-one).

    x<t> = onehot(b<t>) or E[b<t>]             (batch, T, 5 or embedding_dim), b<t> in 1..5 (A C G T N), 0 = padding
    h<t> = ReLU(Conv1D(x)) x conv_layers       (batch, T, conv_filters), 'same' padding,
                                                layer i dilated by conv_dilation**i
    a<t> = DeepRNN(h), bidirectional            (batch, T, 2 * units), masked where b<t> = 0
    per base:     ŷ<t> = softmax(W a<t> + b)  or  ψ = CRF(W a<t> + b)      (batch, T, K) / (batch, T, K, K)
    per sequence: p = pool_t a<t>;  ŷ = softmax(W p + b)  or  ŷ = w·p + b  (batch, K) / (batch,)
                  pooling "flatten" (fixed length L): p = [a<1>; ...; a<L>]  (batch, L * 2 * units),
                  a weight per position (a splice site sits at a fixed offset)

Losses: per base ``zoo.builders.sequence_tagger.tagger_loss`` (targets -1 at padding);
per sequence sparse cross-entropy or mean squared error.
"""

import keras
from keras import ops

from zoo.builders.sequence_classifier import MaskedPooling
from zoo.layers.crf import CRF
from zoo.layers.deep import DeepRNN

BASE_IDS = 6  # 0 padding, A C G T N


@keras.saving.register_keras_serializable(package="zoo")
class OneHotBases(keras.layers.Layer):
    """(batch, T) base ids 0..5 -> (batch, T, 5) one-hot of A C G T N (padding all 0;
    N is its own channel). The mask is ``BaseMask``'s, handed to the RNN."""

    def call(self, ids):
        return ops.one_hot(ops.cast(ids, "int32") - 1, BASE_IDS - 1)


@keras.saving.register_keras_serializable(package="zoo")
class BaseMask(keras.layers.Layer):
    """(batch, T) base ids -> (batch, T) bool, True for real bases."""

    def call(self, ids):
        return ops.not_equal(ids, 0)


def build_base_model(num_outputs, per_base=True, head="softmax", encoding="one_hot",
                     embedding_dim=8, conv_layers=1, conv_filters=64, conv_kernel=9,
                     conv_dilation=1, cell="lstm", units=64, num_layers=2, dropout=0.1, pooling="mean_max",
                     regression=False, length=None, name="dna"):
    """The functional model ``bases (batch, T) int32 -> outputs`` (module docstring).

    Args:
        num_outputs: K tags (per base) or classes (per sequence); ignored for regression.
        per_base: a tag per base, else one output per sequence.
        head: "softmax" or "crf" (per base); encoding: "one_hot" or "embedding".
        conv_layers, conv_filters, conv_kernel: the convolutional front-end (0 = none).
        conv_dilation: layer i's dilation rate is conv_dilation**i (1: none); the
            front-end then sees 1 + (conv_kernel - 1) * sum_i conv_dilation**i bases.
        cell, units, num_layers, dropout: the bidirectional ``zoo.layers.DeepRNN``.
        pooling: per sequence: "max", "mean", "mean_max" over real bases, "last", or
            "flatten" (every position's a<t>; needs ``length``).
        length: the one sequence length L of a "flatten" model (its input is (batch, L)).
        regression: per sequence: one value (linear) instead of class probabilities.
    """
    flatten = not per_base and pooling == "flatten"
    if flatten and not (isinstance(length, int) and length > 0):
        raise ValueError(f"Expected a positive int length with pooling='flatten'. "
                         f"Received: length={length!r}")
    bases = keras.Input(shape=(length if flatten else None,), dtype="int32", name="bases")
    mask = BaseMask(name="base_mask")(bases)
    if encoding == "one_hot":
        x = OneHotBases(name="one_hot")(bases)
    else:
        x = keras.layers.Embedding(BASE_IDS, embedding_dim, name="embedding")(bases)
    for i in range(conv_layers):
        x = keras.layers.Conv1D(conv_filters, conv_kernel, padding="same", activation="relu",
                                dilation_rate=conv_dilation ** i, name=f"conv_{i}")(x)
    last = per_base or pooling != "last"
    x = DeepRNN(cell, units, num_layers, bidirectional=True, dropout=dropout,
                return_sequences=last, name="rnn")(x, mask=None if flatten else mask)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    if per_base:
        if head == "crf":
            scores = keras.layers.Dense(num_outputs, dtype="float32", name="emissions")(x)
            outputs = CRF(dtype="float32", name="crf")(scores, mask=mask)
        else:
            outputs = keras.layers.Dense(num_outputs, activation="softmax", dtype="float32",
                                         name="tags")(x)
        return keras.Model(bases, outputs, name=name)
    if flatten:
        x = keras.layers.Flatten(name="flatten")(x)
    elif pooling != "last":
        x = MaskedPooling(pooling, name="pooling")(x, mask=mask)
    if regression:
        outputs = keras.layers.Dense(1, dtype="float32", name="value")(x)
        outputs = keras.layers.Reshape((), dtype="float32", name="squeeze")(outputs)
    else:
        outputs = keras.layers.Dense(num_outputs, activation="softmax", dtype="float32",
                                     name="classes")(x)
    return keras.Model(bases, outputs, name=name)
