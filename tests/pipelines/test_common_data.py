"""pipelines.common.data: split, subset, vocabulary, bucketing, seeded word dropout."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from pipelines.common import data
from pipelines.common.textio import DataError


def test_split_is_deterministic_disjoint_and_complete():
    a = data.split_indices(1000, seed=3, valid_fraction=0.1, test_fraction=0.2)
    b = data.split_indices(1000, seed=3, valid_fraction=0.1, test_fraction=0.2)
    assert list(a) == ["train", "valid", "test"]
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert [len(a[k]) for k in ("train", "valid", "test")] == [700, 100, 200]
    np.testing.assert_array_equal(np.sort(np.concatenate(list(a.values()))), np.arange(1000))
    other = data.split_indices(1000, seed=4, valid_fraction=0.1, test_fraction=0.2)
    assert not np.array_equal(other["valid"], a["valid"])
    # The cut of one seeded permutation: test first, then valid, then train.
    order = np.random.RandomState(3).permutation(1000)
    np.testing.assert_array_equal(a["test"], order[:200])
    np.testing.assert_array_equal(a["valid"], order[200:300])


def test_split_without_test_and_with_one_validation_row_at_least():
    split = data.split_indices(5, seed=0, valid_fraction=0.01, test_fraction=0.0,
                               order=("valid", "train", "test"))
    assert list(split) == ["valid", "train"]
    assert len(split["valid"]) == 1 and len(split["train"]) == 4


def test_subset_is_proportional_seeded_and_keeps_row_order():
    splits = {"train": list(range(800)), "valid": list(range(1000, 1100)),
              "test": list(range(2000, 2100))}
    take = lambda rows, idx: [rows[i] for i in idx]  # noqa: E731
    small = data.subset(splits, 100, seed=1, take=take)
    assert {k: len(v) for k, v in small.items()} == {"train": 80, "valid": 10, "test": 10}
    assert all(v == sorted(v) and set(v) <= set(splits[k]) for k, v in small.items())
    assert data.subset(splits, 100, seed=1, take=take) == small
    assert data.subset(splits, 100, seed=2, take=take) != small
    # One stream, split after split: the first split's draw is a plain permutation.
    expected = sorted(np.random.RandomState(1).permutation(800)[:80].tolist())
    assert small["train"] == expected
    tiny = data.subset({"train": [1, 2, 3], "valid": [4]}, 1, seed=0, take=take)
    assert len(tiny["train"]) == 1 and len(tiny["valid"]) == 1  # at least one row each


@dataclasses.dataclass(frozen=True)
class _Config:
    data: str = "whole"
    train_file: str = None
    valid_file: str = None
    test_file: str = None
    valid_fraction: float = 0.2
    test_fraction: float = 0.2
    max_examples: int = 0
    seed: int = 0


def _load(config, whole=tuple(range(10)), tfds=None):
    return data.load_splits(
        config, read_file=lambda path: (path,) * 3, read_whole=lambda spec: (list(whole),),
        read_tfds=tfds, size=lambda s: len(s[0]))


def test_load_splits_sources():
    split = _load(_Config())
    assert {k: len(v[0]) for k, v in split.items()} == {"train": 6, "valid": 2, "test": 2}
    files = _load(_Config(train_file="a", valid_file="b", test_file="c"))
    assert files == {"train": ("a",) * 3, "valid": ("b",) * 3, "test": ("c",) * 3}
    raw = {"train": (list(range(10)),), "test": ([7],)}
    tfds = _load(_Config(data="tfds:x"), tfds=lambda name: raw)
    assert {k: len(v[0]) for k, v in tfds.items()} == {"train": 8, "valid": 2, "test": 1}
    with pytest.raises(DataError, match=r"^a: --train needs --valid too"):
        _load(_Config(train_file="a"))
    with pytest.raises(DataError, match=r"^whole: no training examples$"):
        _load(_Config(valid_fraction=0.5, test_fraction=0.5), whole=[1, 2])


def test_vocabulary_order_ties_min_count_and_size():
    counts = {"b": 3, "a": 3, "c": 5, "d": 1, "[UNK]": 9, "": 4}
    assert data.build_vocabulary(counts, 10) == ["", "[UNK]", "c", "a", "b", "d"]
    assert data.build_vocabulary(counts, 2) == ["", "[UNK]", "c", "a"]
    assert data.build_vocabulary(counts, 10, min_count=2) == ["", "[UNK]", "c", "a", "b"]
    assert data.build_vocabulary(counts, 0) == ["", "[UNK]"]
    assert data.build_vocabulary({"x": 1}, 5, reserved=("", "[UNK]", "<eos>")) == \
        ["", "[UNK]", "<eos>", "x"]


def test_bucket_boundaries_and_batches_group_lengths():
    assert data.bucket_boundaries(64) == [8, 16, 24, 32, 48]
    assert data.bucket_boundaries(200) == [8, 16, 24, 32, 48, 64, 96, 128]
    lengths = list(range(1, 41)) * 3
    ds = tf.data.Dataset.from_tensor_slices(lengths).map(lambda n: (tf.fill([n], 5), 0))
    out = data.batches(ds, lambda ids, y: tf.shape(ids)[0], count=len(lengths), batch_size=4,
                       max_length=40, seed=0)
    seen = []
    for ids, _ in out:
        real = (ids.numpy() > 0).sum(axis=1)
        assert ids.shape[1] == real.max()  # padded to the batch's longest
        # All lengths of a batch fall in one bucket [edge_k, edge_k+1).
        buckets = np.searchsorted([8, 16, 24, 32], real, side="right")
        assert len(set(buckets)) == 1
        seen += real.tolist()
    assert sorted(seen) == sorted(lengths)


def _id_batches(n_batches=20, width=50, seed=7):
    ids = np.random.RandomState(0).randint(0, 30, size=(n_batches, 8, width)).astype("int32")
    return ids, tf.data.Dataset.from_tensor_slices((ids, np.zeros((n_batches, 8), "int32")))


def _epoch(ds, key=None):
    return np.stack([(x if key is None else x[key]).numpy() for x, _ in ds])


def test_seeded_word_dropout_is_reproducible_redrawn_and_at_its_rate():
    ids, ds = _id_batches()
    tf.random.set_seed(None)
    dropped = data.word_dropout(ds, 0.3, seed=5)
    first, second = _epoch(dropped), _epoch(dropped)
    np.testing.assert_array_equal(_epoch(data.word_dropout(ds, 0.3, seed=5)), first)
    assert not np.array_equal(first, second)  # a new draw each epoch
    assert not np.array_equal(_epoch(data.word_dropout(ds, 0.3, seed=6)), first)
    words = ids > 1
    assert np.all(first[~words] == ids[~words])  # padding and [UNK] kept
    changed = first != ids
    assert np.all(first[changed] == data.UNK_ID)
    rate = changed[words].mean()  # about 6,900 words: the rate within 0.03
    assert abs(rate - 0.3) < 0.03, rate


def test_word_dropout_on_a_dict_of_inputs():
    ids, _ = _id_batches()
    chars = ids[..., None] + 100
    ds = tf.data.Dataset.from_tensor_slices(({"words": ids, "chars": chars}, ids))
    out = list(data.word_dropout(ds, 0.5, seed=1, key="words"))
    words = np.stack([x["words"].numpy() for x, _ in out])
    np.testing.assert_array_equal(np.stack([x["chars"].numpy() for x, _ in out]), chars)
    np.testing.assert_array_equal(np.stack([y.numpy() for _, y in out]), ids)
    assert 0.45 < (words[ids > 1] == 1).mean() < 0.55


def test_batches_apply_dropout_only_when_training():
    ds = tf.data.Dataset.from_tensor_slices((np.tile([5, 6, 7, 8], (64, 1)).astype("int32"),
                                             np.zeros(64, "int32")))
    kw = dict(count=64, batch_size=16, max_length=8, seed=0, dropout_rate=0.5)
    length = lambda ids, y: tf.shape(ids)[0]  # noqa: E731
    held_out = _epoch(data.batches(ds, length, **kw))
    assert (held_out > 1).all()
    trained = _epoch(data.batches(ds, length, training=True, **kw))
    assert 0.35 < (trained == 1).mean() < 0.65
