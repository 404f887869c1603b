"""The task contract, checked on every task found under ``pipelines/`` (discovered, not
listed): the small preset end to end, every declared endpoint through the written export
in a process where the project cannot be imported, ``predict``, and bad input on the
command line (one ``error:`` line, exit code 2)."""

import dataclasses
import json
import math
import os
import pkgutil
import typing

import pytest

import pipelines
from pipelines.common import config as config_lib
from pipelines.common import export, serving_check
from pipelines.common.cli import main
from pipelines.common.task import Endpoint, Task

NAMES = sorted(m.name for m in pkgutil.iter_modules(pipelines.__path__)
               if m.ispkg and m.name != "common")


def _task(name):
    import importlib

    return importlib.import_module(f"pipelines.{name}").TASK


def _one_error_line(capsys, *argv, task):
    capsys.readouterr()
    code = main(task, list(argv))
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert code == 2, (code, captured.err)
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    return lines[0]


def test_every_task_package_is_a_task():
    assert {"sentiment", "char_lm", "ner", "music"} <= set(NAMES)
    for name in NAMES:
        task = _task(name)
        assert isinstance(task, Task) and task.name == name


@pytest.mark.parametrize("name", NAMES)
def test_the_main_job_trains_evaluates_exports_and_predicts(name, small_run, capsys, tmp_path):
    run = small_run(name)
    task, workdir = run["task"], run["workdir"]
    for artifact in ("model.keras", "config.json", "meta.json", "history.json"):
        assert os.path.exists(os.path.join(workdir, artifact)), artifact
    assert os.listdir(os.path.join(workdir, "logs")), "no TensorBoard logs"
    report = json.load(open(os.path.join(workdir, "eval", "metrics.json")))
    numbers = [v for v in report.values() if isinstance(v, float)]
    assert numbers and all(math.isfinite(v) for v in numbers), report
    assert task.report.format(report) in run["stdout"]  # what the job printed
    history = json.load(open(os.path.join(workdir, "history.json")))
    assert all(task.monitor in epoch for epoch in history), history

    versions = export.versions(os.path.join(run["export_dir"], task.name))
    assert versions and versions[0] == 1
    extra = os.path.join(run["version_dir"], "assets.extra")
    assert json.load(open(os.path.join(extra, "config.json"))) == json.load(
        open(os.path.join(workdir, "config.json")))

    meta = json.load(open(os.path.join(workdir, "meta.json")))
    config = config_lib.load(task.config_class, os.path.join(workdir, "config.json"))
    reader = task.predict_input.for_model(config, meta)
    values = task.example_inputs(config, meta)[:2]
    shown = [reader.show(reader.read_text(v)) for v in values]
    capsys.readouterr()
    out = tmp_path / "predictions"
    assert main(task, ["predict", "--export-dir", run["export_dir"], "--out", str(out),
                       *[a for v in values for a in ("--text", v)]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(values)  # one line per input, ending with the input shown
    assert all(line.endswith(s) for line, s in zip(lines, shown)), (lines, shown)
    if reader.save is None:
        assert not out.exists()
    else:  # the files it names exist, in --out
        written = [p for line, s in zip(lines, shown)
                   for p in line[:len(line) - len(s)].split(" -> ")[1].strip().split(", ")]
        assert written and all(p.startswith(str(out)) and os.path.getsize(p) for p in written)


@pytest.mark.parametrize("name", NAMES)
def test_every_endpoint_runs_from_the_export_without_project_code(name, small_run):
    run = small_run(name)
    task, workdir = run["task"], run["workdir"]
    from pipelines.common import train

    model, config, meta = train.load_trained(workdir, task.config_class)
    endpoints = task.serving_model(model, config, meta).endpoints()
    assert "serving_default" in endpoints
    checked = {}
    for signature, endpoint in endpoints.items():
        assert isinstance(endpoint, Endpoint)
        if any(endpoint is other for other in checked.values()):  # an alias (serving_default = generate)
            continue
        checked[signature] = endpoint
    # One child process loads the export and runs every endpoint's example through it.
    child = serving_check.run_exports(
        run["version_dir"], [(signature, dict(e.example)) for signature, e in checked.items()])
    assert child["blocked"] == {"zoo": True, "pipelines": True}
    assert child["modules"] == []
    for (signature, endpoint), result in zip(checked.items(), child["results"], strict=True):
        assert result["session"] == result["eager"], signature
        rows = {len(v) for v in result["eager"].values() if isinstance(v, list)}
        batch = {len(v) for k, v in endpoint.example.items()
                 if isinstance(v, (list, tuple))}
        assert rows == batch, (signature, rows, batch)  # one output row per input row
    shown = serving_check.saved_model_cli_show(run["version_dir"])
    for spec in endpoints["serving_default"].inputs:
        assert f"['{spec.name}']" in shown


def _enumerated_field(config):
    """A config field whose type is a Literal of allowed values, and one of them."""
    hints = typing.get_type_hints(type(config))
    for field in dataclasses.fields(config):
        if typing.get_origin(hints[field.name]) is typing.Literal:
            return field.name, typing.get_args(hints[field.name])
    return None, ()


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_gives_one_error_line_and_exit_code_2(name, tmp_path, capsys):
    task = _task(name)
    common = ["--preset", task.test_preset, "--workdir", str(tmp_path / "work"), "-q"]
    missing = tmp_path / "missing.txt"
    line = _one_error_line(capsys, "train", *common, "--data", str(missing), task=task)
    assert str(missing) in line
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    line = _one_error_line(capsys, "train", *common, "--data", str(empty), task=task)
    assert str(empty) in line
    undecodable = tmp_path / "latin.txt"
    undecodable.write_bytes(b"caf\xe9 \xff\xfe\n" * 3)
    line = _one_error_line(capsys, "train", *common, "--data", str(undecodable), task=task)
    assert str(undecodable) in line

    line = _one_error_line(capsys, "train", *common, "--set", "no_such_key=1", task=task)
    assert "no_such_key" in line
    field, allowed = _enumerated_field(task.presets[task.test_preset])
    assert field, f"{name}: no config field declares its allowed values (typing.Literal)"
    line = _one_error_line(capsys, "train", *common, "--set", f"{field}=not-a-choice", task=task)
    assert field in line and "not-a-choice" in line and str(sorted(allowed))[1:-1] in line

    for pair, message in [("epochs=0", "Config key 'epochs' expects a value >= 1. Received: 0"),
                          ("dropout=1.5", "Config key 'dropout' expects a value [0, 1). Received: 1.5")]:
        assert _one_error_line(capsys, "train", *common, "--set", pair, task=task) == \
            f"error: {message}"

    line = _one_error_line(capsys, "predict", "--model", str(tmp_path / "nowhere"),
                           "--text", "x", task=task)
    assert "nowhere" in line
    line = _one_error_line(capsys, "predict", "--export-dir", str(tmp_path / "none"),
                           "--text", "x", task=task)
    assert "No exported versions" in line


@pytest.mark.parametrize("name", NAMES)
def test_the_search_space_starts_at_every_preset(name):
    """Fresh hyperparameters take their defaults: the search space gives each preset back
    (a default outside the choices is a keras-tuner error at `tune --preset P`)."""
    import keras_tuner as kt

    task = _task(name)
    for preset, config in task.presets.items():
        hp = kt.HyperParameters()
        assert task.search_space(hp, config) == config, preset
        assert hp.values, preset


@pytest.mark.parametrize("name", NAMES)
def test_help_and_a_bad_setting_answer_without_importing_tensorflow(name, tmp_path):
    import subprocess
    import sys

    program = (
        "import contextlib, io, sys\n"
        "from pipelines.common.cli import main\n"
        f"from pipelines.{name} import TASK\n"
        "for argv in (['--help'], ['train', '--help'], *[[c, '--help'] for c in TASK.commands]):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(TASK, argv)\n"
        "        except SystemExit as e:\n"
        "            assert e.code == 0, (argv, e.code)\n"
        "code = main(TASK, ['train', '--set', 'epochs=0'])\n"
        "print(code, sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras')))\n")
    proc = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "2 []"
    assert proc.stderr.strip() == "error: Config key 'epochs' expects a value >= 1. Received: 0"
