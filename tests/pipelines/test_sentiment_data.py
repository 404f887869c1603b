"""The sentiment tf.data chain and readers: formats, vocabulary, bucketing, errors."""

import dataclasses
import json

import numpy as np
import pytest

from pipelines.common.textio import DataError
from pipelines.sentiment import data
from pipelines.sentiment.config import PRESETS
from tests.conftest import assert_data_error

SMALL = PRESETS["small"]


def small(**changes):
    return dataclasses.replace(SMALL, **changes)


def write(path, text, mode="w"):
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return str(path)


def test_embedded_corpus_is_read_and_cleaned():
    texts, labels, _ = data.read_embedded()
    assert len(texts) > 38000
    assert set(labels) == {"negative", "neutral", "positive"}
    assert not any(ch in t for t in texts for ch in "ÕäóÎ\x8a\x97")
    assert data.clean_tweet("I donÕ¢_\x8aÎ_\x86¢t want it äóì@x: hi äó\x9d &amp; bye") == \
        "I don't want it \"@x: hi \" & bye"


def test_vocabulary_keeps_frequent_words_with_unk_and_a_size_limit():
    texts = ["good good good movie", "bad movie", "good film", "rare"]
    vocab = data.build_vocabulary(texts, small(min_count=2, vocab_size=4))
    assert vocab == ["", "[UNK]", "good", "movie"]
    vectorizer = data.make_vectorizer(vocab)
    ids = data.encode(vectorizer, ["Good movie rare", "", "good " * 100], 5).numpy()
    assert ids.shape == (3, 5)
    np.testing.assert_array_equal(ids[0], [2, 3, 1, 0, 0])  # rare -> [UNK], padded
    np.testing.assert_array_equal(ids[1], [0] * 5)  # empty: all padding
    np.testing.assert_array_equal(ids[2], [2] * 5)  # truncated to max_length


def test_standardize_splits_punctuation_urls_and_mentions():
    tokens = data.tokenize(["@bob Great!! see http://t.co/x :)"]).to_list()[0]
    assert [t.decode() for t in tokens] == ["xxuser", "great", "!", "!", "see", "xxurl", ":", ")"]


def test_batches_are_bucketed_by_length_and_padded_with_zero():
    texts = [("w " * n).strip() for n in range(1, 40)] * 4
    meta = {"vocabulary": ["", "[UNK]", "w"], "labels": ["a"]}
    ds = data.to_dataset(texts, np.zeros(len(texts), np.int32), meta, small(batch_size=8,
                         max_length=32, word_dropout=0.0), training=True)
    widths = []
    for ids, labels in ds:
        ids = ids.numpy()
        lengths = (ids > 0).sum(axis=1)
        widths.append(ids.shape[1])
        assert ids.shape[1] == lengths.max(), "padded beyond the longest in the batch"
        assert lengths.max() - lengths.min() <= 16, "bucketing failed to group lengths"
    assert max(widths) == 32 and min(widths) < 10


def test_word_dropout_is_seeded_by_the_config_and_redrawn_each_epoch():
    import tensorflow as tf

    texts = [" ".join(f"w{i % 7}" for i in range(n, n + 12)) for n in range(64)]
    meta = {"vocabulary": ["", "[UNK]"] + [f"w{i}" for i in range(7)], "labels": ["a"]}
    config = small(batch_size=64, max_length=32, word_dropout=0.5, seed=3)

    def build(config):
        tf.random.set_seed(None)  # as in a fresh process: no global seed set yet
        return data.to_dataset(texts, np.zeros(64, np.int32), meta, config, training=True)

    def epoch(ds):
        return np.concatenate([ids.numpy().ravel() for ids, _ in ds])

    ds = build(config)
    first, second = epoch(ds), epoch(ds)
    assert 0.35 < np.mean(first == 1) < 0.65  # about half the words became [UNK]
    assert not np.array_equal(first, second)  # a new draw each epoch
    np.testing.assert_array_equal(epoch(build(config)), first)  # the same run again
    assert not np.array_equal(epoch(build(dataclasses.replace(config, seed=4))), first)


@pytest.mark.parametrize("fmt", ["csv", "tsv", "jsonl", "sst"])
def test_user_formats_with_any_label_set(tmp_path, fmt):
    rows = [("loved it, truly", "5"), ("meh", "3"), ("awful", "1"), ("great fun", "4"),
            ("boring", "2")] * 6
    if fmt == "csv":
        text = "review,stars\n" + "".join(f'"{t}",{y}\n' for t, y in rows)
    elif fmt == "tsv":
        text = "review\tstars\n" + "".join(f"{t}\t{y}\n" for t, y in rows)
    elif fmt == "jsonl":
        text = "".join(json.dumps({"review": t, "stars": int(y)}) + "\n" for t, y in rows)
    else:
        text = "".join(f"{y} {t}\n" for t, y in rows)
    path = write(tmp_path / f"reviews.{fmt if fmt != 'sst' else 'txt'}", text)
    config = small(data=path, text_column="review", label_column="stars", max_examples=0,
                   min_count=1)
    datasets = data.make_datasets(config)
    assert datasets.meta["labels"] == ["1", "2", "3", "4", "5"]
    assert sum(datasets.sizes.values()) == 30
    assert datasets.sizes["test"] == 3 and datasets.sizes["valid"] == 3
    again = data.make_datasets(config)
    assert again.meta == datasets.meta, "the split and vocabulary must be deterministic"
    assert "loved" in datasets.meta["vocabulary"] or "great" in datasets.meta["vocabulary"]
    no_test = data.make_datasets(dataclasses.replace(config, test_fraction=0.0))
    assert no_test.test is None and "test" not in no_test.sizes  # the `sst` preset's split
    assert no_test.sizes["valid"] == 3 and no_test.sizes["train"] == 27


def test_train_valid_test_files(tmp_path):
    train = write(tmp_path / "train.tsv", "text\tlabel\n" + "good\tpos\nbad\tneg\n" * 5)
    valid = write(tmp_path / "valid.tsv", "text\tlabel\ngood\tpos\n")
    config = small(train_file=train, valid_file=valid, max_examples=0)
    datasets = data.make_datasets(config)
    assert datasets.sizes == {"train": 10, "valid": 1}
    assert datasets.test is None


@pytest.mark.parametrize(
    "content, match",
    [
        (None, r"missing\.csv: no such file"),
        ("", r"empty\.csv: the file is empty"),
        ("sentence,label\nhi,pos\n", r"empty\.csv:1: missing column\(s\) \['text'\]"),
        (b"text,label\nok,pos\nbad \xff\xfe,neg\n", r"empty\.csv:3: column 5: bytes .* not valid utf-8"),
        ("text,label\nok,pos\nlonely\n", r"empty\.csv:3: field 'label'"),
    ],
)
def test_bad_files_name_file_line_and_field(tmp_path, content, match):
    name = "missing.csv" if content is None else "empty.csv"
    path = tmp_path / name
    if content is not None:
        write(path, content, "wb" if isinstance(content, bytes) else "w")
    with pytest.raises(DataError, match=match):
        data.make_datasets(small(data=str(path), max_examples=0))


def test_jsonl_errors_name_the_line(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"text": "a", "label": "x"}\n{"text": "b"}\n')
    with pytest.raises(DataError, match=r"d\.jsonl:2: field 'label': missing"):
        data.read_file(path, SMALL)


def test_unseen_label_at_evaluation_names_the_line(tmp_path):
    meta = {"vocabulary": ["", "[UNK]", "good"], "labels": ["neg", "pos"]}
    path = write(tmp_path / "eval.csv", "text,label\ngood,pos\nhmm,neutral\n")
    with pytest.raises(DataError, match=r"eval\.csv:3: field 'label': label 'neutral' was not seen"):
        data.read_split(SMALL, meta, path)


def test_tfds_dataset_through_tfds_load(tmp_path):
    import tensorflow_datasets as tfds

    config = small(data="tfds:imdb_reviews", tfds_data_dir=str(tmp_path), max_examples=0,
                   min_count=1)
    with tfds.testing.mock_data(num_examples=30):
        datasets = data.make_datasets(config)
    assert datasets.meta["labels"] == ["neg", "pos"]  # the ClassLabel names of imdb_reviews
    assert datasets.sizes == {"train": 27, "valid": 3, "test": 30}
    ids, labels = next(iter(datasets.train))
    assert ids.dtype.name == "int32" and set(labels.numpy()) <= {0, 1}


def test_embedded_lines_stay_aligned_when_a_text_cleans_to_nothing(monkeypatch):
    texts, _, lines = data.read_embedded()
    monkeypatch.setattr(data, "clean_tweet", lambda t: "" if t == raw_second else t.strip())
    raw_second = next(r.fields["text"] for r in data.read_table(
        data.embedded_path(), ("text",), fmt="csv", encoding="latin-1")[1:2])
    _, _, kept_lines = data.read_embedded()
    assert len(kept_lines) == len(lines) - 1 and lines[1] not in kept_lines
    assert kept_lines[1:5] == lines[2:6]


@pytest.mark.slow  # about 50 s; the default run must stay under 15 min (.ci/run runs it)
def test_embedded_confidence_filters_and_weights_training_rows_only():
    confidence = data.read_embedded_confidence()
    assert sum(v is None for v in confidence.values()) == 5460
    base = small(max_examples=2000)
    plain = data.make_datasets(base)
    filtered = data.make_datasets(dataclasses.replace(base, min_confidence=0.7,
                                                      missing_confidence=0.0))
    assert filtered.sizes["train"] < plain.sizes["train"]
    assert filtered.sizes["valid"] == plain.sizes["valid"]  # held-out splits untouched
    assert filtered.sizes["test"] == plain.sizes["test"]
    splits = data.load_splits(base)
    kept = [c for c in (confidence[line] for line in splits["train"][2])
            if c is not None and c >= 0.7]
    assert filtered.sizes["train"] == len(kept)

    weighted = data.make_datasets(dataclasses.replace(base, confidence_weight=True,
                                                      missing_confidence=0.5))
    assert weighted.sizes == plain.sizes
    weights = np.concatenate([w.numpy() for _, _, w in weighted.train])
    expected = [0.5 if confidence[line] is None else confidence[line]
                for line in splits["train"][2]]
    np.testing.assert_allclose(np.sort(weights), np.sort(expected), rtol=1e-6)
    assert len(next(iter(weighted.valid))) == 2  # no weights outside training

def test_confidence_options_are_ignored_for_other_data(tmp_path):
    path = write(tmp_path / "d.csv", "text,label\n" + "good,pos\nbad,neg\n" * 10)
    config = small(data=path, max_examples=0, min_count=1)
    plain = data.make_datasets(config)
    other = data.make_datasets(dataclasses.replace(config, min_confidence=0.9,
                                                   confidence_weight=True))
    assert other.sizes == plain.sizes
    assert len(next(iter(other.train))) == 2  # no sample weights


@pytest.mark.parametrize("name, content, message", [
    ("missing.csv", None, "{path}: no such file"),
    ("empty.csv", b"", "{path}: the file is empty"),
    ("bad.csv", b"text,label\nok,pos\nbad \xff\xfe,neg\n",
     "{path}:3: column 5: bytes b'\\xff' are not valid utf-8 (convert the file to UTF-8)"),
    ("bad.txt", b"\xff\xfe", "{path}:1: column 1: bytes b'\\xff' are not valid utf-8 "
                             "(convert the file to UTF-8)"),
])
def test_data_errors_are_one_cli_line_and_exit_2(tmp_path, capsys, name, content, message):
    from pipelines.sentiment import TASK

    assert_data_error(TASK, small(max_examples=0), tmp_path, capsys, name, content, message)
