"""The tagger (heads, masking, character encoder), its evaluation and the serving model."""

import dataclasses

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.ner import model as ner_model
from pipelines.ner import tags as tag_lib
from pipelines.ner.config import PRESETS
from zoo.builders.sequence_tagger import CharEncoder, build_sequence_tagger, decode, tagger_loss

SMALL = PRESETS["small"]


def _batch(words, chars_per_word=3):
    words = np.asarray(words, dtype="int32")
    chars = np.where(words[..., None] > 0, (words[..., None] % 5) + 2, 0)
    return {"words": words, "chars": np.repeat(chars, chars_per_word, axis=-1).astype("int32")}


@pytest.mark.parametrize("head", ["softmax", "crf", "sigmoid"])
def test_padding_changes_neither_loss_nor_tags(head):
    keras.utils.set_random_seed(0)
    k = 1 if head == "sigmoid" else 4
    model = build_sequence_tagger(20, 10, k, head=head, word_dim=8, char_dim=4, char_features=6,
                                  units=5, dropout=0.0, embedding_dropout=0.0)
    model.compile(loss=tagger_loss(head))
    y = np.array([[1, 0, 1]]) if head == "sigmoid" else np.array([[1, 2, 3]])
    short, padded = _batch([[4, 5, 6]]), _batch([[4, 5, 6, 0, 0]])
    y_padded = np.pad(y, [[0, 0], [0, 2]], constant_values=-1)
    loss = model.evaluate(short, y, verbose=0)
    assert loss > 0
    assert model.evaluate(padded, y_padded, verbose=0) == pytest.approx(loss, rel=1e-5)
    tags = keras.ops.convert_to_numpy(decode(model(short), head))
    tags_padded = keras.ops.convert_to_numpy(decode(model(padded), head))
    assert (tags_padded[:, :3] == tags).all()


@pytest.mark.parametrize("encoder", ["cnn", "rnn"])
def test_char_encoder_gives_unseen_words_a_vector_and_padding_zero(encoder):
    layer = CharEncoder(10, embedding_dim=4, features=6, encoder=encoder)
    chars = np.array([[[3, 4, 0], [5, 0, 0], [0, 0, 0]]], dtype="int32")
    out = keras.ops.convert_to_numpy(layer(chars))
    assert out.shape == (1, 3, 6)
    assert np.abs(out[0, :2]).sum(axis=-1).min() > 0 and (out[0, 2] == 0).all()
    again = CharEncoder.from_config(layer.get_config())
    assert again.encoder == encoder and again.features == 6


def test_builder_refuses_bad_arguments():
    with pytest.raises(ValueError, match="head="):
        build_sequence_tagger(10, 10, 3, head="hmm")
    with pytest.raises(ValueError, match="num_tags=1"):
        build_sequence_tagger(10, 10, 3, head="sigmoid")


def _fake_server(labels, word_labels, target="tags"):
    """A TaggerServer whose 'tagger' gives each known word a fixed label (softmax head)."""
    vocabulary = ["", "[UNK]", *word_labels]
    meta = {"vocabulary": vocabulary, "characters": ["", "[UNK]", "a"], "labels": labels,
            "target": target}
    index = [0, 0] + [labels.index(word_labels[w]) for w in word_labels]

    def tagger(features, training=False):
        return tf.one_hot(tf.gather(index, features["words"]), len(labels))

    config = dataclasses.replace(SMALL, head="softmax", serve_max_tokens=50)
    return ner_model.TaggerServer(tagger, meta, config)


def test_serving_tags_and_spans_follow_conll_semantics():
    labels = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
    server = _fake_server(labels, {"barack": "B-PER", "obama": "I-PER", "paris": "B-LOC",
                                   "york": "I-LOC", "texas": "B-LOC"})
    texts = ["Barack Obama left Paris Texas for York York .", "", "nothing here", "York"]
    out = {k: v.numpy() for k, v in server(tf.constant(texts)).items()}
    tags = [[t.decode() for t in row if t] for row in out["tags"]]
    assert tags[0] == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "O", "B-LOC", "I-LOC", "O"]
    assert tags[1:] == [[], ["O", "O"], ["B-LOC"]]
    assert out["lengths"].tolist() == [9, 0, 2, 1]
    for b, row in enumerate(tags):
        want = tag_lib.entities(row)
        n = int(out["entity_counts"][b])
        assert n == len(want)
        got = [(out["entity_types"][b, e].decode(), int(out["entity_starts"][b, e]),
                int(out["entity_ends"][b, e])) for e in range(n)]
        assert got == want
        assert (out["entity_starts"][b, n:] == -1).all()
    assert [t.decode() for t in out["entity_texts"][0, :4]] == ["Barack Obama", "Paris", "Texas",
                                                               "York York"]


def test_iobes_and_person_labels_map_back_to_bio():
    iobes = ["O", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
    server = _fake_server(iobes, {"new": "B-LOC", "york": "E-LOC", "paris": "S-LOC"})
    out = server(tf.constant(["new york paris paris"]))
    assert [t.decode() for t in out["tags"].numpy()[0]] == ["B-LOC", "I-LOC", "B-LOC", "B-LOC"]
    assert ner_model.to_bio([1, 3, 4, 4], {"labels": iobes}) == ["B-LOC", "I-LOC", "B-LOC", "B-LOC"]
    person = _fake_server(["O", "PER"], {"peter": "PER", "blackburn": "PER"}, target="person")
    out = person(tf.constant(["Peter Blackburn met Peter"]))
    assert [t.decode() for t in out["tags"].numpy()[0]] == ["B-PER", "I-PER", "O", "B-PER"]
    assert [t.decode() for t in out["entity_texts"].numpy()[0]] == ["Peter Blackburn", "Peter"]


def test_tokens_signature_input_matches_raw_text():
    server = _fake_server(["O", "B-PER", "I-PER"], {"ada": "B-PER", "lovelace": "I-PER"})
    raw = server(tf.constant(["Ada Lovelace wrote ."]))
    pre = server.tag(tf.constant([["Ada", "Lovelace", "wrote", "."]]))
    for key in raw:
        assert (raw[key].numpy() == pre[key].numpy()).all(), key
    (spec,) = server.endpoints()["tokens"].inputs
    assert spec.shape.as_list() == [None, None] and spec.name == "tokens"


def test_person_preset_trains_and_reports_person_entities():
    from pipelines.ner import data

    config = dataclasses.replace(PRESETS["person"], max_examples=120, word_dim=8, char_dim=4,
                                 char_features=4, units=4, epochs=1)
    made = data.make_datasets(config)
    assert made.meta["labels"] == ["O", "PER"]
    model = ner_model.build_model(config, made.meta)
    assert model.output_shape[-1] == 1  # one sigmoid per step
    model.fit(made.train, epochs=1, verbose=0)
    report = ner_model.evaluate(model, made.valid, config, made.meta)
    assert set(report["per_type"]) <= {"PER"} and report["overall"]["support"] == sum(
        m["support"] for m in report["per_type"].values())
