"""Sampling and scoring through the serving model's graph code (pipelines.char_lm.sample)."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.char_lm import config as config_lib, data, model as model_lib, sample
from zoo.builders import language_model as lm

CHARS = list(data.RESERVED) + list("abcdefgh ")
WORDS = list(data.RESERVED) + ["the", "pear", "pair", "salad", "and", "."]


def _model(vocabulary, level, seed=0):
    keras.utils.set_random_seed(seed)
    config = dataclasses.replace(config_lib.PRESETS["small"], level=level, units=16)
    return model_lib.build_model(config, {"vocabulary": vocabulary, "level": level}), {
        "vocabulary": vocabulary, "level": level}


def _bias(model, index, value):
    bias = model.get_layer("logits").bias
    bias.assign(tf.tensor_scatter_nd_update(bias, [[index]], [value]))


def test_temperature_zero_is_the_greedy_path():
    model, meta = _model(CHARS, "char")
    step = lm.build_step_model(model)
    ids, states, expected = np.array([[0, 3, 4]], "int32"), lm.initial_states(model, 1), ""
    for _ in range(12):  # greedy by hand: argmax over the allowed tokens (not 0, [UNK], <eos>)
        out = step([tf.constant(ids), tf.ones(ids.shape, tf.bool)] + states)
        logits = np.array(out["logits"])[0, -1]
        logits[:3] = -np.inf
        token = int(np.argmax(logits))
        expected += CHARS[token]
        ids, states = np.array([[token]], "int32"), out["states"]
    for temperature in (0.0, 1e-4):
        text = sample.sample(model, meta, ["ab"], max_length=12, temperature=temperature, seed=5)
        assert text == ["ab" + expected]


def test_seed_reproducible_and_lengths_bounded():
    model, meta = _model(CHARS, "char")
    a = sample.sample(model, meta, ["", "abc"], max_length=30, temperature=1.5, seed=1)
    b = sample.sample(model, meta, ["", "abc"], max_length=30, temperature=1.5, seed=1)
    c = sample.sample(model, meta, ["", "abc"], max_length=30, temperature=1.5, seed=2)
    assert a == b and a != c
    assert len(a[0]) == 30 and a[1].startswith("abc") and len(a[1]) == 33
    assert set("".join(a)) <= set("abcdefgh ")
    assert sample.sample(model, meta, ["", "abc"], max_length=0, seed=1) == ["", "abc"]


@pytest.mark.parametrize("settings,message", [
    ({"max_length": -1}, "Expected max_length >= 0. Received: max_length=-1"),
    ({"temperature": -1.0}, "Expected temperature >= 0 (finite; 0 = greedy). Received: temperature=-1.0"),
    ({"temperature": float("nan")}, "Expected temperature >= 0 (finite; 0 = greedy). Received: temperature=nan"),
    ({"top_k": -1}, "Expected top_k >= 0 (0 = all tokens). Received: top_k=-1"),
    ({"top_p": 0.0}, "Expected 0 < top_p <= 1. Received: top_p=0.0"),
])
def test_sample_refuses_out_of_range_arguments(settings, message):
    model, meta = _model(CHARS, "char")
    with pytest.raises(ValueError) as caught:
        sample.sample(model, meta, ["a"], **settings)
    assert str(caught.value) == message


def test_sample_command_max_length_zero_is_the_prompt_and_bad_values_are_one_line(
        small_run, capsys):
    from pipelines.common.cli import main

    run = small_run("char_lm")
    task, common = run["task"], ["--workdir", run["workdir"]]
    capsys.readouterr()
    assert main(task, ["sample", "The ", "--max-length", "0", *common]) == 0
    assert capsys.readouterr().out == "---\nThe \n"
    for flag, value, want in [("--top-p", "0", "error: --top-p: Expected 0 < top_p <= 1. Received: top_p=0.0"),
                              ("--max-length", "-3", "error: --max-length: Expected max_length >= 0. "
                               "Received: max_length=-3"),
                              ("--temperature", "nan", "error: --temperature: Expected temperature >= 0 "
                               "(finite; 0 = greedy). Received: temperature=nan")]:
        assert main(task, ["sample", "The ", flag, value, *common]) == 2
        assert capsys.readouterr().err.strip().splitlines() == [want]


def test_word_sampler_never_emits_unk_unless_asked_and_stops_at_eos():
    model, meta = _model(WORDS, "word")
    _bias(model, data.UNK_ID, 30.0)  # [UNK] would win every draw
    texts = sample.sample(model, meta, ["the"] * 20, max_length=8, temperature=1.0, seed=0)
    assert not any("[UNK]" in t for t in texts)
    allowed = sample.sample(model, meta, ["the"], max_length=8, temperature=1.0, seed=0, allow_unk=True)
    assert "[UNK]" in allowed[0]
    _bias(model, data.EOS_ID, 60.0)  # <eos> first: an empty continuation
    assert sample.sample(model, meta, ["the pear"], max_length=8, seed=0) == ["the pear"]


def test_score_is_the_sum_of_the_chain_rule_terms():
    model, meta = _model(WORDS, "word")
    (total, tokens), = sample.score(model, meta, ["The pear salad"])
    assert [t for t, _ in tokens] == ["the", "pear", "salad", "<eos>"]
    y = np.array([[3, 4, 6, 2]], "int32")
    x = np.array([[0, 3, 4, 6]], "int32")
    logp = tf.nn.log_softmax(model(x), axis=-1).numpy()[0]
    expected = [logp[t, y[0, t]] for t in range(4)]
    np.testing.assert_allclose([lp for _, lp in tokens], expected, rtol=1e-5, atol=1e-5)
    assert total == pytest.approx(sum(expected), abs=1e-4)


def test_rank_prefers_the_more_probable_sentence():
    model, meta = _model(WORDS, "word")
    _bias(model, WORDS.index("pear"), 5.0)
    ranked = sample.rank(model, meta, ["the apple and pair salad", "the apple and pear salad"])
    assert [text for text, _ in ranked] == ["the apple and pear salad", "the apple and pair salad"]
    assert ranked[0][1] > ranked[1][1]


def test_char_scores_of_padded_batch_equal_single_texts():
    model, meta = _model(CHARS, "char")
    batch = sample.score(model, meta, ["abc", "a", ""])
    for text, row in zip(["abc", "a", ""], batch):
        alone = sample.score(model, meta, [text])[0]
        assert row[0] == pytest.approx(alone[0], abs=1e-5)
        assert len(row[1]) == len(text)


def test_generate_conditions_on_the_last_max_prompt_tokens_and_keeps_the_whole_prompt():
    model, meta = _model(CHARS, "char")
    for weight in model.weights:  # larger weights: the greedy path depends on the prompt
        weight.assign(weight * 6.0)
    args = (tf.constant(8), tf.constant(0.0), tf.constant(0), tf.constant(0))

    def generated(server, prompt):
        return server.generate(tf.constant([prompt]), *args)["generated"].numpy()[0].decode()

    full = model_lib.LanguageModelServer(model, CHARS, "char", max_length=0)
    cut = model_lib.LanguageModelServer(model, CHARS, "char", max_length=0, max_prompt=3)
    assert generated(full, "hgfeabc") != generated(full, "abc")  # the early characters matter
    assert generated(cut, "hgfeabc") == generated(cut, "abc") == generated(full, "abc")
    text = cut.generate(tf.constant(["hgfeabc"]), *args)["text"].numpy()[0].decode()
    assert text == "hgfeabc" + generated(cut, "abc")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Expected 0 <= max_length <= 1000"):
        cut.generate(tf.constant(["a"]), tf.constant(1001), *args[1:])
