"""NER data: CoNLL reading and its errors, the embedded tweets, TFDS conll2003, the tf.data chain."""

import dataclasses
import re

import numpy as np
import pytest

from pipelines.common.textio import DataError
from pipelines.ner import data
from pipelines.ner.config import PRESETS
from tests.conftest import assert_data_error

SMALL = PRESETS["small"]

CONLL = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC
call NN I-NP O

Peter NNP B-NP B-PER
Blackburn NNP I-NP I-PER


BRUSSELS NNP B-NP B-LOC
"""


def write(tmp_path, text, name="f.conll"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_conll_sentences_docstart_and_tag_column():
    corpus = data.parse_conll(CONLL, "f")
    assert corpus.tokens == [["EU", "rejects", "German", "call"], ["Peter", "Blackburn"],
                             ["BRUSSELS"]]
    assert corpus.tags[1] == ["B-PER", "I-PER"]
    assert corpus.lines == [3, 8, 12]
    chunks = data.parse_conll(CONLL, "f", tag_column=2, on_error="repair")
    assert chunks.tags[0] == ["B-NP", "B-VP", "B-NP", "I-NP"]


def test_iobes_input_is_read_as_bio():
    text = "John S-PER\nvisited O\nNew B-LOC\nYork E-LOC\n"
    assert data.parse_conll(text, "f").tags == [["B-PER", "O", "B-LOC", "I-LOC"]]
    with pytest.raises(DataError, match=r"f:1: tag 'S-PER' is not O or B-/I-<type>"):
        data.parse_conll(text, "f", scheme="bio")


@pytest.mark.parametrize("text, where, what", [
    ("a O\nb c O\n", "f:2:", "expected 2 columns"),
    ("a O\nb PERSON\n", "f:2:", "tag 'PERSON' is not O"),
    ("a O\nb I-PER\n", "f:2:", "continues no entity"),
    ("a B-LOC\nb I-PER\n", "f:2:", "continues no entity"),
    ("\nb I-PER\n", "f:2:", "continues no entity"),
])
def test_malformed_lines_are_reported_with_file_and_line(text, where, what):
    with pytest.raises(DataError) as e:
        data.parse_conll(text, "f")
    assert str(e.value).startswith(where) and what in str(e.value)
    assert "on_error=repair" in str(e.value)


def test_repair_mode_fixes_and_lists_the_problems():
    text = "a O\nb c O\nJohn I-PER\nSmith I-PER\nat O\nAcme ORG\n"
    corpus = data.parse_conll(text, "f", on_error="repair")
    assert corpus.tokens == [["a", "John", "Smith", "at", "Acme"]]
    assert corpus.tags == [["O", "B-PER", "I-PER", "O", "B-ORG"]]
    assert [r.split(": ")[0] for r in corpus.repairs] == ["f:2", "f:6", "f:3", "f:6"]


def test_empty_file_and_missing_tag_column(tmp_path):
    with pytest.raises(DataError, match="empty"):
        data.read_conll(write(tmp_path, "\n\n"), SMALL)
    with pytest.raises(DataError, match="tag_column=3"):
        data.parse_conll("a O\n", "f", tag_column=3)
    with pytest.raises(DataError, match="no sentences"):
        data.parse_conll("-DOCSTART- O\n\n", "f")


def test_embedded_tweets():
    corpus = data.read_embedded(SMALL)
    assert len(corpus) == 2394
    assert sum(len(t) for t in corpus.tokens) == 46469
    types = {t[2:] for tags in corpus.tags for t in tags if t != "O"}
    assert len(types) == 10 and {"person", "geo-loc", "company"} <= types


def test_dataset_shapes_padding_and_long_sentences(tmp_path):
    long = "".join(f"w{i} X X O\n" for i in range(50)) + "Paris X X B-LOC\n"
    train = write(tmp_path, CONLL + "\n" + long, "train.txt")
    valid = write(tmp_path, "Peter B-PER\nvisited O\n", "valid.txt")
    config = dataclasses.replace(SMALL, max_examples=0, train_file=train, valid_file=valid,
                                 max_length=16, min_count=1, batch_size=64)
    made = data.make_datasets(config)
    assert made.meta["labels"] == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG",
                                   "B-PER", "I-PER"]
    lengths = []
    for x, y in made.train:
        assert x["words"].shape == y.shape and x["chars"].shape[:2] == y.shape
        y = y.numpy()
        real = y >= 0
        assert (real == (x["words"].numpy() > 0)).all()  # -1 exactly at word padding
        assert (x["chars"].numpy()[~real] == 0).all()
        lengths += real.sum(axis=1).tolist()
    # 3 short sentences and the 51-token one cut into 16 + 16 + 16 + 3
    assert sorted(lengths) == [1, 2, 3, 4, 16, 16, 16]
    x, y = next(iter(made.valid))
    assert y.numpy().tolist() == [[7, 0]]
    assert x["words"].numpy()[0, 0] == made.meta["vocabulary"].index("peter")


def test_unseen_tag_in_valid_is_an_error(tmp_path):
    train = write(tmp_path, CONLL, "train.txt")
    valid = write(tmp_path, "x O\n\nAcme B-COMPANY\n", "valid.txt")
    config = dataclasses.replace(SMALL, max_examples=0, train_file=train, valid_file=valid)
    with pytest.raises(DataError, match=r"valid.txt:3: tag 'B-COMPANY' was not seen"):
        data.make_datasets(config)


def test_featurize_words_digits_unknowns_and_chars():
    meta = {"vocabulary": ["", "[UNK]", "paris", "0000"], "characters": ["", "[UNK]", "P", "a"]}
    import tensorflow as tf

    out = data.featurize(tf.constant([["Paris", "1996", "zzz", ""]]), data.make_lookups(meta), 3)
    assert out["words"].numpy().tolist() == [[2, 3, 1, 0]]
    assert out["chars"].numpy()[0].tolist() == [[2, 3, 1], [1, 1, 1], [1, 1, 1], [0, 0, 0]]


def test_tokenizer_splits_punctuation_keeps_urls_and_pads_empty():
    import tensorflow as tf

    tokens = data.tokenize(tf.constant([
        "Obama's visit to the U.S. (again), see http://t.co/x.y!", ""]), 100).numpy()
    words = [t.decode() for t in tokens[0] if t]
    assert words == ["Obama", "'s", "visit", "to", "the", "U.S", ".", "(", "again", ")", ",",
                     "see", "http://t.co/x.y", "!"]
    assert tokens.shape[0] == 2 and all(t == b"" for t in tokens[1])


def test_tfds_conll2003_through_tfds_load(tmp_path):
    import tensorflow_datasets as tfds
    config = dataclasses.replace(SMALL, data="tfds:conll2003", max_examples=0,
                                 tfds_data_dir=str(tmp_path))
    with tfds.testing.mock_data(num_examples=12):
        # Mock examples draw tokens and tags of independent lengths: a real data error.
        with pytest.raises(DataError, match=r"tfds:conll2003/train: example 0: \d+ tokens but"):
            data.make_datasets(config)
        made = data.make_datasets(dataclasses.replace(config, on_error="repair"))
    assert made.sizes == {"train": 12, "valid": 12, "test": 12}
    assert made.meta["repairs_total"] >= 1
    changed = int(re.fullmatch(r"on_error=repair changed (\d+) line\(s\):", made.notes[0])[1])
    assert changed >= made.meta["repairs_total"]  # the notes count every split's repairs
    assert made.notes[1].startswith("  tfds:conll2003/train: example 0: ")
    names = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    assert set(made.meta["labels"]) <= set(names)
    x, y = next(iter(made.train))
    assert x["words"].shape == y.shape


def test_person_target_is_binary():
    config = dataclasses.replace(SMALL, target="person")
    corpus = data.parse_conll("Peter B-PER\nBlackburn I-PER\nin O\nParis B-LOC\n", "f")
    meta = data.build_meta(corpus, config)
    assert meta["labels"] == ["O", "PER"]
    assert data.label_ids(corpus, meta, config, "f") == [[1, 1, 0, 0]]


@pytest.mark.parametrize("name, content, message", [
    ("missing.conll", None, "{path}: no such file"),
    ("empty.conll", b"", "{path}: the file is empty"),
    ("blank.conll", b"\n \n\n", "{path}: the file is empty"),
    ("bad.conll", b"EU B-ORG\nrejects O\nM\xfcnchen B-LOC\n",
     "{path}:3: column 2: bytes b'\\xfc' are not valid utf-8 (convert the file to UTF-8)"),
    ("docstart.conll", b"-DOCSTART- O\n\n",
     "{path}: no sentences (expected token lines, blank lines between sentences)"),
])
def test_data_errors_are_one_cli_line_and_exit_2(tmp_path, capsys, name, content, message):
    from pipelines.ner import TASK

    assert_data_error(TASK, dataclasses.replace(SMALL, max_examples=0), tmp_path, capsys,
                      name, content, message)


def test_word_dropout_is_seeded_and_only_on_training_batches(tmp_path):
    import tensorflow as tf

    config = dataclasses.replace(SMALL, word_dropout=0.3, seed=2)

    def train_words(config):
        tf.random.set_seed(None)  # as in a fresh process
        made = data.make_datasets(config)
        return [x["words"].numpy() for x, _ in made.train], made

    first, made = train_words(config)
    again, _ = train_words(config)
    assert len(first) == len(again) and all(np.array_equal(a, b) for a, b in zip(first, again))
    plain, _ = train_words(dataclasses.replace(config, word_dropout=0.0))
    words = np.concatenate([w.ravel() for w in plain])
    dropped = np.concatenate([w.ravel() for w in first])
    real = words > 1
    assert np.all(dropped[~real] == words[~real]) and np.all(dropped[dropped != words] == 1)
    assert 0.25 < np.mean(dropped[real] == 1) < 0.35
