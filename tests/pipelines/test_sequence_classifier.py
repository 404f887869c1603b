"""zoo.builders.sequence_classifier: masking, pooling, serialization."""

import keras
import numpy as np
import pytest

from zoo.builders.sequence_classifier import MaskedPooling, build_sequence_classifier


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
