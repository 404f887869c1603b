"""Config round trips, Bidirectional construction, .keras files and SavedModel export."""

import json

import keras
import numpy as np
import pytest

import zoo
from pipelines.common import serving_check
from tests.zoo.conftest import make_cell

D, U = 3, 4


def test_cell_config_round_trip(cell_case):
    name, kwargs = cell_case
    cell = zoo.cells.get(name, U, **kwargs)
    config = cell.get_config()
    clone = type(cell).from_config(config)
    assert clone.get_config() == config
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(cell))
    assert type(restored) is type(cell) and restored.get_config() == config


def test_layer_config_round_trip_keeps_the_cell(cell_case):
    name, kwargs = cell_case
    layer = zoo.layers.Recurrent(
        zoo.cells.get(name, U, **kwargs), return_sequences=True, go_backwards=True
    )
    clone = zoo.layers.Recurrent.from_config(json.loads(json.dumps(layer.get_config())))
    assert clone.get_config() == layer.get_config()
    assert type(clone.cell) is type(layer.cell)


def test_bidirectional_builds_backward_copy_from_config(cell_case):
    name, kwargs = cell_case
    bidi = keras.layers.Bidirectional(
        zoo.layers.Recurrent(zoo.cells.get(name, U, **kwargs), return_sequences=True)
    )
    assert bidi.backward_layer.go_backwards and not bidi.forward_layer.go_backwards
    assert bidi.backward_layer.cell.get_config()["units"] == U
    out = bidi(np.zeros((2, 5, D), "float32"))
    assert out.shape == (2, 5, 2 * U)
    # keras.layers.RNN around a zoo cell works too.
    rnn_bidi = keras.layers.Bidirectional(keras.layers.RNN(zoo.cells.get(name, U, **kwargs)))
    assert rnn_bidi(np.zeros((2, 5, D), "float32")).shape == (2, 2 * U)


def small_model(name, kwargs):
    """Embedding (masked) -> bidirectional zoo layer -> deep stack -> softmax head."""
    inputs = keras.Input((None,), dtype="int32", name="tokens")
    h = keras.layers.Embedding(20, D, mask_zero=True)(inputs)
    h = keras.layers.Bidirectional(
        zoo.layers.Recurrent(zoo.cells.get(name, U, **kwargs), return_sequences=True)
    )(h)
    h = zoo.layers.DeepRNN(name, U, num_layers=2, dropout=0.1, cell_kwargs=kwargs)(h)
    return keras.Model(inputs, zoo.layers.OutputHead(3)(h))


TOKENS = np.array([[3, 5, 7, 2, 0, 0], [4, 4, 9, 1, 8, 6]], dtype="int32")


def test_keras_file_round_trip_gives_identical_outputs(cell_case, tmp_path):
    name, kwargs = cell_case
    model = small_model(name, kwargs)
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.saving.load_model(path)
    np.testing.assert_array_equal(np.asarray(restored(TOKENS)), np.asarray(model(TOKENS)))


@pytest.mark.parametrize("case", [("lstm", {}), ("peephole_lstm", {"output_peephole": "current"})])
def test_savedmodel_export_runs_without_the_project(case, tmp_path):
    model = small_model(*case)
    export_dir = tmp_path / "export"
    model.export(str(export_dir), verbose=False)
    served = serving_check.run_export(export_dir, TOKENS.tolist(), input_name="tokens")
    assert served["blocked"] == {"zoo": True, "pipelines": True} and not served["modules"]
    expected = np.asarray(model(TOKENS))
    for path in ("session", "eager"):
        (outputs,) = served[path].values()
        np.testing.assert_allclose(np.array(outputs), expected, rtol=1e-6, atol=1e-7)


def test_a_loaded_model_with_many_bidirectional_stacks_gets_its_own_layers(tmp_path):
    """Keras' load_model remembers serialized objects by id(); Bidirectional serializes
    the layer it wraps, so a wrapped layer freed after one DeepRNN and its address taken
    by the next one's came back as the first one's layer (a ValueError, or a cell in
    place of a layer) when one model held several (an ensemble's members)."""
    from keras.src.saving.serialization_lib import ObjectSharingScope

    with ObjectSharingScope():  # the scope load_model opens
        stacks = [zoo.layers.DeepRNN("lstm", 4, bidirectional=True) for _ in range(12)]
    backward = {id(s.recurrent_layers[0].backward_layer) for s in stacks}
    assert len(backward) == len(stacks)
    assert all(s.recurrent_layers[0].backward_layer.go_backwards for s in stacks)

    inputs = keras.Input((None, 3))
    outputs = [zoo.layers.DeepRNN(cell, 4, bidirectional=True, name=f"stack_{i}")(inputs)
               for i, cell in enumerate(["lstm", "gru", "lstm", "rnn", "lstm", "gru"])]
    model = keras.Model(inputs, keras.layers.Concatenate()(outputs))
    path = str(tmp_path / "stacks.keras")
    model.save(path)
    x = np.random.default_rng(0).normal(size=(2, 5, 3)).astype("float32")
    np.testing.assert_allclose(keras.models.load_model(path).predict_on_batch(x),
                               model.predict_on_batch(x), rtol=1e-6, atol=1e-6)
