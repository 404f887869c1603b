"""The music model and its serving layer: stepping equals the whole sequence, an
untrained piano-roll model scores about P·log 2 a frame, temperature -> 0 is the most
likely path, primers are read on the model's grid (the last max_primer steps), score
equals evaluate, and out-of-range settings are InvalidArgumentErrors naming the value."""

import dataclasses
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.music import data, model as music_model
from pipelines.music.config import PRESETS
from zoo.builders import language_model as lm

SMALL = PRESETS["small"]


def _meta(encoding):
    config = dataclasses.replace(SMALL, encoding=encoding,
                                 **({"min_pitch": 55, "max_pitch": 84, "grid": "16th"}
                                    if encoding == "melody" else {}))
    return config, data.make_meta(config, {}, "test")


def _model(encoding, units=16, seed=1):
    keras.utils.set_random_seed(seed)
    config, meta = _meta(encoding)
    config = dataclasses.replace(config, units=units, embedding_dim=8, cell="gru")
    model = music_model.build_model(config, meta)
    # Larger output weights than the initialiser's: decisive, varied logits.
    model.get_layer("logits").kernel.assign(model.get_layer("logits").kernel * 8.0)
    return model, config, meta


def _inputs(meta, rng, batch=2, steps=7):
    if meta["encoding"] == "piano_roll":
        y = (rng.random((batch, steps, meta["frame_size"])) < 0.1).astype("float32")
    else:
        y = rng.integers(1, meta["vocab_size"], (batch, steps)).astype("int32")
    x = np.concatenate([np.zeros_like(y[:, :1]), y[:, :-1]], axis=1)
    return x, y


@pytest.mark.parametrize("encoding", ["piano_roll", "melody"])
def test_stepping_one_step_at_a_time_equals_the_whole_sequence(encoding):
    model, _, meta = _model(encoding)
    x, _ = _inputs(meta, np.random.default_rng(0))
    whole = tf.nn.sigmoid(model(x)) if encoding == "piano_roll" else tf.nn.softmax(model(x))
    step = lm.build_step_model(model)
    states, probs = lm.initial_states(model, 2), []
    for t in range(x.shape[1]):
        out = step([tf.constant(x[:, t:t + 1]), tf.ones((2, 1), tf.bool)] + list(states))
        states = out["states"]
        logits = out["logits"][:, 0]
        probs.append(tf.nn.sigmoid(logits) if encoding == "piano_roll" else tf.nn.softmax(logits))
    np.testing.assert_allclose(np.stack(probs, 1), whole.numpy(), atol=1e-6)


def test_an_untrained_piano_roll_model_scores_about_p_log_2_a_frame():
    keras.utils.set_random_seed(0)
    config, meta = _meta("piano_roll")
    datasets = data.make_datasets(config)  # a few real chorales
    report = music_model.evaluate(music_model.build_model(config, meta), datasets.valid,
                                  config, meta)
    assert report["nll_per_frame"] == pytest.approx(88 * math.log(2), rel=0.03)
    assert report["nll_per_pitch"] == pytest.approx(math.log(2), rel=0.03)


def _server(model, config, meta, **kwargs):
    return music_model.MusicServer(model, meta, **kwargs)


def _greedy_path(model, meta, primer, steps):
    """The most likely continuation, by running the whole-sequence model on the growing
    sequence (no step model): argmax events, or every pitch with z > 0."""
    seq = list(primer)
    for _ in range(steps):
        x = np.array([[np.zeros_like(seq[0]) if seq else 0] + seq], dtype=(
            "float32" if meta["encoding"] == "piano_roll" else "int32"))
        if meta["encoding"] == "piano_roll" and not seq:
            x = np.zeros((1, 1, meta["frame_size"]), "float32")
        logits = model(x).numpy()[0, -1]
        seq.append((logits > 0).astype("float32") if meta["encoding"] == "piano_roll"
                   else 1 + int(np.argmax(logits[1:])))  # id 0 (start/padding) is never sampled
    return np.array(seq[len(primer):])


@pytest.mark.parametrize("encoding", ["piano_roll", "melody"])
def test_temperature_to_zero_is_the_most_likely_path_after_the_primer(encoding):
    model, config, meta = _model(encoding)
    server = _server(model, config, meta)
    rng = np.random.default_rng(3)
    if encoding == "piano_roll":
        primer_model = (rng.random((4, meta["frame_size"])) < 0.1).astype("float32")
        primer = np.zeros((1, 6, 128), "float32")  # two padding steps after the primer
        primer[0, :4, meta["min_pitch"]:meta["max_pitch"] + 1] = primer_model
        primer[0, 4:, :] = np.nan  # padding is never read
        expected = _greedy_path(model, meta, list(primer_model), 5)
        expected = np.pad(expected, [(0, 0), (meta["min_pitch"], 127 - meta["max_pitch"])])
    else:
        events = np.array([60, -2, -1, 67], "int32")
        primer = np.array([[60, -2, -1, 67, 999, 999]], "int32")
        expected = data.ids_to_events(
            _greedy_path(model, meta, list(data.events_to_ids(events, 55, 84)), 5), 55)
    key = "frames" if encoding == "piano_roll" else "events"
    for temperature in (0.0, 1e-4):
        out = server.generate(tf.constant(primer), tf.constant([4]), 5, temperature, seed=7)
        np.testing.assert_array_equal(out[key].numpy()[0], expected)
    free = server.generate(tf.constant(primer[:, :0]), tf.constant([0]), 5, 0.0, seed=1)
    from_nothing = _greedy_path(model, meta, [], 5)
    if encoding == "melody":
        from_nothing = data.ids_to_events(from_nothing, 55)
    else:
        from_nothing = np.pad(from_nothing, [(0, 0), (meta["min_pitch"], 127 - meta["max_pitch"])])
    np.testing.assert_array_equal(free[key].numpy()[0], from_nothing)


def test_sampling_is_seeded_and_rows_differ():
    model, config, meta = _model("piano_roll")
    server = _server(model, config, meta)
    empty = tf.zeros((3, 0, 128))
    a = server.generate(empty, tf.zeros(3, tf.int32), 6, 1.0, seed=5)["frames"].numpy()
    b = server.generate(empty, tf.zeros(3, tf.int32), 6, 1.0, seed=5)["frames"].numpy()
    c = server.generate(empty, tf.zeros(3, tf.int32), 6, 1.0, seed=6)["frames"].numpy()
    assert a.shape == (3, 6, 128) and set(np.unique(a)) <= {0, 1}
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a[0], a[1])
    assert a[:, :, :21].sum() == 0 and a[:, :, 109:].sum() == 0  # only the model's pitches


def test_generation_conditions_on_the_last_max_primer_steps():
    model, config, meta = _model("melody")
    server = _server(model, config, meta, max_primer=3)
    long = tf.constant([[60, 62, 64, 65, 67, -2, -1, 0]])
    last3 = tf.constant([[67, -2, -1]])
    a = server.generate(long, tf.constant([7]), 6, 0.0, seed=0)["events"]
    b = server.generate(last3, tf.constant([3]), 6, 0.0, seed=0)["events"]
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_score_equals_evaluate_and_reads_lengths_and_any_value():
    model, config, meta = _model("piano_roll")
    server = _server(model, config, meta)
    rng = np.random.default_rng(5)
    _, y = _inputs(meta, rng, batch=1, steps=9)
    piece = np.zeros((1, 9, 128), "float32")
    piece[0, :, 21:109] = y[0]
    ds = data.make_dataset([y[0]], config)
    want = music_model.evaluate(model, ds, config, meta)["nll_per_frame"]
    padded = np.concatenate([piece, np.full((1, 3, 128), np.inf, "float32")], axis=1)
    out = server.score(tf.constant(np.concatenate([padded, padded])), tf.constant([9, 0]))
    assert out["nll_per_frame"].numpy()[0] == pytest.approx(want, rel=1e-5)
    assert out["nll"].numpy()[0] == pytest.approx(want * 9, rel=1e-5)
    assert out["steps"].numpy().tolist() == [9, 0]
    assert out["nll_per_frame"].numpy()[1] == 0.0 and out["step_nll"].numpy()[0, 9:].sum() == 0


@pytest.mark.parametrize("inputs, message", [
    ({"steps": 3000}, "Expected 0 <= steps <= 2048. Received: steps=3000"),
    ({"steps": -1}, "Expected 0 <= steps <= 2048. Received: steps=-1"),
    ({"temperature": -0.5}, "Expected temperature >= 0 (finite; 0 = greedy). Received: temperature=-0.5"),
    ({"temperature": float("nan")}, "Received: temperature=nan"),
    ({"top_k": -1}, "Expected top_k >= 0 (0 = all tokens). Received: top_k=-1"),
    ({"top_p": 0.0}, "Expected 0 < top_p <= 1. Received: top_p=0"),
])
def test_out_of_range_settings_are_invalid_argument_errors(inputs, message):
    model, config, meta = _model("melody")
    server = _server(model, config, meta)
    generate = tf.function(server.endpoints()["generate"].fn)
    values = {"primer": tf.zeros((1, 2), tf.int32), "primer_length": tf.constant([2]),
              "steps": 4, "temperature": 1.0, "seed": 0, "top_k": 0, "top_p": 1.0, **inputs}
    spec = server.endpoints()["generate"].inputs
    with pytest.raises(tf.errors.InvalidArgumentError, match=message.replace("(", r"\(")
                       .replace(")", r"\)")):
        generate(*[tf.constant(values[s.name], s.dtype) for s in spec])
