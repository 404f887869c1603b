"""keras-tuner search over the sentiment search space: runs, records, resumes."""

import json
import os

import pytest

from pipelines.sentiment import TASK
from tests.pipelines.conftest import run_cli


@pytest.mark.slow  # about 40 s; tests/ner/test_pipeline.py tunes in the default run
def test_tune_records_best_and_resumes(tmp_path, capsys):
    workdir = str(tmp_path / "work")
    args = ["tune", "--preset", "small", "--workdir", workdir, "--set", "max_examples=200",
            "--set", "epochs=1", "--tuner", "random", "-q",
            # Pinned to cheap models to keep the test short; units to a value other than
            # the preset's (8), so the check below fails if --fix is ignored.
            "--fix", "cell=simplified_gru", "--fix", "num_layers=1", "--fix", "bidirectional=false",
            "--fix", "units=16"]
    assert run_cli(TASK, *args, "--max-trials", "1") == 0
    out = os.path.join(workdir, "tune", "random")
    best = json.load(open(os.path.join(out, "best_hyperparameters.json")))
    assert best["trials"] == 1
    assert set(best["values"]) == {"cell", "units", "num_layers", "bidirectional", "dropout",
                                   "learning_rate", "clipnorm"}
    best_config = json.load(open(os.path.join(out, "best_config.json")))
    assert best_config["cell"] == best["values"]["cell"]
    first_trials = sorted(d for d in os.listdir(out) if d.startswith("trial_"))

    # The same command again with a larger budget continues the search: the finished
    # trial is kept and only one new trial runs.
    assert run_cli(TASK, *args, "--max-trials", "2") == 0
    best = json.load(open(os.path.join(out, "best_hyperparameters.json")))
    assert best["trials"] == 2
    trials = sorted(d for d in os.listdir(out) if d.startswith("trial_"))
    assert len(trials) == 2 and set(first_trials) <= set(trials)
    assert "2 trials; best val_accuracy" in capsys.readouterr().out
    best_config = json.load(open(os.path.join(out, "best_config.json")))
    assert TASK.presets["small"].units == 8 and TASK.presets["small"].cell != "simplified_gru"
    assert best_config["cell"] == "simplified_gru" and best_config["units"] == 16
    for trial in trials:  # every trial ran with the pinned values
        values = json.load(open(os.path.join(out, trial, "trial.json")))["hyperparameters"]["values"]
        assert (values["cell"], values["units"], values["num_layers"]) == ("simplified_gru", 16, 1)

    # No new trial is needed; the best config is trained and exported.
    export_dir = str(tmp_path / "saved_models")
    assert run_cli(TASK, *args, "--max-trials", "2", "--train-best", "--export-dir", export_dir) == 0
    trained = json.load(open(os.path.join(workdir, "best", "config.json")))
    assert trained == best_config
    assert os.listdir(os.path.join(export_dir, "sentiment")) == ["1"]
