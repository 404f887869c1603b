"""Music model: builder, search space, metrics and the serving model.

Training model (the course's one-to-many case, trained on whole pieces):

* piano_roll: ``zoo.builders.build_frame_model``, frames x<t> = y<t-1> (x<1> = 0, the
  silent frame) -> dense -> zoo recurrent layers -> one logit per pitch; the loss is the
  negative log-likelihood of a frame summed over its P pitches,
  NLL<t> = -Σ_p [y<t>[p] log σ(z<t>[p]) + (1 - y<t>[p]) log σ(-z<t>[p])],
  averaged over the real frames (``FrameNLL``; the JSB benchmark's "NLL per frame").
* melody: ``zoo.builders.build_language_model`` over the event ids, a softmax per step,
  NLL<t> = -log ŷ<t>[y<t>].

Serving model (``MusicServer``), the same weights behind two graph functions:
    generate(primer, primer_length, steps, temperature, seed [, top_k, top_p])
        the primer runs through the stepping model, then the whole sampling loop
        (``zoo.decoding.frame_loop`` / ``sample_loop``) runs in the graph.
    score(piece, length) -> the NLL of each piece, per step and in all.
Frames cross the signature as (batch, time, 128) MIDI-pitch piano rolls (> 0.5 = on),
events as (batch, time) int32 in MelodyRNN's coding (-2 no event, -1 note-off,
0..127 note-on); both on the model's grid.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.common.task import Endpoint
from pipelines.music import data
from zoo import decoding
from zoo.builders import language_model as lm

MIDI_PITCHES = 128


@keras.saving.register_keras_serializable(package="music")
class FrameNLL(keras.losses.Loss):
    """NLL of multi-hot frames under one sigmoid per component, summed over the P
    components: y_true (batch, T, P) in {0, 1}, logits (batch, T, P) -> (batch, T)."""

    def __init__(self, reduction="mean_with_sample_weight", name="frame_nll", **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)

    def call(self, y_true, y_pred):
        return frame_nll(y_true, y_pred)


def frame_nll(y, logits):
    """(batch, T, P) targets and logits -> (batch, T) NLL summed over P (nats)."""
    y = tf.cast(y, tf.float32)
    return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=y, logits=logits), -1)


def build_model(config, meta):
    """The compiled model of ``config`` for the data described by ``meta``."""
    common = dict(embedding_dim=config.embedding_dim, cell=config.cell, units=config.units,
                  num_layers=config.num_layers, dropout=config.dropout, name="music")
    if meta["encoding"] == "piano_roll":
        model = lm.build_frame_model(meta["frame_size"], **common)
        loss = FrameNLL()
    else:
        model = lm.build_language_model(meta["vocab_size"], **common)
        loss = keras.losses.SparseCategoricalCrossentropy(
            from_logits=True, reduction="mean_with_sample_weight")
    model.compile(optimizer=config_lib.adam(config, global_clipnorm=True), loss=loss)
    return model


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp`` (keras-tuner HyperParameters):
    ``config_lib.language_model_space``."""
    return config_lib.language_model_space(hp, config)


def step_nll(model, x, y, w, encoding):
    """NLL of every step (batch, T), 0 where w is 0."""
    logits = model(x, training=False)
    if encoding == "piano_roll":
        nll = frame_nll(y, logits)
    else:
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    return nll * w, logits


def evaluate(model, dataset, config, meta):
    """piano_roll: NLL per frame (nats, summed over the pitches, as the JSB tables give
    it) and per pitch; melody: NLL per event step, perplexity and next-event accuracy."""
    total, steps, correct = 0.0, 0.0, 0.0
    for x, y, w in dataset:
        nll, logits = step_nll(model, x, y, w, meta["encoding"])
        total += float(tf.reduce_sum(nll))
        steps += float(tf.reduce_sum(w))
        if meta["encoding"] == "melody":
            hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), y), tf.float32)
            correct += float(tf.reduce_sum(hit * w))
    if not steps:
        raise ValueError("The dataset holds no steps to evaluate.")
    if meta["encoding"] == "piano_roll":
        return {"nll_per_frame": total / steps, "nll_per_pitch": total / steps / meta["frame_size"],
                "frames": int(steps)}
    return {"nll_per_step": total / steps, "perplexity": math.exp(total / steps),
            "accuracy": correct / steps, "steps": int(steps)}


def fold_matrix(low, high):
    """(128, P) 0/1: MIDI pitch p -> model pitch fold(p) - low (octaves into range)."""
    matrix = np.zeros((MIDI_PITCHES, high - low + 1), np.float32)
    pitches = np.arange(MIDI_PITCHES)
    matrix[pitches, data.fold(pitches, low, high).astype(int) - low] = 1.0
    return matrix


@keras.saving.register_keras_serializable(package="music")
class MusicServer(keras.layers.Layer):
    """MIDI-pitch frames or MIDI events in, a generated continuation or scores out, all
    in the graph.

    Args:
        model: a ``build_model`` model (shared, not copied).
        meta: the run's meta (encoding, min_pitch, max_pitch).
        steps, temperature, top_k, top_p, seed: what ``call`` and the defaults use.
        max_steps: the largest ``steps`` a request may ask for.
        max_primer: ``generate`` conditions on at most the last ``max_primer`` primer steps.

    Any input is accepted (NaN frames are off, invalid events are no event, lengths are
    clamped into [0, time], pitches outside the model's range move by octaves into it);
    ``steps`` outside [0, max_steps], a negative or non-finite temperature, top_k < 0
    or top_p outside (0, 1] are an InvalidArgumentError naming the input and value.
    """

    def __init__(self, model, meta, steps=64, temperature=1.0, top_k=0, top_p=1.0, seed=0,
                 max_steps=2048, max_primer=1024, **kwargs):
        super().__init__(**kwargs)
        if not 0 <= steps <= max_steps:
            raise ValueError(f"Expected 0 <= steps <= max_steps={max_steps}. Received: steps={steps}")
        self.model = model
        self.step_model = lm.build_step_model(model)
        self.frames = meta["encoding"] == "piano_roll"
        self.low, self.high = int(meta["min_pitch"]), int(meta["max_pitch"])
        self.max_steps, self.max_primer = int(max_steps), int(max_primer)
        defaults = {"steps": int(steps), "temperature": float(temperature), "seed": int(seed)}
        if not self.frames:  # melody events: top-k / top-p filtering too
            defaults.update(top_k=int(top_k), top_p=float(top_p))
        self.defaults = defaults
        self.fold = tf.constant(fold_matrix(self.low, self.high))

    # -------------------------------------------------------------- MIDI <-> model

    def _to_model(self, values):
        """(batch, T, 128) frames -> (batch, T, P) 0/1; (batch, T) events -> ids."""
        if self.frames:
            on = tf.cast(tf.convert_to_tensor(values, tf.float32) > 0.5, tf.float32)
            return tf.minimum(tf.einsum("btm,mp->btp", on, self.fold), 1.0)
        events = tf.convert_to_tensor(values, tf.int32)
        pitch = tf.clip_by_value(events, 0, 127)
        up = (tf.maximum(self.low - pitch, 0) + 11) // 12 * 12
        down = (tf.maximum(pitch - self.high, 0) + 11) // 12 * 12
        ids = data.FIRST_PITCH_ID + pitch + up - down - self.low
        is_pitch = (events >= 0) & (events <= 127)
        return tf.where(is_pitch, ids, tf.where(tf.equal(events, data.MIDI_NOTE_OFF),
                                                data.NOTE_OFF, data.NO_EVENT))

    def _to_midi(self, values):
        """Model frames (batch, T, P) -> (batch, T, 128) int32; ids -> MIDI events."""
        if self.frames:
            frames = tf.cast(values, tf.int32)
            return tf.pad(frames, [[0, 0], [0, 0], [self.low, MIDI_PITCHES - 1 - self.high]])
        ids = tf.cast(values, tf.int32)
        return tf.where(ids >= data.FIRST_PITCH_ID, ids - data.FIRST_PITCH_ID + self.low,
                        tf.where(tf.equal(ids, data.NOTE_OFF), data.MIDI_NOTE_OFF,
                                 data.MIDI_NO_EVENT))

    def _start(self, batch):
        """x<1> = 0: (batch, 1, P) silent frame or (batch, 1) start id."""
        shape = [batch, 1, self.high - self.low + 1] if self.frames else [batch, 1]
        return tf.zeros(shape, tf.float32 if self.frames else tf.int32)

    def _step(self, inputs, mask, states):
        out = self.step_model([inputs, mask] + list(states), training=False)
        return out["logits"], out["states"]

    # ------------------------------------------------------------------ signatures

    def call(self, primer, primer_length):
        """``generate`` with the default settings."""
        return self.generate(primer, primer_length, **self.defaults)

    def generate(self, primer, primer_length, steps, temperature, seed, top_k=0, top_p=1.0):
        """primer (batch, time, 128) frames or (batch, time) events, primer_length
        (batch,) -> {"frames": (batch, steps, 128) int32} or {"events": (batch, steps)
        int32}: the continuation only (the primer is not repeated)."""
        checks = decoding.sampling_checks(steps, temperature, top_k, top_p,
                                          max_allowed=self.max_steps, length_name="steps")
        with tf.control_dependencies(checks):
            primer = tf.identity(self._to_model(primer))
        batch, width = tf.shape(primer)[0], tf.shape(primer)[1]
        lengths = tf.clip_by_value(tf.cast(primer_length, tf.int32), 0, width)
        keep = tf.minimum(width, self.max_primer)  # the last max_primer steps of each row
        first = tf.maximum(lengths - self.max_primer, 0)
        primer = tf.gather(primer, first[:, None] + tf.range(keep)[None, :], batch_dims=1)
        lengths = lengths - first
        inputs = tf.concat([self._start(batch), primer], axis=1)  # x<1> = 0, then the primer
        mask = tf.sequence_mask(lengths + 1, keep + 1)
        states = lm.initial_states(self.model, batch)
        logits, states = self._step(inputs, mask, states)
        last = tf.gather(logits, lengths, axis=1, batch_dims=1)  # after the last primer step

        def step_fn(output, states):  # one step: output (batch, P) frame or (batch,) ids
            step = output[:, None]
            mask = tf.ones_like(step[:, :, 0] if self.frames else step, tf.bool)  # (batch, 1)
            logits, states = self._step(step, mask, states)
            return logits[:, -1], states

        if self.frames:
            out = decoding.frame_loop(step_fn, last, states, steps, seed, temperature)
            return {"frames": self._to_midi(out)}
        out, _ = decoding.sample_loop(step_fn, last, states, steps, seed, temperature=temperature,
                                      top_k=top_k, top_p=top_p, banned_ids=[data.PAD_ID])
        return {"events": self._to_midi(out)}

    def score(self, piece, length):
        """piece (batch, time, 128) frames or (batch, time) events, length (batch,) ->
        {"nll": (batch,) nats, "nll_per_frame"/"nll_per_step": (batch,) (0 for an empty
        piece), "step_nll": (batch, time) (0 after the end), "steps": (batch,)}."""
        y = self._to_model(piece)
        batch, width = tf.shape(y)[0], tf.shape(y)[1]
        lengths = tf.clip_by_value(tf.cast(length, tf.int32), 0, width)
        real = tf.sequence_mask(lengths, width)
        if self.frames:
            y = y * tf.cast(real, tf.float32)[..., None]
        else:
            y = tf.where(real, y, tf.zeros_like(y))
        x = tf.concat([self._start(batch), y], axis=1)  # one step more: time 0 still runs
        targets = tf.concat([y, tf.zeros_like(self._start(batch))], axis=1)
        nll, _ = step_nll(self.model, x, targets, tf.pad(tf.cast(real, tf.float32), [[0, 0], [0, 1]]),
                          "piano_roll" if self.frames else "melody")
        nll = nll[:, :width]
        total = tf.reduce_sum(nll, axis=1)
        per = total / tf.cast(tf.maximum(lengths, 1), tf.float32)
        return {"nll": total, ("nll_per_frame" if self.frames else "nll_per_step"): per,
                "step_nll": nll, "steps": lengths}

    def input_ranges(self):
        """{scalar input: (lowest, highest)} that ``generate`` accepts (inclusive, None
        = unbounded; floats finite); ``seed`` takes any int32."""
        ranges = {"steps": (0, self.max_steps), "temperature": (0.0, None)}
        if not self.frames:
            # top_p in (0, 1]: the smallest normal float32 stands for "above 0"
            ranges.update(top_k=(0, None), top_p=(float(np.finfo(np.float32).tiny), 1.0))
        return ranges

    def endpoints(self):
        """generate (= serving_default) and score; see the methods."""
        if self.frames:
            primer = tf.TensorSpec([None, None, MIDI_PITCHES], tf.float32, name="primer")
            piece = tf.TensorSpec([None, None, MIDI_PITCHES], tf.float32, name="piece")
            one = np.zeros((2, 3, MIDI_PITCHES), np.float32)
            one[1, :, [60, 64, 67]] = 1.0  # a C major chord, three steps
            example = one.tolist()
        else:
            primer = tf.TensorSpec([None, None], tf.int32, name="primer")
            piece = tf.TensorSpec([None, None], tf.int32, name="piece")
            example = [[-2, -2, -2], [60, -2, 64]]
        scalars = [tf.TensorSpec([], tf.int32, name="steps"),
                   tf.TensorSpec([], tf.float32, name="temperature"),
                   tf.TensorSpec([], tf.int32, name="seed")]
        if self.frames:
            fn = lambda primer, primer_length, steps, temperature, seed: self.generate(  # noqa: E731
                primer, primer_length, steps, temperature, seed)
        else:
            scalars += [tf.TensorSpec([], tf.int32, name="top_k"),
                        tf.TensorSpec([], tf.float32, name="top_p")]
            fn = lambda primer, primer_length, steps, temperature, seed, top_k, top_p: \
                self.generate(primer, primer_length, steps, temperature, seed, top_k, top_p)  # noqa: E731
        generate = Endpoint(
            fn=fn,
            inputs=[primer, tf.TensorSpec([None], tf.int32, name="primer_length")] + scalars,
            example={"primer": example, "primer_length": [0, 3], **self.defaults, "steps": 4},
            defaults=dict(self.defaults),
        )
        score = Endpoint(fn=self.score,
                         inputs=[piece, tf.TensorSpec([None], tf.int32, name="length")],
                         example={"piece": example, "length": [0, 3]})
        return {"serving_default": generate, "generate": generate, "score": score}


def serving_model(model, config, meta):
    return MusicServer(model, meta, steps=config.sample_steps, temperature=config.temperature,
                       top_k=config.top_k, top_p=config.top_p, seed=config.seed,
                       max_steps=config.serve_max_steps, max_primer=config.serve_max_primer)


def example_inputs(config, meta):
    """What the main job generates from: nothing (twice: different rows, different
    pieces) and, for the chorales, the first bars of a held-out chorale."""
    held_out = meta.get("examples") or []
    return ["", ""] + [f"corpus:{name}" for name in held_out[:1]]


def format_prediction(row):
    """"64 frames, 151 notes" (piano roll) or "128 events, 40 notes" (melody)."""
    if "frames" in row:
        frames = np.asarray(row["frames"])
        onsets = frames * (1 - np.pad(frames, [(1, 0), (0, 0)])[:-1])
        return f"{len(frames)} frames, {int(onsets.sum())} notes"
    events = np.asarray(row["events"])
    return f"{len(events)} events, {int((events >= 0).sum())} notes"
