"""Every pipeline end to end on its small preset: train, evaluate, export, predict.

Later tasks add their name to TASKS.
"""

import importlib
import json
import os

import pytest

from tests.pipelines.conftest import run_cli

TASKS = ["sentiment", "char_lm", "ner"]


@pytest.mark.parametrize("name", TASKS)
def test_pipeline_end_to_end(name, tmp_path, capsys, request):
    task = importlib.import_module(f"pipelines.{name}").TASK
    if name == "sentiment":  # trained once for the whole session, reused here
        run = request.getfixturevalue("sentiment_run")
        workdir, export_dir = run["workdir"], run["export_dir"]
    else:
        workdir, export_dir = str(tmp_path / "work"), str(tmp_path / "saved_models")
        assert run_cli(task, "--preset", task.test_preset, "--workdir", workdir,
                       "--export-dir", export_dir, "-q") == 0

    for artifact in ("model.keras", "config.json", "meta.json", "history.json"):
        assert os.path.exists(os.path.join(workdir, artifact)), artifact
    assert os.listdir(os.path.join(workdir, "logs")), "no TensorBoard logs"
    metrics = json.load(open(os.path.join(workdir, "eval", "metrics.json")))
    assert metrics, "empty metrics"
    versions = os.listdir(os.path.join(export_dir, task.name))
    assert versions and all(v.isdigit() for v in versions)
    config = json.load(open(os.path.join(export_dir, task.name, versions[0], "assets.extra",
                                         "config.json")))
    assert config == json.load(open(os.path.join(workdir, "config.json")))

    capsys.readouterr()
    meta = json.load(open(os.path.join(workdir, "meta.json")))
    inputs = task.example_inputs(task.presets[task.test_preset], meta)[:2]
    assert run_cli(task, "predict", "--export-dir", export_dir,
                   *[a for text in inputs for a in ("--text", text)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == len(inputs)
