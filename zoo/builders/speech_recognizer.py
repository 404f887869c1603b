"""Speech recognizer (audio frames -> characters, lengths unrelated): a CTC model.

    x<1..T>                     (batch, T, F) features, the first ``length`` frames real
    h = Conv1D stack(x)         (batch, T', C)  T' = ceil(T / r), r = time_reduction
    a<t> = DeepRNN(h)           (batch, T', 2 * units), bidirectional, masked past ceil(length / r)
    log ŷ<t> = log_softmax(W a<t> + b)     (batch, T', K + 1), the blank last (id K)

Frames past an utterance's end emit the blank with probability 1 (log ŷ = 0 for the
blank, -1e4 for the rest): the CTC probability of a label sequence over all T' frames
then equals its probability over the real frames, so the loss needs no frame lengths
and padded and unpadded batches give the same loss.
"""

import keras
from keras import ops

from zoo.layers.deep import DeepRNN

NEG = -1e4  # log-probability of a non-blank label on a padding frame


def reduced_lengths(length, time_reduction):
    """Frames after the front-end: ceil(length / r) (each stride-2 convolution, kernel
    5 with 2 zero frames a side, gives ceil(T / 2))."""
    r = int(time_reduction)
    return (ops.cast(length, "int32") + (r - 1)) // r


@keras.saving.register_keras_serializable(package="zoo")
class LengthMask(keras.layers.Layer):
    """(frames (batch, T', d), length (batch,) real input frames) -> (batch, T') bool
    mask of the first ceil(length / time_reduction) frames."""

    def __init__(self, time_reduction=1, **kwargs):
        super().__init__(**kwargs)
        self.time_reduction = int(time_reduction)

    def call(self, frames, length):
        steps = ops.arange(ops.shape(frames)[1], dtype="int32")
        return steps[None, :] < reduced_lengths(length, self.time_reduction)[:, None]

    def get_config(self):
        return {**super().get_config(), "time_reduction": self.time_reduction}


@keras.saving.register_keras_serializable(package="zoo")
class ZeroPadding(keras.layers.Layer):
    """(frames (batch, T', d), length (batch,)) -> the frames past ceil(length / r) set
    to 0, so a convolution sees an utterance's end as it would unpadded."""

    def __init__(self, time_reduction=1, **kwargs):
        super().__init__(**kwargs)
        self.time_reduction = int(time_reduction)

    def call(self, frames, length):
        mask = LengthMask(self.time_reduction)(frames, length)
        return frames * ops.cast(mask, frames.dtype)[..., None]

    def get_config(self):
        return {**super().get_config(), "time_reduction": self.time_reduction}


@keras.saving.register_keras_serializable(package="zoo")
class CTCBlankPadding(keras.layers.Layer):
    """(logits (batch, T', K + 1), mask (batch, T')) -> log ŷ: log_softmax on real
    frames; on padding frames the blank (last id) has log-probability 0, the rest NEG.
    The output carries no Keras mask (the loss sees every frame)."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.supports_masking = True

    def compute_mask(self, inputs, mask=None):
        return None

    def call(self, logits, mask):
        log_probs = ops.log_softmax(ops.cast(logits, "float32"), axis=-1)
        classes = ops.shape(logits)[-1]
        blank_only = ops.where(ops.arange(classes) == classes - 1, 0.0, NEG)
        return ops.where(mask[..., None], log_probs, blank_only[None, None, :])


@keras.saving.register_keras_serializable(package="zoo")
class CTCLoss(keras.losses.Loss):
    """-log P(y | x) per utterance (the CTC forward algorithm, ``keras.ops.ctc_loss``).

    y_true: (batch, L) int32 label ids, padded with -1; y_pred: (batch, T', K + 1)
    log-probabilities with the blank last (``CTCBlankPadding``'s output), or an
    ensemble's (batch, M, T', K + 1) (``zoo.layers.MemberStack``): then the loss is
    -log((1/M) Σ_m P_m(y | x)), the members' probabilities of the whole transcript
    averaged (their frame posteriors need not be aligned in time)."""

    def __init__(self, reduction="sum_over_batch_size", name="ctc", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        if len(y_pred.shape) == 4:
            members = y_pred.shape[1]
            losses = ops.stack([self.call(y_true, y_pred[:, m]) for m in range(members)], 0)
            return -(ops.logsumexp(-losses, axis=0) - ops.log(float(members)))
        y_true = ops.cast(y_true, "int32")
        label_length = ops.sum(ops.cast(y_true >= 0, "int32"), axis=-1)
        batch, frames = ops.shape(y_pred)[0], ops.shape(y_pred)[1]
        logit_length = ops.full((batch,), frames, dtype="int32")
        return ops.ctc_loss(ops.maximum(y_true, 0), y_pred, label_length, logit_length,
                            mask_index=ops.shape(y_pred)[-1] - 1)


@keras.saving.register_keras_serializable(package="zoo")
class SpecAugment(keras.layers.Layer):
    """SpecAugment's masking (Park et al. 2019), in training only: (features (batch, T,
    F), length (batch,)) -> features with ``time_masks`` runs of at most
    min(``time_mask``, ``time_ratio`` x length) real frames (the paper's upper bound p:
    a short clip loses a short run) and ``freq_masks`` runs of at most ``freq_mask`` bins
    set to 0 (the per-utterance mean of normalised features), drawn per utterance."""

    def __init__(self, time_masks=2, time_mask=10, freq_masks=2, freq_mask=6, seed=None,
                 time_ratio=1.0, **kwargs):
        super().__init__(**kwargs)
        self.time_masks, self.time_mask = int(time_masks), int(time_mask)
        self.time_ratio = float(time_ratio)
        self.freq_masks, self.freq_mask = int(freq_masks), int(freq_mask)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def _runs(self, x, axis_size, limit, width, count, axis):
        batch = ops.shape(x)[0]
        positions = ops.arange(axis_size, dtype="float32")[None, :]
        for _ in range(count):
            w = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator) * (width + 1))
            if axis == 1:  # a time run: at most time_ratio x the utterance's frames
                w = ops.minimum(w, ops.floor(self.time_ratio * limit))
            room = ops.maximum(limit - w, 1.0)
            start = ops.floor(keras.random.uniform((batch,), seed=self.seed_generator) * room)
            hit = (positions >= start[:, None]) & (positions < (start + w)[:, None])
            hit = hit[:, :, None] if axis == 1 else hit[:, None, :]
            x = ops.where(hit, ops.zeros_like(x), x)
        return x

    def call(self, features, length, training=False):
        if not training:
            return features
        x = features
        if self.time_masks and self.time_mask:
            x = self._runs(x, ops.shape(x)[1], ops.cast(length, "float32"), self.time_mask,
                           self.time_masks, 1)
        if self.freq_masks and self.freq_mask:
            bins = ops.shape(x)[2]
            x = self._runs(x, bins, ops.cast(bins, "float32"), self.freq_mask, self.freq_masks, 2)
        return x

    def get_config(self):
        return {**super().get_config(), "time_masks": self.time_masks,
                "time_mask": self.time_mask, "freq_masks": self.freq_masks,
                "freq_mask": self.freq_mask, "seed": self.seed, "time_ratio": self.time_ratio}


def conv_front_end(x, length, conv_layers, conv_filters, time_reduction):
    """(frames (batch, T, d), length (batch,)) -> (batch, ceil(T / r), conv_filters):
    ``conv_layers`` 1-D convolutions (kernel 5, ReLU, batch normalisation), the first
    log2(r) of stride 2, frames past each sequence's end kept at 0 before each one.
    r = ``time_reduction`` in (1, 2, 4) needs conv_layers >= log2(r)."""
    strides = {1: 0, 2: 1, 4: 2}.get(int(time_reduction))
    if strides is None:
        raise ValueError(f"Expected time_reduction in (1, 2, 4). Received: {time_reduction!r}")
    if conv_layers < strides:
        raise ValueError(f"time_reduction={time_reduction} needs conv_layers >= {strides}. "
                         f"Received: conv_layers={conv_layers}")
    x = ZeroPadding(1, name="input_padding")(x, length)
    for i in range(conv_layers):
        # Two zero frames on each side, then 'valid': window j starts at frame j * stride
        # whatever the padded length ('same' centres strided windows by the total length).
        x = keras.layers.ZeroPadding1D(2, name=f"conv_pad_{i}")(x)
        x = keras.layers.Conv1D(conv_filters, 5, strides=2 if i < strides else 1,
                                padding="valid", name=f"conv_{i}")(x)
        x = keras.layers.BatchNormalization(name=f"conv_norm_{i}")(x)
        x = keras.layers.ReLU(name=f"conv_relu_{i}")(x)
        x = ZeroPadding(2 ** min(i + 1, strides), name=f"conv_padding_{i}")(x, length)
    return x


def build_speech_recognizer(num_features, num_labels, conv_layers=2, conv_filters=128,
                            time_reduction=2, cell="lstm", units=128, num_layers=2,
                            dropout=0.2, spec_augment=None, name="speech_recognizer"):
    """The functional model ``{"features": (batch, T, F) float32, "length": (batch,)
    int32} -> log ŷ (batch, ceil(T / r), num_labels + 1)``, the blank last.

    Args:
        num_features: F (mel bins). num_labels: K characters (ids 0..K-1).
        conv_layers: 1-D convolutions (kernel 5, ``conv_filters``, ReLU, batch
            normalisation) before the RNN; the first log2(time_reduction) have stride 2.
        time_reduction: r in (1, 2, 4); needs conv_layers >= log2(r).
        cell, units, num_layers, dropout: the bidirectional ``zoo.layers.DeepRNN``.
        spec_augment: None, or ``SpecAugment`` arguments (masking in training only).
    """
    features = keras.Input(shape=(None, num_features), dtype="float32", name="features")
    length = keras.Input(shape=(), dtype="int32", name="length")
    x = features
    if spec_augment:
        x = SpecAugment(**spec_augment, name="spec_augment")(x, length)
    x = conv_front_end(x, length, conv_layers, conv_filters, time_reduction)
    mask = LengthMask(time_reduction, name="frame_mask")(x, length)
    x = DeepRNN(cell, units, num_layers, bidirectional=True, dropout=dropout,
                return_sequences=True, name="rnn")(x, mask=mask)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    logits = keras.layers.Dense(num_labels + 1, dtype="float32", name="logits")(x)
    log_probs = CTCBlankPadding(name="log_probs")(logits, mask)
    return keras.Model({"features": features, "length": length}, log_probs, name=name)
