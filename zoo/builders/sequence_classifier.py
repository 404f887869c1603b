"""Sequence classifier (many-to-one): token ids -> class probabilities.

    e<t> = E[x<t>]                                   (batch, time, embedding_dim)
    a<t> = DeepRNN(e<1..T>)                          (batch, time, d)  or last a<T>
    h    = pool_t a<t>  (max, mean over unmasked t; or the last a<t>)   (batch, d)
    ŷ    = softmax(W_y h + b_y)                      (batch, num_classes)

Id 0 is padding: ``Embedding(mask_zero=True)`` masks it through the recurrent stack
and the pooling, so padded and unpadded sequences get the same ŷ.
"""

import keras
from keras import ops

from zoo.layers.deep import DeepRNN
from zoo.layers.heads import OutputHead

POOLINGS = ("last", "max", "mean")


@keras.saving.register_keras_serializable(package="zoo")
class MaskedPooling(keras.layers.Layer):
    """Max or mean of a<t> over the unmasked steps: (batch, time, d) -> (batch, d).

    A sequence with no unmasked step (an empty text) pools to the zero vector.

    Args:
        mode: ``"max"`` or ``"mean"``.
    """

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in ("max", "mean"):
            raise ValueError(f"Expected mode 'max' or 'mean'. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.cast(mask, inputs.dtype)[:, :, None]  # (batch, time, 1)
        count = ops.sum(m, axis=1)  # (batch, 1)
        if self.mode == "mean":
            return ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0)
        very_negative = ops.cast(-1e9, inputs.dtype)
        pooled = ops.max(ops.where(m > 0, inputs, very_negative), axis=1)  # (batch, d)
        return ops.where(count > 0, pooled, ops.zeros_like(pooled))

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


def build_sequence_classifier(
    vocab_size,
    num_classes,
    embedding_dim=128,
    cell="lstm",
    units=64,
    num_layers=1,
    bidirectional=True,
    dropout=0.0,
    embedding_dropout=0.0,
    pooling="max",
    name="sequence_classifier",
):
    """The functional model ``token_ids (batch, time) int32 -> probabilities (batch, K)``.

    Args:
        vocab_size: ids are in [0, vocab_size); 0 is padding.
        num_classes: K >= 2 (softmax).
        embedding_dim, cell, units, num_layers, bidirectional, dropout: see
            ``zoo.layers.DeepRNN`` (``dropout`` also acts before the head).
        embedding_dropout: dropout on e<t>.
        pooling: ``"last"`` (the final a<t>), ``"max"`` or ``"mean"`` over time.
    """
    if pooling not in POOLINGS:
        raise ValueError(f"Expected pooling in {POOLINGS}. Received: pooling={pooling!r}")
    if num_classes < 2:
        raise ValueError(f"Expected num_classes >= 2. Received: num_classes={num_classes}")
    embedding = keras.layers.Embedding(vocab_size, embedding_dim, mask_zero=True, name="embedding")
    embedding_drop = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")
    rnn = DeepRNN(cell, units, num_layers, bidirectional=bidirectional, dropout=dropout,
                  return_sequences=pooling != "last", name="rnn")
    pool = MaskedPooling(pooling, name="pooling") if pooling != "last" else None
    head_drop = keras.layers.Dropout(dropout, name="head_dropout")
    head = OutputHead(num_classes, name="head")

    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = embedding_drop(embedding(token_ids))  # (batch, time, embedding_dim)
    x = rnn(x)  # (batch, time, d) or (batch, d)
    if pool is not None:
        x = pool(x)  # (batch, d)
    probabilities = head(head_drop(x))  # (batch, K)
    return keras.Model(token_ids, probabilities, name=name)
