"""zoo.builders.sequence_classifier: masking, pooling, serialization."""

import keras
import numpy as np
import pytest

from zoo.builders.sequence_classifier import HashedNgrams, MaskedPooling, build_sequence_classifier


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
def test_padding_does_not_change_predictions(pooling):
    keras.utils.set_random_seed(1)
    model = build_sequence_classifier(50, 3, embedding_dim=8, cell="gru", units=6,
                                      bidirectional=True, pooling=pooling)
    ids = np.array([[5, 7, 9]], dtype="int32")
    padded = np.array([[5, 7, 9, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(model(ids), model(padded), atol=1e-6)
    empty = model(np.zeros((2, 4), dtype="int32"))
    assert np.all(np.isfinite(empty)) and np.allclose(np.sum(empty, axis=1), 1.0)


def test_masked_pooling_reference():
    x = np.array([[[1.0, -2.0], [3.0, -1.0], [100.0, 100.0]]], dtype="float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(MaskedPooling("max")(x, mask=mask), [[3.0, -1.0]])
    np.testing.assert_allclose(MaskedPooling("mean")(x, mask=mask), [[2.0, -1.5]])
    np.testing.assert_allclose(MaskedPooling("max")(x, mask=np.zeros((1, 3), bool)), [[0.0, 0.0]])
    with pytest.raises(ValueError, match="mode='sum'"):
        MaskedPooling("sum")


def test_keras_file_round_trip(tmp_path):
    model = build_sequence_classifier(30, 2, embedding_dim=4, cell="peephole_lstm", units=3,
                                      num_layers=2, dropout=0.1, pooling="mean")
    path = str(tmp_path / "m.keras")
    model.save(path)
    ids = np.array([[3, 4, 5, 0]], dtype="int32")
    np.testing.assert_allclose(keras.models.load_model(path)(ids), model(ids), atol=1e-6)


def test_mean_max_pooling_concatenates_mean_then_max():
    x = np.array([[[1.0, -2.0], [3.0, -1.0], [100.0, 100.0]]], dtype="float32")
    mask = np.array([[True, True, False]])
    np.testing.assert_allclose(MaskedPooling("mean_max")(x, mask=mask), [[2.0, -1.5, 3.0, -1.0]])
    np.testing.assert_allclose(MaskedPooling("mean_max")(x, mask=np.zeros((1, 3), bool)),
                               [[0.0, 0.0, 0.0, 0.0]])
    model = build_sequence_classifier(20, 3, embedding_dim=4, cell="gru", units=5,
                                      pooling="mean_max")
    assert model.get_layer("pooling").output.shape == (None, 20)  # 2 x bidirectional 5


def test_hashed_ngrams_reference():
    vocab, buckets = 10, 7
    ids = np.array([[3, 4, 5, 0], [2, 0, 0, 0]], dtype="int32")
    out = HashedNgrams(vocab, buckets, n_max=3)(ids).numpy()
    assert out.shape == (2, 12)
    np.testing.assert_array_equal(out[:, :4], ids)  # words keep their ids

    def code(*ws):
        c = 0
        for w in ws:
            c = (c * 1000003 + w) % 2147483647
        return vocab + 1 + c % buckets

    np.testing.assert_array_equal(out[0, 4:8], [code(3, 4), code(4, 5), 0, 0])
    np.testing.assert_array_equal(out[0, 8:], [code(3, 4, 5), 0, 0, 0])
    np.testing.assert_array_equal(out[1, 4:], [0] * 8)  # no n-gram in a one-word text
    assert out.min() >= 0 and out.max() <= vocab + buckets


@pytest.mark.parametrize("pooling", ["max", "mean_max"])
def test_ngram_bag_padding_and_round_trip(tmp_path, pooling):
    keras.utils.set_random_seed(2)
    model = build_sequence_classifier(50, 3, embedding_dim=8, cell="gru", units=6,
                                      pooling=pooling, ngram_buckets=100, ngram_dim=5)
    assert model.get_layer("head").input.shape == (None, 12 * (2 if pooling == "mean_max" else 1) + 5)
    ids = np.array([[5, 7, 9]], dtype="int32")
    padded = np.array([[5, 7, 9, 0, 0, 0]], dtype="int32")
    np.testing.assert_allclose(model(ids), model(padded), atol=1e-6)
    swapped = np.array([[7, 5, 9]], dtype="int32")  # same words, other bigrams
    bag = keras.Model(model.input, model.get_layer("ngram_pooling").output)
    assert not np.allclose(bag(ids), bag(swapped))
    empty = model(np.zeros((2, 4), dtype="int32"))
    assert np.all(np.isfinite(empty))
    path = str(tmp_path / "m.keras")
    model.save(path)
    np.testing.assert_allclose(keras.models.load_model(path)(padded), model(padded), atol=1e-6)


def test_label_smoothing_loss_reference():
    from pipelines.sentiment.model import SmoothedSparseCrossentropy

    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
    y = np.array([0, 2])
    target = np.full((2, 3), 0.1 / 3) + 0.9 * np.eye(3)[y]
    expected = np.mean(-np.sum(target * np.log(p), axis=1))
    np.testing.assert_allclose(float(SmoothedSparseCrossentropy(0.1)(y, p)), expected, rtol=1e-5)
    plain = float(keras.losses.SparseCategoricalCrossentropy()(y, p))
    np.testing.assert_allclose(float(SmoothedSparseCrossentropy(0.0)(y, p)), plain, rtol=1e-5)


def test_sentiment_lr_decay_per_epoch():
    import dataclasses

    from pipelines.sentiment.config import PRESETS
    from pipelines.sentiment.model import build_model

    meta = {"vocabulary": ["", "[UNK]", "a", "b"], "labels": ["neg", "pos"],
            "train_examples": 640}
    config = dataclasses.replace(PRESETS["small"], learning_rate=1e-2, lr_decay=0.5,
                                 batch_size=64)
    lr = build_model(config, meta).optimizer._learning_rate  # the schedule: 10 steps an epoch
    np.testing.assert_allclose([float(lr(0)), float(lr(10)), float(lr(20))], [1e-2, 5e-3, 2.5e-3],
                               rtol=1e-5)
    constant = build_model(dataclasses.replace(config, lr_decay=1.0), meta).optimizer
    np.testing.assert_allclose(float(constant.learning_rate), 1e-2, rtol=1e-6)
