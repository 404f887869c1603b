"""Speech model: decoding against a NumPy best path, beam search at least as likely as
greedy, char_lm rescoring that can change the choice, WER/CER against jiwer's
definitions by hand, the serving model on bad clips, the spectrogram picture."""

import dataclasses
import io

import jiwer
import numpy as np
import pytest
import soundfile
import tensorflow as tf

from pipelines.speech import data, model as sp_model
from pipelines.speech.config import PRESETS

SMALL = PRESETS["small"]
K = len(data.ALPHABET)


def _log_probs(seed, batch=3, frames=12):
    rng = np.random.RandomState(seed)
    logits = rng.randn(batch, frames, K + 1).astype(np.float32) * 3
    logits[..., data.BLANK] += 1.0
    return tf.nn.log_softmax(logits).numpy()


def _best_path(log_probs, n):
    out, previous = [], None
    for c in np.argmax(log_probs[:n], axis=-1):
        if c != previous and c != data.BLANK:
            out.append(int(c))
        previous = c
    return data.decode_ids(out), float(np.max(log_probs[:n], axis=-1).sum())


def _padded(log_probs, lengths):
    """As the model gives them: frames past a clip's length are the blank, certainly."""
    out = log_probs.copy()
    for i, n in enumerate(lengths):
        out[i, n:] = np.where(np.arange(K + 1) == data.BLANK, 0.0, -1e4)
    return out


def test_greedy_decoding_is_the_best_path_with_repeats_merged_and_blanks_dropped():
    lengths = np.array([12, 7, 0])
    log_probs = _padded(_log_probs(0), lengths)
    decoder = sp_model.Decoder(dataclasses.replace(SMALL, decoder="greedy"))
    ids, n, scores = decoder(tf.constant(log_probs), tf.constant(lengths))
    texts = [t.decode() for t in sp_model.transcripts(ids).numpy()]
    for i in range(3):
        want, score = _best_path(log_probs[i], lengths[i])
        assert texts[i] == want and int(n[i]) == len(want)
        assert float(scores[i]) == pytest.approx(score, abs=1e-4)


def test_beam_search_finds_a_labelling_at_least_as_likely_as_the_best_path():
    lengths = np.array([8, 8, 5, 3])
    log_probs = _padded(_log_probs(1, batch=4, frames=8), lengths)
    beam = sp_model.Decoder(dataclasses.replace(SMALL, decoder="beam", beam_width=16,
                                                top_paths=1))
    ids, _, _ = beam(tf.constant(log_probs), tf.constant(lengths))
    loss = sp_model.sr.CTCLoss(reduction=None)
    for i, text in enumerate(sp_model.transcripts(ids).numpy()):
        greedy, _ = _best_path(log_probs[i], lengths[i])
        padded = log_probs[i:i + 1].copy()
        padded[0, lengths[i]:] = np.where(np.arange(K + 1) == data.BLANK, 0.0, -1e4)

        def nll(t):
            y = np.array([data.encode_transcript(t) or [-1]], np.int32)
            return float(loss(tf.constant(y), tf.constant(padded))[0]) if t else np.inf

        assert nll(text.decode()) <= nll(greedy) + 1e-4


def test_a_language_model_rescoring_picks_among_the_top_paths():
    """With the weight 0 the CTC best of the paths wins; a large weight makes the LM's
    favourite win (the course's "pair" vs "pear")."""
    log_probs, lengths = _log_probs(2, batch=2), np.array([12, 12])
    config = dataclasses.replace(SMALL, decoder="beam", beam_width=8, top_paths=4)
    favourite = {}

    def lm(texts):  # a toy LM: likes the longest text
        scores = tf.cast(tf.strings.length(texts), tf.float32)
        favourite["texts"] = texts
        return scores

    plain = sp_model.Decoder(dataclasses.replace(config, lm_weight=0.0), lm=lm)
    ids0, _, _ = plain(tf.constant(log_probs), tf.constant(lengths))
    first = sp_model.Decoder(dataclasses.replace(config, top_paths=1))
    best, _, _ = first(tf.constant(log_probs), tf.constant(lengths))
    assert sp_model.transcripts(ids0).numpy().tolist() == sp_model.transcripts(best).numpy().tolist()
    heavy = sp_model.Decoder(dataclasses.replace(config, lm_weight=100.0), lm=lm)
    ids1, _, _ = heavy(tf.constant(log_probs), tf.constant(lengths))
    candidates = np.array(favourite["texts"].numpy()).reshape(4, 2)
    for i, text in enumerate(sp_model.transcripts(ids1).numpy()):
        assert len(text) == max(len(c) for c in candidates[:, i])


def test_evaluate_reports_jiwers_wer_and_cer_of_the_models_own_transcripts(tmp_path):
    from tests.speech.test_data import _fsdd

    folder = _fsdd(tmp_path / "fsdd", speakers=("ann",), takes=(0,), digits=range(5))
    config = dataclasses.replace(SMALL, data=folder, split="utterance", decoder="greedy")
    net = sp_model.build_model(config, {"alphabet": data.ALPHABET})
    dataset = data.read_split(config, {}, folder)
    report = sp_model.evaluate(net, dataset, config, {})
    refs = [t["reference"] for t in report["transcripts"]]
    hyps = [t["transcript"] for t in report["transcripts"]]
    assert report["utterances"] == 5 and sorted(refs) == ["four", "one", "three", "two", "zero"]
    assert report["wer"] == pytest.approx(jiwer.wer(refs, hyps))
    assert report["cer"] == pytest.approx(jiwer.cer(refs, hyps))
    assert len(report["spectrogram_examples"]) == 3


def _wav(seconds=0.5, rate=16000, subtype="PCM_16", channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.2 * np.sin(2 * np.pi * 220 * t)
    out = io.BytesIO()
    soundfile.write(out, np.stack([x] * channels, 1) if channels > 1 else x, rate,
                    format="WAV", subtype=subtype)
    return out.getvalue()


def test_the_serving_model_answers_every_clip():
    net = sp_model.build_model(SMALL, {"alphabet": data.ALPHABET})
    server = sp_model.Recognizer(net, SMALL)
    clips = [_wav(), _wav(rate=44100, subtype="PCM_24", channels=2), b"not a wav", b"",
             _wav(seconds=0.0), _wav(rate=8000, subtype="PCM_U8"),
             _wav(seconds=SMALL.max_seconds + 1, rate=8000)]
    out = tf.function(server.transcribe)(tf.constant(clips))
    assert out["ok"].numpy().tolist() == [True, True, False, False, True, True, True]
    errors = [e.decode() for e in out["error"].numpy()]
    assert errors[2] == "not a RIFF/WAVE file" and errors[3] == "empty input"
    assert out["truncated"].numpy().tolist() == [False] * 6 + [True]
    np.testing.assert_allclose(out["seconds"].numpy()[[0, 1, 4, 6]],
                               [0.5, 0.5, 0.0, SMALL.max_seconds + 1], atol=1e-3)
    assert all(set(t.decode()) <= set(data.ALPHABET) for t in out["transcript"].numpy())
    assert out["transcript"].numpy()[2] == b"" and out["score"].numpy()[2] == 0.0
    empty = server.transcribe(tf.zeros([0], tf.string))
    assert all(v.shape[0] == 0 for v in empty.values())


def test_the_picture_places_characters_at_their_frames(tmp_path):
    report = {"spectrogram_examples": [{
        "reference": "one", "transcript": "on",
        "features": np.random.RandomState(0).randn(30, 16).round(3).tolist(),
        "emissions": [[4, "o"], [12, "n"]]}]}
    paths = sp_model.draw_report(report, str(tmp_path), "test")
    assert len(paths) == 1 and paths[0].endswith("spectrogram_1.png")
    import matplotlib.image

    image = matplotlib.image.imread(paths[0])
    assert image.ndim == 3 and image.shape[0] > 100


@pytest.mark.slow  # about 50 s (two trainings and an export); .ci/run runs it in its second step
def test_a_char_lm_rescores_inside_the_export_which_runs_without_project_code(tmp_path):
    """lm_workdir: a char_lm run (trained here on number words) rescoring the beam; the
    export carries both models and serves with no project code."""
    import os

    from pipelines.char_lm import TASK as CHAR_LM
    from pipelines.common import serving_check
    from pipelines.common.cli import main
    from pipelines.speech import TASK, synth

    text = tmp_path / "numbers.txt"
    text.write_text("\n".join(synth.number_words(n) for n in range(0, 3000, 7)) + "\n")
    lm_dir = str(tmp_path / "lm")
    assert main(CHAR_LM, ["train", "--preset", "small", "--data", str(text),
                          "--workdir", lm_dir, "-q"]) == 0
    workdir, export_dir = str(tmp_path / "w"), str(tmp_path / "saved")
    assert main(TASK, ["--preset", "small", "--set", f"lm_workdir={lm_dir}",
                       "--set", "lm_weight=0.5", "--workdir", workdir,
                       "--export-dir", export_dir, "-q"]) == 0
    metrics = __import__("json").load(open(os.path.join(workdir, "eval", "metrics.json")))
    assert metrics["decoder"] == "beam + char_lm"
    got = serving_check.run_export(os.path.join(export_dir, "speech", "1"),
                                   {"audio": [_wav(), b"garbage"]})
    assert got["blocked"] == {"zoo": True, "pipelines": True} and not got["modules"]
    assert got["eager"]["ok"] == [True, False] and got["eager"] == got["session"]


def test_the_choices_decoder_picks_the_most_probable_choice_by_enumeration():
    """P(c | x) summed over every alignment by brute force (3 letters and the blank
    over 6 frames: 4^6 paths), against the decoder's pick and score."""
    import itertools

    rng = np.random.RandomState(7)
    letters = [data.ALPHABET.index(c) for c in "abc"]
    allowed = letters + [data.BLANK]
    batch, frames = 4, 6
    log_probs = np.full((batch, frames, K + 1), -1e4, np.float32)
    for i in range(batch):
        logits = rng.randn(frames, len(allowed)) * 2
        log_probs[i][:, allowed] = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    choices = ("ab", "ba", "a", "cab", "bb")
    config = dataclasses.replace(SMALL, decoder="choices", choices=choices)
    ids, n, scores = sp_model.Decoder(config)(tf.constant(log_probs), tf.constant([6] * batch))
    picked = [t.decode() for t in sp_model.transcripts(ids).numpy()]
    for i in range(batch):
        total = {}
        for path in itertools.product(allowed, repeat=frames):
            merged = [c for j, c in enumerate(path) if j == 0 or c != path[j - 1]]
            text = data.decode_ids([c for c in merged if c != data.BLANK])
            p = np.exp(sum((log_probs[i, t, c] for t, c in enumerate(path)), 0.0))
            total[text] = total.get(text, 0.0) + p
        want = max(choices, key=lambda c: total.get(c, 0.0))
        assert picked[i] == want and int(n[i]) == len(want)
        assert float(scores[i]) == pytest.approx(np.log(total[want]), abs=1e-3)


def test_the_choices_decoder_defaults_to_the_training_transcripts():
    config = dataclasses.replace(SMALL, decoder="choices")
    decoder = sp_model.Decoder(config, meta={"choices": ["one", "two"]})
    assert decoder.choices == ["one", "two"]
    from pipelines.common.textio import DataError

    with pytest.raises(DataError, match="decoder=choices needs --set choices="):
        sp_model.Decoder(config, meta={"choices": []})


def test_an_ensemble_averages_transcript_probabilities_saves_loads_and_serves(tmp_path):
    from zoo.builders import speech_recognizer as sr

    meta = {"alphabet": data.ALPHABET}
    first = sp_model.build_model(dataclasses.replace(SMALL, seed=0), meta)
    second = sp_model.build_model(dataclasses.replace(SMALL, seed=1), meta)
    model = sp_model.combine([first, second], SMALL, meta)
    rng = np.random.RandomState(2)
    inputs = {"features": rng.randn(2, 30, SMALL.n_mels).astype(np.float32),
              "length": np.array([30, 17], np.int32)}
    l1, l2 = (m(inputs, training=False).numpy() for m in (first, second))
    assert not np.allclose(l1, l2), "the members are the same model"
    stacked = model(inputs, training=False).numpy()
    np.testing.assert_allclose(stacked, np.stack([l1, l2], 1), atol=1e-6)
    # the loss: -log of the members' mean probability of the whole transcript
    labels = np.array([[3, 1, 4], [5, -1, -1]], np.int32)
    each = [sr.CTCLoss(reduction=None)(labels, x).numpy() for x in (l1, l2)]
    np.testing.assert_allclose(sr.CTCLoss(reduction=None)(labels, stacked).numpy(),
                               -np.log((np.exp(-each[0]) + np.exp(-each[1])) / 2), rtol=1e-5)
    # decoding: candidates scored by the ensemble, as a one-model decoder scores them
    words = ["one", "two", "three", "four"]
    config = dataclasses.replace(SMALL, decoder="choices", choices=tuple(words))
    ids, _, scores = sp_model.Decoder(config)(tf.constant(stacked), tf.constant([15, 9]))
    single = [sp_model.Decoder(config)._candidate_scores(
        tf.constant(x), tf.tile(sp_model.Decoder(config).choice_ids[None], [2, 1, 1])).numpy()
        for x in (l1, l2)]
    mean = np.log((np.exp(single[0]) + np.exp(single[1])) / 2)  # (batch, choices)
    got = [data.decode_ids(row) for row in ids.numpy()]
    assert got == [words[k] for k in mean.argmax(1)]
    np.testing.assert_allclose(scores.numpy(), mean.max(1), rtol=1e-5)
    beam = dataclasses.replace(SMALL, decoder="beam", beam_width=4, top_paths=2)
    decoder = sp_model.Decoder(beam)
    ids, _, scores = decoder(tf.constant(stacked), tf.constant([15, 9]))
    # the pick is the members' beam candidate (2 paths each) with the best ensemble score
    found = tf.concat([decoder._paths(tf.constant(x), tf.constant([15, 9]), 2)[0]
                       for x in (l1, l2)], 0)  # (4, batch, frames)
    candidates = tf.transpose(found, (1, 0, 2))
    want = decoder._candidate_scores(tf.constant(stacked), candidates).numpy()  # (batch, 4)
    np.testing.assert_allclose(scores.numpy(), want.max(1), rtol=1e-5)
    for b in range(2):
        best = candidates.numpy()[b, want[b].argmax()]
        assert data.decode_ids(ids.numpy()[b]) == data.decode_ids(best)
    path = str(tmp_path / "ensemble.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    np.testing.assert_allclose(loaded(inputs, training=False).numpy(), stacked, atol=1e-5)
    out = sp_model.Recognizer(loaded, SMALL).transcribe(tf.constant([_wav(), b"not a wav"]))
    assert out["ok"].numpy().tolist() == [True, False]
    assert set(out["transcript"].numpy()[0].decode()) <= set(data.ALPHABET)
