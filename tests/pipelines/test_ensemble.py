"""``ensemble`` > 1: members trained one after another, averaged, exported, resumable."""

import dataclasses
import os

import keras
import numpy as np
import pytest

from pipelines.common import config as config_lib
from pipelines.common import export, train
from pipelines.sentiment import TASK
from pipelines.sentiment.config import SentimentConfig
from tests.pipelines.conftest import run_cli

SMALL = ["--preset", "small", "--set", "max_examples=300", "--set", "epochs=1",
         "--set", "ensemble=2", "-q"]


@pytest.mark.slow  # about 90 s; .ci/run runs it in its second step
def test_ensemble_averages_its_members_and_exports(tmp_path):
    workdir, export_dir = str(tmp_path / "work"), str(tmp_path / "saved_models")
    assert run_cli(TASK, *SMALL, "--workdir", workdir, "--export-dir", export_dir) == 0
    assert not os.path.exists(os.path.join(workdir, "ensemble.json")), "finished run left state"

    model, config, meta = train.load_trained(workdir, SentimentConfig)
    assert config.ensemble == 2
    members = [train.load_trained(os.path.join(workdir, f"member-{k}"), SentimentConfig)
               for k in (1, 2)]
    assert [m[1].seed for m in members] == [0, 1] and all(m[1].ensemble == 1 for m in members)
    ids = np.array([[5, 9, 3, 0, 0], [7, 2, 11, 4, 8]], "int32")
    p1, p2 = (m[0].predict_on_batch(ids) for m in members)
    assert not np.allclose(p1, p2), "the members are the same model"
    np.testing.assert_allclose(model.predict_on_batch(ids), (p1 + p2) / 2, rtol=1e-5, atol=1e-6)

    texts = ["what a great idea", ""]
    rows = export.predict(os.path.join(export_dir, "sentiment", "1"), {"text": np.array(texts, object)})
    served = np.stack([row["probabilities"] for row in rows])
    from pipelines.sentiment import data

    import tensorflow as tf

    encoded = data.encode(data.make_vectorizer(meta["vocabulary"]), tf.constant(texts),
                          config.max_length)
    np.testing.assert_allclose(served, model.predict_on_batch(encoded), rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # about 18 s; the default run must stay under 15 min (.ci/run runs it)
def test_interrupted_ensemble_resumes_without_retraining_finished_members(
        tmp_path, monkeypatch, capsys):
    workdir = str(tmp_path / "work")
    real_fit = train.fit

    def dies_on_member_2(task, config, member_dir, *args, **kwargs):
        if member_dir.endswith("member-2"):
            raise KeyboardInterrupt("killed")
        return real_fit(task, config, member_dir, *args, **kwargs)

    monkeypatch.setattr(train, "fit", dies_on_member_2)
    with pytest.raises(KeyboardInterrupt):
        run_cli(TASK, "train", *SMALL, "--workdir", workdir)
    member_1 = os.path.join(workdir, "member-1", "model.keras")
    stamp = os.stat(member_1).st_mtime_ns
    assert os.path.exists(os.path.join(workdir, "ensemble.json"))

    monkeypatch.setattr(train, "fit", real_fit)
    capsys.readouterr()
    assert run_cli(TASK, "train", *SMALL, "--set", "units=4", "--workdir", workdir) == 2
    assert "unfinished ensemble run with a different config" in capsys.readouterr().err
    config = config_lib.override(TASK.presets["small"],
                                 ["max_examples=300", "epochs=1", "ensemble=2"])
    datasets = TASK.make_datasets(config)
    other_data = dataclasses.replace(datasets, meta={**datasets.meta, "labels": ["a", "b", "c"]})
    with pytest.raises(train.ResumeError, match="different data"):
        train.fit(TASK, config, workdir, other_data)
    assert run_cli(TASK, "train", *SMALL, "--workdir", workdir) == 0
    assert "resuming: ensemble members [1] are already trained" in capsys.readouterr().out
    assert os.stat(member_1).st_mtime_ns == stamp, "member 1 was trained again"
    assert os.path.exists(os.path.join(workdir, "model.keras"))
    assert not os.path.exists(os.path.join(workdir, "ensemble.json"))


def test_ensemble_needs_a_task_that_combines(tmp_path):
    task = dataclasses.replace(TASK, combine=None)
    config = dataclasses.replace(TASK.presets["small"], ensemble=2)
    with pytest.raises(ValueError, match="no `combine`"):
        train.fit(task, config, str(tmp_path), datasets=None)


def test_members_trained_through_one_trainer_equal_members_trained_alone(tmp_path):
    """fit_ensemble trains every member in one model (its step traced once): the same
    weights as each member trained in a model of its own (same seeds, same batches)."""
    config = config_lib.override(TASK.presets["small"], ["max_examples=300", "epochs=1"])
    shared, own = TASK.make_datasets(config), TASK.make_datasets(config)
    trainer = train.build(TASK, config, shared.meta)
    reused, functions = [], []
    for seed in (0, 1):
        member = dataclasses.replace(config, seed=seed)
        model, info = train.fit(TASK, member, str(tmp_path / f"reused-{seed}"), shared,
                                verbose=0, trainer=trainer)
        assert model is not trainer and info["epochs_run"] == 1
        reused.append(model)
        functions.append(trainer.train_function)
    assert functions[0] is functions[1], "the trainer's step was traced again"
    alone = [train.fit(TASK, dataclasses.replace(config, seed=seed), str(tmp_path / f"alone-{seed}"),
                       own, verbose=0)[0] for seed in (0, 1)]
    for a, b in zip(reused, alone):
        assert len(a.weights) == len(b.weights)
        for x, y in zip(a.weights, b.weights):
            np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-4, atol=1e-5, err_msg=x.path)
    assert not np.allclose(reused[0].weights[0].numpy(), reused[1].weights[0].numpy())
    ids = np.array([[5, 9, 3, 0], [7, 2, 11, 4]], "int32")
    np.testing.assert_allclose(trainer.predict_on_batch(ids), reused[1].predict_on_batch(ids),
                               rtol=1e-6, atol=1e-6)


def test_copy_state_refuses_a_model_of_another_build():
    config = TASK.presets["small"]
    meta = {"vocabulary": ["", "[UNK]"] + [f"w{i}" for i in range(30)],
            "labels": ["negative", "neutral", "positive"], "train_examples": 10}
    a = train.build(TASK, config, meta)
    b = train.build(TASK, dataclasses.replace(config, units=4), meta)
    with pytest.raises(ValueError, match="Cannot copy the state of"):
        train.copy_state(a, b)


def test_steps_per_execution_reaches_the_compiled_model_and_a_resumed_one(tmp_path):
    config = config_lib.override(TASK.presets["small"],
                                 ["max_examples=300", "epochs=1", "steps_per_execution=4"])
    datasets = TASK.make_datasets(config)
    assert train.build(TASK, config, datasets.meta).steps_per_execution == 4
    model, info = train.fit(TASK, config, str(tmp_path / "w"), datasets, verbose=0)
    assert info["epochs_run"] == 1 and model.steps_per_execution == 4
    loaded = keras.models.load_model(str(tmp_path / "w" / "model.keras"))
    assert train.with_steps_per_execution(loaded, config).steps_per_execution == 4
