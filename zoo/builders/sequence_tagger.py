"""Sequence tagger (many-to-many, same length): word and character ids -> a tag per step.

    e<t> = [E_w[w<t>], charenc(c<t,1..C>)]          (batch, time, word_dim + char_features)
    a<t> = DeepRNN(e<1..T>), bidirectional           (batch, time, d)
    head = "softmax": ŷ<t> = softmax(W a<t> + b)      (batch, time, K)
           "crf":     ψ = CRF(W a<t> + b)             (batch, time, K, K) (``zoo.layers.crf``)
           "sigmoid": ŷ<t> = σ(w a<t> + b)            (batch, time, 1): P(y<t> = 1)

charenc is a small per-word character encoder, so that words unseen in training still
get a vector from their spelling and case: "cnn" = Conv1D over the character embeddings
then max over the word's characters; "rnn" = a bidirectional zoo GRU over them (final
states concatenated). Word id 0 is padding and masks the recurrent stack and the heads;
character id 0 pads a word's characters.

Losses (registered, so a saved model needs nothing else): ``tagger_loss(head)`` gives
``masked_sparse_crossentropy`` or ``masked_binary_crossentropy`` (means over the real
steps of the batch) or ``crf_loss`` (per sentence); targets are (batch, time) tag indices
(0/1 for sigmoid) with -1 at padding.
"""

import keras
from keras import ops

from zoo.layers.crf import CRF, crf_decode, crf_loss
from zoo.layers.deep import DeepRNN, make_bidirectional
from zoo.layers.recurrent import Recurrent
from zoo import cells as zoo_cells

HEADS = ("softmax", "crf", "sigmoid")
CHAR_ENCODERS = ("cnn", "rnn", "none")


@keras.saving.register_keras_serializable(package="zoo")
class CharEncoder(keras.layers.Layer):
    """Per-word character features: (batch, time, chars) ids -> (batch, time, features).

    Args:
        vocab_size: character ids are in [0, vocab_size); 0 is padding.
        embedding_dim: size of a character's embedding.
        features: output size (CNN filters; for "rnn", GRU units per direction x 2).
        encoder: "cnn" (Conv1D of ``kernel_size``, tanh, max over characters) or "rnn".
        kernel_size: CNN window, in characters.
    A word with no characters (padding) gets the zero vector and is masked.
    """

    def __init__(self, vocab_size, embedding_dim=25, features=50, encoder="cnn", kernel_size=3,
                 **kwargs):
        super().__init__(**kwargs)
        if encoder not in ("cnn", "rnn"):
            raise ValueError(f"Expected encoder 'cnn' or 'rnn'. Received: encoder={encoder!r}")
        if encoder == "rnn" and features % 2:
            raise ValueError(f"Expected even features for encoder='rnn'. Received: {features}")
        self.vocab_size, self.embedding_dim, self.features = vocab_size, embedding_dim, features
        self.encoder, self.kernel_size = encoder, kernel_size
        policy = self.dtype_policy  # the sub-layers': mixed precision survives loading
        self.embedding = keras.layers.Embedding(vocab_size, embedding_dim, dtype=policy,
                                                name="char_embedding")
        if encoder == "cnn":
            self.conv = keras.layers.Conv1D(features, kernel_size, padding="same",
                                            activation="tanh", dtype=policy, name="char_conv")
        else:
            self.rnn = make_bidirectional(
                Recurrent(zoo_cells.get("gru", features // 2, dtype=policy), dtype=policy,
                          name="char_gru"),
                dtype=policy, name="char_birnn")

    def build(self, chars_shape):
        self.embedding.build(None)
        flat = (None, None, self.embedding_dim)
        (self.conv if self.encoder == "cnn" else self.rnn).build(flat)

    def call(self, chars):
        shape = ops.shape(chars)  # (batch, time, C)
        flat = ops.reshape(chars, (-1, shape[2]))  # (batch * time, C)
        present = flat > 0  # (batch * time, C)
        x = self.embedding(flat)  # (batch * time, C, char_dim)
        if self.encoder == "cnn":
            h = self.conv(x)  # (batch * time, C, features)
            h = ops.where(present[:, :, None], h, -2.0)  # tanh >= -1: padding never wins
            h = ops.max(h, axis=1)  # (batch * time, features)
        else:
            h = self.rnn(x, mask=present)  # (batch * time, features)
        h = ops.where(ops.any(present, axis=1)[:, None], h, 0.0)
        return ops.reshape(h, (shape[0], shape[1], self.features))

    def compute_mask(self, chars, mask=None):
        # A real word has characters. Keras' Concatenate drops the word embedding's mask
        # when its other input has none, so this mask is what reaches the RNN.
        return ops.any(chars > 0, axis=-1)  # (batch, time)

    def compute_output_shape(self, chars_shape):
        return tuple(chars_shape[:2]) + (self.features,)

    def get_config(self):
        return {**super().get_config(), "vocab_size": self.vocab_size,
                "embedding_dim": self.embedding_dim, "features": self.features,
                "encoder": self.encoder, "kernel_size": self.kernel_size}


def _mean_over_real_steps(losses, real):
    """sum of per-step losses over real steps / their number: a scalar, so padding
    changes nothing whatever Keras does with masks."""
    real = ops.cast(real, losses.dtype)
    return ops.sum(losses * real) / ops.maximum(ops.sum(real), 1.0)


@keras.saving.register_keras_serializable(package="zoo")
def masked_sparse_crossentropy(y_true, y_pred):
    """Mean of -log ŷ<t>[y<t>] over the real steps (y<t> = -1 marks padding)."""
    y_true = ops.cast(y_true, "int32")
    real = y_true >= 0
    losses = keras.losses.sparse_categorical_crossentropy(ops.where(real, y_true, 0), y_pred)
    return _mean_over_real_steps(losses, real)


@keras.saving.register_keras_serializable(package="zoo")
def masked_binary_crossentropy(y_true, y_pred):
    """Mean binary cross-entropy of P(y<t> = 1) (y_pred (batch, time, 1)) over the real
    steps (y<t> = -1 marks padding)."""
    y_true = ops.cast(y_true, y_pred.dtype)
    if len(y_pred.shape) == len(y_true.shape) + 1:  # Keras may already have squeezed it
        y_pred = y_pred[..., 0]  # (batch, time)
    real = y_true >= 0
    losses = keras.losses.binary_crossentropy(
        ops.where(real, y_true, 0.0)[..., None], y_pred[..., None])  # (batch, time)
    return _mean_over_real_steps(losses, real)


def tagger_loss(head):
    return {"softmax": masked_sparse_crossentropy, "crf": crf_loss,
            "sigmoid": masked_binary_crossentropy}[head]


def decode(outputs, head):
    """Model outputs -> tag indices (batch, time) int32 (0/1 for sigmoid)."""
    if head == "crf":
        return crf_decode(outputs)
    if head == "sigmoid":
        return ops.cast(outputs[..., 0] > 0.5, "int32")
    return ops.cast(ops.argmax(outputs, axis=-1), "int32")


def build_sequence_tagger(
    vocab_size,
    char_vocab_size,
    num_tags,
    head="crf",
    word_dim=100,
    char_dim=25,
    char_features=50,
    char_encoder="cnn",
    cell="lstm",
    units=100,
    num_layers=1,
    dropout=0.5,
    embedding_dropout=0.5,
    name="sequence_tagger",
):
    """The functional model ``{"words": (batch, T), "chars": (batch, T, C)} int32 ->``
    tag probabilities (softmax, sigmoid) or CRF potentials.

    Args:
        vocab_size, char_vocab_size: id ranges (0 = padding).
        num_tags: K (1 for the sigmoid head).
        head: "softmax", "crf" or "sigmoid".
        word_dim, char_dim, char_features, char_encoder: the token representation
            (char_encoder "none" uses word embeddings only).
        cell, units, num_layers, dropout: the bidirectional ``zoo.layers.DeepRNN``.
        embedding_dropout: dropout on e<t>; ``dropout`` also acts before the head.
    """
    if head not in HEADS:
        raise ValueError(f"Expected head in {HEADS}. Received: head={head!r}")
    if char_encoder not in CHAR_ENCODERS:
        raise ValueError(f"Expected char_encoder in {CHAR_ENCODERS}. Received: {char_encoder!r}")
    if head == "sigmoid" and num_tags != 1:
        raise ValueError(f"Expected num_tags=1 with the sigmoid head. Received: {num_tags}")
    word_embedding = keras.layers.Embedding(vocab_size, word_dim, mask_zero=True,
                                            name="word_embedding")
    chars_encoder = None if char_encoder == "none" else CharEncoder(
        char_vocab_size, char_dim, char_features, char_encoder, name="char_encoder")
    concat = keras.layers.Concatenate(name="token_features")
    embedding_drop = keras.layers.Dropout(embedding_dropout, name="embedding_dropout")
    rnn = DeepRNN(cell, units, num_layers, bidirectional=True, dropout=dropout,
                  return_sequences=True, name="rnn")
    head_drop = keras.layers.Dropout(dropout, name="head_dropout")
    if head == "crf":
        scores = keras.layers.Dense(num_tags, dtype="float32", name="emissions")
        crf = CRF(dtype="float32", name="crf")
    else:
        scores = keras.layers.Dense(num_tags, activation="sigmoid" if head == "sigmoid" else
                                    "softmax", dtype="float32", name="tag_probabilities")

    words = keras.Input(shape=(None,), dtype="int32", name="words")
    chars = keras.Input(shape=(None, None), dtype="int32", name="chars")
    x = word_embedding(words)  # (batch, T, word_dim), masked where words == 0
    if chars_encoder is not None:
        x = concat([x, chars_encoder(chars)])  # (batch, T, word_dim + char_features)
    x = rnn(embedding_drop(x))  # (batch, T, 2 * units)
    outputs = scores(head_drop(x))  # (batch, T, K)
    if head == "crf":
        outputs = crf(outputs)  # (batch, T, K, K)
    return keras.Model({"words": words, "chars": chars}, outputs, name=name)
