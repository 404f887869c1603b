"""The translation model: stepping the decoder one token at a time equals the
teacher-forced pass, beam width 1 is greedy decoding through the serving layer, label
smoothing against NumPy, and the metrics against sacrebleu on the model's own output."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.translation import data, model as tr_model
from pipelines.translation.config import PRESETS
from zoo.builders import encoder_decoder as ed

SMALL = PRESETS["small"]


@pytest.mark.parametrize("attention", ["additive", "multiplicative", "none"])
def test_stepping_the_decoder_equals_the_teacher_forced_pass(attention):
    keras.utils.set_random_seed(0)
    model = ed.build_encoder_decoder(12, 9, 8, "gru", 6, num_layers=2, attention=attention,
                                     attention_units=5)
    source = np.array([[3, 4, 5, 0, 0], [1, 2, 3, 4, 5]], "int32")
    decoder = np.array([[2, 4, 5, 6], [2, 7, 7, 1]], "int32")
    whole = model([source, decoder]).numpy()
    encoder, step = ed.build_inference_models(model)
    encoded = encoder(tf.constant(source))
    states, logits = encoded["states"], []
    for t in range(decoder.shape[1]):
        out = step([tf.constant(decoder[:, t:t + 1]), encoded["encoded"], encoded["mask"]]
                   + list(states))
        states = out["states"]
        logits.append(out["logits"].numpy())
        alpha = out["attention"].numpy()
        if attention != "none":
            assert alpha[0, 3:].max() == 0 and np.allclose(alpha.sum(-1), 1, atol=1e-5)
    np.testing.assert_allclose(np.stack(logits, 1), whole, atol=1e-5)


def _trained_small():
    keras.utils.set_random_seed(1)
    config = dataclasses.replace(SMALL, num_examples=200, units=16, embedding_dim=16,
                                 attention_units=16)
    datasets = data.make_datasets(config)
    model = tr_model.build_model(config, datasets.meta)
    model.fit(datasets.train, epochs=2, verbose=0)
    return model, config, datasets


@pytest.fixture(scope="module")
def small():
    return _trained_small()


def test_beam_width_1_is_greedy_decoding(small):
    model, config, datasets = small
    translator = tr_model.serving_model(model, dataclasses.replace(config, beam_width=1),
                                        datasets.meta)
    sources = ["3 mars 1998", "Dec 24, 1961", ""]
    got = [t.decode() for t in translator.translate(tf.constant(sources))["translation"].numpy()]
    vocabulary = datasets.meta["target_vocabulary"]
    for text, want in zip(sources, got):
        ids = translator._source(tf.constant([text]))[0]
        decoded = [data.START_ID]
        for _ in range(int(np.ceil(1.5 * max(ids.shape[1] if text else 0, 0))) + 10):
            logits = model([ids, tf.constant([decoded])]).numpy()[0, -1]
            logits[[data.PAD_ID, data.START_ID]] = -np.inf
            token = int(np.argmax(logits))
            if token == data.END_ID:
                break
            decoded.append(token)
        assert "".join(vocabulary[i] for i in decoded[1:]) == want, text


def test_label_smoothing_matches_numpy():
    rng = np.random.default_rng(2)
    logits = rng.normal(size=(2, 3, 5)).astype("float32")
    y = rng.integers(0, 5, (2, 3))
    log_p = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    for eps in (0.0, 0.1):
        want = -(1 - eps) * np.take_along_axis(log_p, y[..., None], -1)[..., 0] \
            - eps * log_p.mean(-1)
        got = tr_model.SmoothedNLL(eps).call(tf.constant(y), tf.constant(logits)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_metrics_agree_with_sacrebleu_on_the_models_own_translations(small):
    import sacrebleu

    model, config, datasets = small
    pairs = [("3 mars 1998", "1998-03-03"), ("Dec 24, 1961", "1961-12-24"),
             ("24.12.61", "1961-12-24")]
    ds, _ = data.make_dataset(pairs, config, datasets.meta)
    report = tr_model.evaluate(model, ds, config, datasets.meta)
    shown = report["translations"]
    assert sorted((t["source"], t["reference"]) for t in shown) == sorted(pairs)
    hypotheses = [t["translation"] for t in shown]
    references = [t["reference"] for t in shown]
    assert report["exact_match"] == np.mean([h == r for h, r in zip(hypotheses, references)])
    assert report["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score)
    assert report["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hypotheses, [references]).score)
    assert report["bleu_signature"].startswith("nrefs:1|case:mixed|eff:no|tok:13a")
    example = report["attention_examples"][0]
    alpha = np.array(example["attention"])
    assert alpha.shape == (len(example["target"]), len(example["source"]))
    assert example["target"][-1] == data.END and np.allclose(alpha.sum(1), 1, atol=1e-3)


def test_beam_width_is_a_request_input_with_its_range_checked(small):
    model, config, datasets = small
    translator = tr_model.serving_model(model, config, datasets.meta)
    sources = tf.constant(["3 mars 1998", "Dec 24, 1961", ""])
    run = tf.function(translator.translate, input_signature=[
        tf.TensorSpec([None], tf.string), tf.TensorSpec([], tf.int32)])
    for width in (1, 3):
        fixed = tr_model.serving_model(model, dataclasses.replace(config, beam_width=width),
                                       datasets.meta).translate(sources)
        got = run(sources, tf.constant(width))
        assert got["translation"].numpy().tolist() == fixed["translation"].numpy().tolist()
        np.testing.assert_allclose(got["score"].numpy(), fixed["score"].numpy(), rtol=1e-5)
    for bad in (0, 17, -2**31):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=f"Expected 1 <= beam_width <= 16. Received: beam_width={bad}"):
            run(sources, tf.constant(bad))
    with pytest.raises(ValueError, match=r"'beam_width' expects a value <= serve_max_beam \(16\)"
                                         r". Received: 20"):
        dataclasses.replace(config, beam_width=20)
