"""Activity recognizer (frames -> one activity, many-to-one): sensor readings or video.

    x<1..T>                     (batch, T, C) sensor readings, or (batch, T, H, W, 3) frames (0-255)
    sensor: z<t> = (x<t> - μ) / σ           (per channel, μ σ from the training frames)
    video:  z<t> = f(x<t>)                  per-frame encoder under TimeDistributed: a small
                                            CNN, or a keras.applications backbone (frozen)
    h = Conv1D stack(z)         (batch, ceil(T / r), conv_filters), r = time_reduction
    a<t> = DeepRNN(h)           (batch, T', 2 * units), bidirectional, masked past ceil(length / r)
    p = pool_t a<t>             mean / max / both over the real steps, or the last state
    ŷ = softmax(W p + b)        (batch, K)

Inputs ``{"frames", "length"}``: the first ``length`` frames of a row are real.
"""

import keras

from zoo.builders.sequence_classifier import MaskedPooling
from zoo.builders.speech_recognizer import LengthMask, conv_front_end
from zoo.layers.deep import DeepRNN

BACKBONES = {"mobilenet_v3_small": "MobileNetV3Small", "efficientnet_b0": "EfficientNetB0"}


def frame_encoder(size, filters=16, backbone="cnn", weights=None):
    """(size, size, 3) frames of 0-255 -> a feature vector: three blocks of 3x3
    convolution (``filters``, doubling), ReLU and 2x2 max pooling, then a global average;
    or a frozen ``keras.applications`` backbone (its own preprocessing included) with
    the weights file ``weights`` (never downloaded)."""
    image = keras.Input((size, size, 3), name="frame")
    if backbone == "cnn":
        x = keras.layers.Rescaling(1.0 / 255, name="scale")(image)
        for i in range(3):
            x = keras.layers.Conv2D(filters * 2 ** i, 3, padding="same", activation="relu",
                                    name=f"conv2d_{i}")(x)
            x = keras.layers.MaxPooling2D(2, name=f"pool_{i}")(x)
        return keras.Model(image, keras.layers.GlobalAveragePooling2D(name="gap")(x),
                           name="frame_encoder")
    if backbone not in BACKBONES:
        raise ValueError(f"Expected backbone in {['cnn'] + sorted(BACKBONES)}. "
                         f"Received: backbone={backbone!r}")
    if not weights:
        raise ValueError(f"backbone={backbone!r} needs a local weights file. Received: "
                         f"weights={weights!r}")
    net = getattr(keras.applications, BACKBONES[backbone])(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg")
    net.load_weights(weights)
    net.trainable = False
    return keras.Model(image, net(image, training=False), name="frame_encoder")


def build_activity_model(num_classes, channels=None, frame_size=None, mean=None,
                         variance=None, frame_filters=16, backbone="cnn",
                         backbone_weights=None, conv_layers=2, conv_filters=64,
                         time_reduction=4, cell="lstm", units=64, num_layers=2, dropout=0.3,
                         pooling="mean_max", name="activity"):
    """The functional model ``{"frames", "length"} -> (batch, num_classes)``
    probabilities (module docstring).

    Args:
        num_classes: K activities.
        channels: C for sensor readings (``mean``, ``variance``: (C,) normalisation);
            or ``frame_size`` for video frames (size x size x 3).
        frame_filters, backbone, backbone_weights: the per-frame encoder (video).
        conv_layers, conv_filters, time_reduction: 1-D convolutions over time
            (``speech_recognizer.conv_front_end``); 0 layers = none.
        cell, units, num_layers, dropout: the bidirectional ``zoo.layers.DeepRNN``.
        pooling: "max", "mean", "mean_max" over the real steps, or "last".
    """
    if (channels is None) == (frame_size is None):
        raise ValueError("Expected exactly one of channels (sensor) and frame_size (video). "
                         f"Received: channels={channels!r}, frame_size={frame_size!r}")
    if channels is not None:
        frames = keras.Input((None, channels), dtype="float32", name="frames")
        x = keras.layers.Normalization(mean=mean, variance=variance, name="normalise")(frames)
    else:
        frames = keras.Input((None, frame_size, frame_size, 3), dtype="float32", name="frames")
        encoder = frame_encoder(frame_size, frame_filters, backbone, backbone_weights)
        x = keras.layers.TimeDistributed(encoder, name="per_frame")(frames)
    length = keras.Input((), dtype="int32", name="length")
    if conv_layers:
        x = conv_front_end(x, length, conv_layers, conv_filters, time_reduction)
    else:
        time_reduction = 1
    mask = LengthMask(time_reduction, name="frame_mask")(x, length)
    x = DeepRNN(cell, units, num_layers, bidirectional=True, dropout=dropout,
                return_sequences=pooling != "last", name="rnn")(x, mask=mask)
    if pooling != "last":
        x = MaskedPooling(pooling, name="pooling")(x, mask=mask)
    if dropout:
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    probs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32",
                               name="classes")(x)
    return keras.Model({"frames": frames, "length": length}, probs, name=name)
