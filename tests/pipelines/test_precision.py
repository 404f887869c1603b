"""``--set precision=mixed_bfloat16`` on every task: the model built under the policy
computes in bfloat16 where Keras does, its outputs (heads, CRF) stay float32, and with
the float32 run's weights it agrees with it; a whole run trains, exports and serves."""

import dataclasses
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from pipelines.common import export, train
from tests.pipelines.conftest import run_cli
from tests.pipelines.test_contract import NAMES

FAST = {"char_lm"}  # the others: slow (their data steps take 10 s to minutes)


@pytest.mark.parametrize("name", [n if n in FAST else pytest.param(n, marks=pytest.mark.slow)
                                  for n in NAMES])
def test_the_mixed_model_agrees_with_float32_and_outputs_float32(name, small_run, tmp_path):
    run = small_run(name)
    task = run["task"]
    model, config, meta = train.load_trained(run["workdir"], type(task.presets["small"]), task)
    mixed = train.build(task, dataclasses.replace(config, precision="mixed_bfloat16"), meta)
    assert keras.config.dtype_policy().name == "float32", "the global policy was left changed"
    assert any(layer.compute_dtype == "bfloat16" for layer in mixed._flatten_layers())
    mixed.set_weights(model.get_weights())
    inputs = next(iter(task.make_datasets(config, meta).valid))[0]
    want, got = tf.nest.flatten(model(inputs)), tf.nest.flatten(mixed(inputs))
    for w, g in zip(want, got):
        assert g.dtype == w.dtype, (g.dtype, w.dtype)
        if w.dtype.is_floating:  # probabilities, logits, emissions: bfloat16 rounding
            scale = max(1.0, float(tf.reduce_max(tf.abs(w))))
            np.testing.assert_allclose(g.numpy(), w.numpy(), atol=0.05 * scale)
    # Loaded in a process whose global policy is float32, every layer keeps its own.
    mixed.save(str(tmp_path / "mixed.keras"))
    loaded = keras.models.load_model(str(tmp_path / "mixed.keras"))
    for g, again in zip(got, tf.nest.flatten(loaded(inputs))):
        np.testing.assert_array_equal(again.numpy(), g.numpy())


@pytest.mark.slow  # about 14 s; the default run must stay under 15 min (.ci/run runs it)
def test_a_mixed_precision_run_trains_exports_and_serves_float32(tmp_path):
    from pipelines.char_lm import TASK

    workdir, export_dir = str(tmp_path / "work"), str(tmp_path / "saved_models")
    assert run_cli(TASK, "train", "--preset", "small", "--set", "precision=mixed_bfloat16",
                   "--workdir", workdir, "-q") == 0
    model, config, _ = train.load_trained(workdir, type(TASK.presets["small"]), TASK)
    assert config.precision == "mixed_bfloat16"
    assert {layer.dtype_policy.name for layer in model.layers} >= {"mixed_bfloat16"}
    assert run_cli(TASK, "export", "--workdir", workdir, "--export-dir", export_dir, "-q") == 0
    version = os.path.join(export_dir, "char_lm", "1")
    out = export.load_signature(version, "score")(texts=tf.constant(["to be or not", ""]))
    floats = [v for v in out.values() if v.dtype.is_floating]
    assert floats and all(v.dtype == tf.float32 for v in floats)
    assert all(np.isfinite(v.numpy()).all() for v in floats)
