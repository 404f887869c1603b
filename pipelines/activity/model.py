"""Activity model: builder, search space, evaluation by recording, the serving model.

Training model: ``zoo.builders.activity.build_activity_model`` (sensor normalisation or a
per-frame encoder, a convolutional front-end over time, a deep bidirectional zoo RNN,
pooling, softmax) on single windows / clips. A recording's prediction is the mean of
its windows' probabilities (``recording_probabilities``).

Serving model (``ActivityServer``):
* sensor: ``serving_default`` takes ``frames`` (batch, T, C) float32 readings of any
  length T (rows of equal length); ``recordings`` takes ``frames`` padded to the
  longest row and ``length`` (batch,) int32. The windows are cut inside the graph
  exactly as in training (``recordings.windows``); NaN and infinite readings read as
  the training mean of their channel, readings further than ``LIMIT`` standard
  deviations from it are clipped there. A wrong channel count is refused by the
  signature's shape. Outputs: ``probabilities`` (batch, K), ``label`` (batch,), and per
  window ``window_label`` (batch, k) ("" past a row's windows) and ``window_start``
  (batch, k) (-1 there): the many-to-many view of a long session.
* video: ``serving_default`` takes encoded GIF bytes (batch,); ``frames`` takes a uint8
  frame tensor (batch, T, H, W, 3). Frames are sampled and resized inside the graph as
  in training. Bytes that are not a GIF (no ``GIF87a``/``GIF89a`` header) give an
  InvalidArgumentError naming the row; a 0-frame tensor gives the prediction of an
  empty clip.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib, metrics, train
from pipelines.common.task import Endpoint
from zoo.builders import activity as activity_builder

LIMIT = 1e4  # serving: readings clipped to the training mean +- LIMIT standard deviations


def build_model(config, meta):
    """The compiled model of ``config`` for the data described by ``meta``."""
    shape = meta["frame_shape"]
    sensor = meta["kind"] == "sensor"
    model = activity_builder.build_activity_model(
        len(meta["classes"]), channels=shape[0] if sensor else None,
        frame_size=None if sensor else shape[0], mean=meta.get("mean"),
        variance=meta.get("variance"), frame_filters=config.frame_filters,
        backbone=config.backbone, backbone_weights=config.backbone_weights,
        conv_layers=config.conv_layers, conv_filters=config.conv_filters,
        time_reduction=config.time_reduction, cell=config.cell, units=config.units,
        num_layers=config.num_layers, dropout=config.dropout, pooling=config.pooling)
    model.compile(optimizer=config_lib.adam(config, global_clipnorm=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def combine(members, config, meta):
    """An ensemble's model: frames and length -> the mean of the members' probabilities
    (``train.mean_of_members``)."""
    return train.mean_of_members(members, "activity_ensemble")


def search_space(hp, config):
    """The config with cell, units, depth, dropout, learning rate (the recurrent stack's
    space) and the convolutional front-end's width drawn from ``hp``."""
    return dataclasses.replace(
        config_lib.language_model_space(hp, config),
        conv_filters=hp.Choice("conv_filters", sorted({32, 64, 128, config.conv_filters}),
                               default=config.conv_filters))


def recording_probabilities(model, dataset):
    """(true class ids (n,), probabilities (n, K)) of a dataset of recordings
    (``data.recording_dataset``): each the mean over its windows."""
    step = tf.function(lambda x: model(x, training=False), reduce_retracing=True)
    truth, probs = [], []
    for x, y in dataset:
        probs.append(step(x).numpy().mean(0))
        truth.append(int(y))
    k = model.output_shape[-1]
    return np.array(truth, np.int64), np.array(probs, np.float32).reshape(-1, k)


def evaluate(model, dataset, config, meta):
    """Accuracy, per-class precision / recall / F1 and the confusion matrix over
    recordings (``metrics.classification_report``)."""
    truth, probs = recording_probabilities(model, dataset)
    report = metrics.classification_report(truth, probs.argmax(-1), meta["classes"])
    return {**report, "recordings": report["examples"],
            "test_subjects": list(meta.get("subjects", {}).get("test", []))}


# --------------------------------------------------------------------------- serving


class ActivityServer(keras.layers.Layer):
    """Recordings in, activities out (module docstring)."""

    def __init__(self, model, config, meta, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.kind = meta["kind"]
        self.classes = list(meta["classes"])
        self.shape = [int(d) for d in meta["frame_shape"]]
        self.window, self.stride = int(meta["window"]), int(meta["stride"])
        self.mean = [float(m) for m in meta.get("mean", [])]
        self.std = [float(np.sqrt(v)) + 1e-6 for v in meta.get("variance", [])]
        self.chunk = int(config.serve_batch_windows)
        self.frames, self.size = int(config.frames), int(config.size)
        self.sampling, self.frame_stride = config.sampling, int(config.frame_stride)

    def _run(self, windows, lengths):
        """(N, W, ...) windows -> (N, K) probabilities, ``chunk`` windows per call."""
        n = tf.shape(windows)[0]
        chunks = (n + self.chunk - 1) // self.chunk
        pad = chunks * self.chunk - n
        windows = tf.pad(windows, [[0, pad]] + [[0, 0]] * (len(windows.shape) - 1))
        lengths = tf.pad(lengths, [[0, pad]])
        shaped = tf.reshape(windows, tf.concat([[chunks, self.chunk], tf.shape(windows)[1:]], 0))
        out = tf.map_fn(
            lambda args: self.model({"frames": args[0], "length": args[1]}, training=False),
            (shaped, tf.reshape(lengths, [chunks, self.chunk])),
            fn_output_signature=tf.TensorSpec([self.chunk, len(self.classes)], tf.float32),
            parallel_iterations=1)
        return tf.reshape(out, [-1, len(self.classes)])[:n]

    def _outputs(self, window_probs, rows, batch, starts):
        probs = tf.math.unsorted_segment_mean(window_probs, rows, batch)
        names = tf.constant(self.classes)
        window_label = tf.RaggedTensor.from_value_rowids(
            tf.gather(names, tf.argmax(window_probs, -1)), rows, nrows=batch)
        window_start = tf.RaggedTensor.from_value_rowids(starts, rows, nrows=batch)
        return {"probabilities": probs, "label": tf.gather(names, tf.argmax(probs, -1)),
                "window_label": window_label.to_tensor(""),
                "window_start": window_start.to_tensor(-1)}

    def classify_sensor(self, frames, length=None):
        """frames (batch, T, C) float32, length (batch,) int32 (default T) -> outputs."""
        frames = tf.convert_to_tensor(frames, tf.float32)
        batch, steps = tf.shape(frames)[0], tf.shape(frames)[1]
        length = (tf.fill([batch], steps) if length is None else
                  tf.clip_by_value(tf.cast(length, tf.int32), 0, steps))
        mean, std = tf.constant(self.mean), tf.constant(self.std)
        frames = tf.where(tf.math.is_finite(frames), frames, mean)
        frames = tf.clip_by_value(frames, mean - LIMIT * std, mean + LIMIT * std)
        w, s = self.window, self.stride
        count = tf.where(length <= w, 1, (length - w + s - 1) // s + 1)  # windows per row
        rows = tf.repeat(tf.range(batch), count)
        j = tf.ragged.range(count).flat_values
        row_length = tf.gather(length, rows)
        starts = tf.minimum(j * s, tf.maximum(row_length - w, 0))
        padded = tf.pad(frames, [[0, 0], [0, w], [0, 0]])
        index = tf.stack([tf.repeat(rows[:, None], w, 1), starts[:, None] + tf.range(w)], -1)
        windows = tf.gather_nd(padded, index)  # (N, W, C)
        window_length = tf.minimum(row_length, w)
        windows *= tf.cast(tf.range(w)[None, :] < window_length[:, None], tf.float32)[..., None]
        return self._outputs(self._run(windows, window_length), rows, batch, starts)

    def _clip(self, frames):
        """(T, H, W, 3) uint8 -> ((frames, size, size, 3) float32, real frames)."""
        count = tf.shape(frames)[0]
        i = tf.range(self.frames)
        if self.sampling == "uniform":
            chosen = (2 * i + 1) * count // (2 * self.frames)
        else:
            chosen = tf.minimum(i, (count - 1) // self.frame_stride) * self.frame_stride
        chosen = tf.clip_by_value(chosen, 0, tf.maximum(count - 1, 0))
        picked = tf.gather(frames, chosen[: tf.minimum(self.frames, self.frames * count)])
        picked = tf.image.resize(picked, (self.size, self.size), antialias=True)
        picked = tf.clip_by_value(tf.round(picked), 0, 255)
        picked = tf.pad(picked, [[0, self.frames - tf.shape(picked)[0]], [0, 0], [0, 0], [0, 0]])
        return tf.ensure_shape(picked, [self.frames, self.size, self.size, 3]), \
            tf.minimum(count, 1) * self.frames

    def _classify_clips(self, clips, lengths):
        batch = tf.shape(clips)[0]
        rows = tf.range(batch)
        probs = self._run(clips, lengths)
        return self._outputs(probs, rows, batch, tf.zeros([batch], tf.int32))

    def classify_gif(self, video):
        """video (batch,) encoded GIF bytes -> outputs (one clip a row)."""
        video = tf.convert_to_tensor(video, tf.string)
        header = tf.strings.substr(video, 0, 6)
        ok = tf.logical_or(tf.equal(header, "GIF87a"), tf.equal(header, "GIF89a"))
        bad = tf.reduce_min(tf.concat([tf.cast(tf.where(~ok)[:, 0], tf.int32), [-1]], 0)[:1])
        check = tf.debugging.Assert(tf.reduce_all(ok), [tf.strings.format(
            "Expected encoded GIF bytes (a GIF87a or GIF89a header) in video. Received: "
            "row {} is not a GIF", bad)])
        with tf.control_dependencies([check]):
            video = tf.identity(video)
        clips, lengths = tf.map_fn(
            lambda data: self._clip(tf.io.decode_gif(data)), video,
            fn_output_signature=(tf.TensorSpec([self.frames, self.size, self.size, 3],
                                               tf.float32), tf.TensorSpec([], tf.int32)))
        return self._classify_clips(clips, lengths)

    def classify_frames(self, frames):
        """frames (batch, T, H, W, 3) uint8 -> outputs."""
        clips, lengths = tf.map_fn(
            self._clip, tf.convert_to_tensor(frames, tf.uint8),
            fn_output_signature=(tf.TensorSpec([self.frames, self.size, self.size, 3],
                                               tf.float32), tf.TensorSpec([], tf.int32)))
        return self._classify_clips(clips, lengths)

    def endpoints(self):
        if self.kind == "sensor":
            channels = self.shape[0]
            frames = tf.TensorSpec([None, None, channels], tf.float32, name="frames")
            example = np.zeros((2, self.window + 3, channels), np.float32).tolist()
            return {
                "serving_default": Endpoint(fn=self.classify_sensor, inputs=[frames],
                                            example={"frames": example}),
                "recordings": Endpoint(
                    fn=self.classify_sensor,
                    inputs=[frames, tf.TensorSpec([None], tf.int32, name="length")],
                    example={"frames": example, "length": [0, 5]}),
            }
        gif = tf.TensorSpec([None], tf.string, name="video")
        frames = tf.TensorSpec([None, None, None, None, 3], tf.uint8, name="frames")
        return {
            "serving_default": Endpoint(fn=self.classify_gif, inputs=[gif],
                                        example={"video": [tiny_gif()]}),
            "frames": Endpoint(fn=self.classify_frames, inputs=[frames],
                               example={"frames": np.zeros((1, 3, 20, 30, 3), int).tolist()}),
        }


def tiny_gif():
    """The bytes of a 2-frame 8x8 GIF (an example request)."""
    frames = np.zeros((2, 8, 8, 3), np.uint8)
    frames[1] = 200
    import imageio.v3 as iio

    return iio.imwrite("<bytes>", frames, extension=".gif")


def serving_model(model, config, meta):
    return ActivityServer(model, config, meta)


def example_inputs(config, meta):
    """Test recordings for ``predict``: embedded ones by name, others as file paths."""
    names = list(meta.get("examples") or [])[:3]
    source = meta.get("source") or "embedded"
    if source == "embedded":
        return names
    base = source if os.path.isdir(source) else os.path.dirname(source)
    return [os.path.join(base, name) for name in names]


def format_prediction(row):
    windows = [w.decode() for w in row["window_label"] if w]
    seen = ", ".join(f"{name} x{windows.count(name)}"
                     for name in sorted(set(windows), key=windows.index))
    return (f"{row['label'].decode()} ({float(np.max(row['probabilities'])):.3f}); "
            f"{len(windows)} window(s): {seen}")
