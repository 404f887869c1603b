"""The NER serving model with a CRF head on the inputs that used to fail inside the graph
(a longest sentence of at most one token, an empty batch), and its ``truncated`` output."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.ner import model as ner_model
from pipelines.ner.config import PRESETS

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


@pytest.fixture(scope="module")
def server():
    keras.utils.set_random_seed(0)
    meta = {"vocabulary": ["", "[UNK]", "obama", "paris"], "characters": ["", "[UNK]", "a", "b"],
            "labels": LABELS, "target": "tags"}
    config = dataclasses.replace(PRESETS["small"], head="crf", serve_max_tokens=4)
    return ner_model.TaggerServer(ner_model.build_model(config, meta), meta, config)


@pytest.fixture(scope="module")
def signatures(server):
    """The two signatures traced as an export traces them (unknown batch and time)."""
    text = tf.function(server.call, input_signature=[tf.TensorSpec([None], tf.string)])
    tokens = tf.function(server.tag, input_signature=[tf.TensorSpec([None, None], tf.string)])
    return text, tokens


def _np(out):
    return {k: v.numpy() for k, v in out.items()}


@pytest.mark.parametrize("texts", [[""], ["   "], ["Obama"], ["a", "b"], ["", "Obama", " \t\n"]])
def test_one_token_and_empty_sentences_are_tagged(signatures, texts):
    text, _ = signatures
    out = _np(text(tf.constant(texts)))
    want = [len(t.split()) for t in texts]
    assert out["lengths"].tolist() == want
    assert out["tokens"].shape == out["tags"].shape == (len(texts), max(1, *want))
    for b, n in enumerate(want):
        assert all(t for t in out["tags"][b, :n]) and not any(out["tags"][b, n:])
        if n == 0:  # README: an empty sentence gives no tokens and no entities
            assert out["entity_counts"][b] == 0 and not any(out["tokens"][b])
    assert out["truncated"].tolist() == [False] * len(texts)


def test_empty_batches_give_empty_outputs(signatures):
    text, tokens = signatures
    for out in (_np(text(tf.constant([], tf.string))), _np(tokens(tf.zeros((0, 0), tf.string))),
                _np(tokens(tf.zeros((0, 3), tf.string)))):
        assert all(v.shape[0] == 0 for v in out.values()), {k: v.shape for k, v in out.items()}
        assert out["tokens"].shape[1] >= 1 and out["entity_types"].shape[1] == 0
    out = _np(tokens(tf.constant([[""]])))
    assert out["lengths"].tolist() == [0] and out["entity_counts"].tolist() == [0]


def test_truncated_says_which_sentences_were_cut(signatures):
    text, tokens = signatures
    texts = ["a b c d", "a b c d e", "Obama .", "x " * 500]
    out = _np(text(tf.constant(texts)))
    assert out["truncated"].tolist() == [False, True, False, True]
    assert out["lengths"].tolist() == [4, 4, 2, 4] and out["truncated"].dtype == np.bool_
    out = _np(tokens(tf.constant([["a", "b", "c", "d", ""], ["a", "b", "c", "d", "e"]])))
    assert out["truncated"].tolist() == [False, True] and out["tokens"].shape == (2, 4)
