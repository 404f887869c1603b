"""Sequence classifier (many-to-one): token ids -> class probabilities.

    e<t> = E[x<t>]                                   (batch, time, embedding_dim)
    a<t> = DeepRNN(e<1..T>)                          (batch, time, d)  or last a<T>
    h    = pool_t a<t>  (max, mean, [mean, max] over unmasked t; or the last a<t>)
    h    = [h, mean_n B[n]]   optional bag of hashed word n-grams (``ngram_buckets``)
    ŷ    = softmax(W_y h + b_y)                      (batch, num_classes)

Id 0 is padding: ``Embedding(mask_zero=True)`` masks it through the recurrent stack
and the pooling, so padded and unpadded sequences get the same ŷ.
"""

import keras
from keras import ops

from zoo.layers.deep import DeepRNN
from zoo.layers.heads import OutputHead

POOLINGS = ("last", "max", "mean", "mean_max")


@keras.saving.register_keras_serializable(package="zoo")
class MaskedPooling(keras.layers.Layer):
    """Max or mean of a<t> over the unmasked steps: (batch, time, d) -> (batch, d), or
    both concatenated (``"mean_max"``: (batch, 2d), the mean first).

    A sequence with no unmasked step (an empty text) pools to the zero vector.

    Args:
        mode: ``"max"``, ``"mean"`` or ``"mean_max"``.
    """

    MODES = ("max", "mean", "mean_max")

    def __init__(self, mode="max", **kwargs):
        super().__init__(**kwargs)
        if mode not in self.MODES:
            raise ValueError(f"Expected mode in {self.MODES}. Received: mode={mode!r}")
        self.mode = mode
        self.supports_masking = True

    def call(self, inputs, mask=None):
        if mask is None:
            mask = ops.ones(ops.shape(inputs)[:2], dtype="bool")
        m = ops.cast(mask, inputs.dtype)[:, :, None]  # (batch, time, 1)
        count = ops.sum(m, axis=1)  # (batch, 1)
        pooled = []
        if self.mode in ("mean", "mean_max"):
            pooled.append(ops.sum(inputs * m, axis=1) / ops.maximum(count, 1.0))
        if self.mode in ("max", "mean_max"):
            very_negative = ops.cast(-1e9, inputs.dtype)
            top = ops.max(ops.where(m > 0, inputs, very_negative), axis=1)  # (batch, d)
            pooled.append(ops.where(count > 0, top, ops.zeros_like(top)))
        return pooled[0] if len(pooled) == 1 else ops.concatenate(pooled, axis=-1)

    def compute_mask(self, inputs, mask=None):
        return None

    def compute_output_shape(self, input_shape):
        d = input_shape[2]
        if self.mode == "mean_max" and d is not None:
            d = 2 * d
        return (input_shape[0], d)

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="zoo")
class HashedNgrams(keras.layers.Layer):
    """Token ids (batch, time) -> the ids of their words and hashed word n-grams,
    (batch, time * n_max) int32, 0 where there is no n-gram (padding).

    Words keep their id (in [0, vocab_size)); the n-gram of ids w1..wn (2 <= n <= n_max,
    no padding inside) gets ``vocab_size + 1 + hash(w1..wn) mod buckets``, so one
    embedding of ``vocab_size + buckets + 1`` rows serves both (the fastText bag).

    Args:
        vocab_size: word ids are in [0, vocab_size), 0 is padding.
        buckets: hash buckets for the n-grams.
        n_max: the longest n-gram (2: bigrams).
    """

    def __init__(self, vocab_size, buckets, n_max=2, **kwargs):
        super().__init__(**kwargs)
        if buckets < 1 or n_max < 2:
            raise ValueError(f"Expected buckets >= 1 and n_max >= 2. Received: "
                             f"buckets={buckets}, n_max={n_max}")
        self.vocab_size, self.buckets, self.n_max = vocab_size, buckets, n_max

    def call(self, token_ids):
        ids = ops.cast(token_ids, "int64")
        time = ops.shape(ids)[1]
        parts = [ops.cast(token_ids, "int32")]
        for n in range(2, self.n_max + 1):
            padded = ops.pad(ids, [[0, 0], [0, n - 1]])  # (batch, time + n - 1)
            code = ops.zeros_like(ids)
            valid = ops.ones_like(ids, dtype="bool")
            for k in range(n):
                w = padded[:, k:k + time]
                code = (code * 1000003 + w) % 2147483647
                valid = ops.logical_and(valid, w > 0)
            gram = self.vocab_size + 1 + code % self.buckets
            parts.append(ops.cast(ops.where(valid, gram, 0), "int32"))
        return ops.concatenate(parts, axis=1)

    def compute_output_shape(self, input_shape):
        t = input_shape[1]
        return (input_shape[0], None if t is None else t * self.n_max)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "buckets": self.buckets, "n_max": self.n_max}


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
    ngram_buckets=0,
    ngram_dim=64,
    ngram_max=2,
    name="sequence_classifier",
):
    """The functional model ``token_ids (batch, time) int32 -> probabilities (batch, K)``.

    Args:
        vocab_size: ids are in [0, vocab_size); 0 is padding.
        num_classes: K >= 2 (softmax).
        embedding_dim, cell, units, num_layers, bidirectional, dropout: see
            ``zoo.layers.DeepRNN`` (``dropout`` also acts before the head).
        embedding_dropout: dropout on e<t>.
        pooling: ``"last"`` (the final a<t>), ``"max"``, ``"mean"`` or ``"mean_max"``
            (both, concatenated) over time.
        ngram_buckets: > 0 adds a bag of words and hashed word n-grams (n <= ngram_max):
            their ``ngram_dim`` embeddings averaged over the text, concatenated to the
            pooled a<t> before the head (fastText's features beside the RNN).
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
    head = OutputHead(num_classes, dtype="float32", name="head")

    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    x = embedding_drop(embedding(token_ids))  # (batch, time, embedding_dim)
    x = rnn(x)  # (batch, time, d) or (batch, d)
    if pool is not None:
        x = pool(x)  # (batch, d)
    if ngram_buckets:
        grams = HashedNgrams(vocab_size, ngram_buckets, ngram_max, name="ngrams")(token_ids)
        bag = keras.layers.Embedding(vocab_size + ngram_buckets + 1, ngram_dim,
                                     mask_zero=True, name="ngram_embedding")(grams)
        bag = MaskedPooling("mean", name="ngram_pooling")(bag)  # (batch, ngram_dim)
        x = keras.layers.Concatenate(name="features")([x, bag])
    probabilities = head(head_drop(x))  # (batch, K)
    return keras.Model(token_ids, probabilities, name=name)
