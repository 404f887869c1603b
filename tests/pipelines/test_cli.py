"""The shared CLI: subcommands, clear errors, evaluate outputs, predict inputs."""

import dataclasses
import io
import json
import os

import pytest

from pipelines.sentiment import TASK
from tests.pipelines.conftest import run_cli


def test_bad_data_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("body,label\nnice,pos\n")
    code = run_cli(TASK, "train", "--preset", "small", "--data", str(path),
                   "--workdir", str(tmp_path / "w"))
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and f"{path}:1: missing column(s) ['text']" in err


def test_unknown_override_key(tmp_path, capsys):
    assert run_cli(TASK, "train", "--preset", "small", "--set", "unitz=3",
                   "--workdir", str(tmp_path)) == 2
    assert "Unknown config key 'unitz'" in capsys.readouterr().err


def test_evaluate_a_file_writes_metrics_and_confusion_png(sentiment_run, tmp_path, capsys):
    path = tmp_path / "eval.jsonl"
    rows = [("I love it", "positive"), ("worst day ever", "negative"), ("a car", "neutral")]
    path.write_text("".join(json.dumps({"text": t, "sentiment": y}) + "\n" for t, y in rows))
    out = tmp_path / "eval"
    assert run_cli(TASK, "evaluate", "--preset", "small", "--workdir", sentiment_run["workdir"],
                   "--data", str(path), "--set", "label_column=sentiment", "--out", str(out)) == 0
    printed = capsys.readouterr().out
    assert "accuracy" in printed and "precision" in printed and "negative" in printed
    metrics = json.load(open(out / "metrics.json"))
    assert metrics["examples"] == 3 and set(metrics["per_class"]) == {"negative", "neutral", "positive"}
    assert sum(map(sum, metrics["confusion"])) == 3
    assert (out / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.load(open(out / "config.json"))["label_column"] == "sentiment"


def test_evaluate_unseen_label_names_the_line(sentiment_run, tmp_path, capsys):
    path = tmp_path / "eval.csv"
    path.write_text("text,label\nok,positive\nhm,sarcastic\n")
    assert run_cli(TASK, "evaluate", "--preset", "small", "--workdir", sentiment_run["workdir"],
                   "--data", str(path)) == 2
    assert f"{path}:3: field 'label': label 'sarcastic' was not seen in training" in \
        capsys.readouterr().err


def test_predict_reads_a_file_and_stdin(sentiment_run, tmp_path, capsys, monkeypatch):
    lines = tmp_path / "lines.txt"
    lines.write_text("great\nawful\n\n")
    assert run_cli(TASK, "predict", "--export-dir", sentiment_run["export_dir"],
                   "--file", str(lines)) == 0
    assert len(capsys.readouterr().out.strip("\n").splitlines()) == 3
    monkeypatch.setattr("sys.stdin", io.StringIO("one line\nanother\n"))
    assert run_cli(TASK, "predict", "--export-dir", sentiment_run["export_dir"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 2 and out[0].endswith("one line")
    assert any(out[0].startswith(label) for label in ("negative", "neutral", "positive"))


def test_export_subcommand_adds_a_version(sentiment_run, tmp_path):
    base = str(tmp_path / "sm")
    for _ in range(2):
        assert run_cli(TASK, "export", "--preset", "small", "--workdir",
                       sentiment_run["workdir"], "--export-dir", base) == 0
    assert sorted(os.listdir(os.path.join(base, "sentiment"))) == ["1", "2"]
    assert os.path.exists(os.path.join(base, "models.config"))


def test_missing_run_is_a_clear_error(tmp_path, capsys):
    assert run_cli(TASK, "export", "--workdir", str(tmp_path / "none")) == 2
    assert "run `train` first" in capsys.readouterr().err


def test_a_task_declares_its_own_data_flags(tmp_path):
    """A task with source/target files names its flags; the CLI sets those fields."""
    import dataclasses

    from pipelines.common.cli import build_parser, resolve_config

    pairs = dataclasses.replace(TASK, data_flags={
        "source-file": ("train_file", "sentences in the source language"),
        "target-file": ("valid_file", "their translations, line by line"),
    })
    args = build_parser(pairs).parse_args(
        ["train", "--source-file", "a.txt", "--target-file", "b.txt"])
    config = resolve_config(pairs, args)
    assert (config.train_file, config.valid_file) == ("a.txt", "b.txt")
    with pytest.raises(SystemExit) as exit_info:  # --data is not a flag of this task
        build_parser(pairs).parse_args(["train", "--data", "x.csv"])
    assert exit_info.value.code == 2
    with pytest.raises(ValueError, match=r"data_flags name config fields \['pairs_file'\]"):
        dataclasses.replace(TASK, data_flags={"pairs": ("pairs_file", "?")})


def test_predict_bad_input_is_one_error_line(sentiment_run, tmp_path, capsys, monkeypatch):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes(b"ok\ncaf\xe9\n")
    assert run_cli(TASK, "predict", "--export-dir", sentiment_run["export_dir"],
                   "--file", str(bad)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: {bad}:2: column 4: bytes b'\\xe9'")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert run_cli(TASK, "predict", "--export-dir", sentiment_run["export_dir"]) == 2
    assert capsys.readouterr().err.strip() == "error: Nothing to predict: stdin was empty."


def test_config_command_lists_every_field_with_value_range_and_comment(capsys):
    from pipelines.sentiment.config import SentimentConfig

    assert run_cli(TASK, "config", "--preset", "small", "--set", "units=16") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[sentiment] preset small (* changed by the command line)"
    rows = {line[1:].split()[0]: line for line in lines[1:]}
    assert set(rows) == {f.name for f in dataclasses.fields(SentimentConfig)}
    assert rows["units"].startswith("*units") and rows["units"].split()[1] == "16"
    assert all(line.startswith(" ") for name, line in rows.items() if name != "units")
    assert "one of rnn, simplified_gru, gru, lstm, peephole_lstm" in rows["cell"]
    assert "[0, 1)" in rows["dropout"] and "training words replaced by [UNK]" in rows["word_dropout"]


def test_labels_setting_that_misses_the_data_labels_blames_the_setting(tmp_path, capsys):
    path = tmp_path / "reviews.csv"
    path.write_text("text,label\n" + "".join(f"text {i},{'pos' if i % 2 else 'neg'}\n"
                                             for i in range(40)))
    assert run_cli(TASK, "train", "--preset", "small", "--data", str(path), "--set", "labels=a,b",
                   "--workdir", str(tmp_path / "w")) == 2
    assert capsys.readouterr().err == (
        "error: Config key 'labels' lists ['a', 'b'], but the training data has the labels "
        "['neg', 'pos'] too: list every label of the data, or leave labels empty to take "
        "the data's.\n")


def test_train_refuses_to_overwrite_a_finished_run(sentiment_run, capsys):
    workdir = sentiment_run["workdir"]
    model = os.path.join(workdir, "model.keras")
    before = os.path.getmtime(model)
    assert run_cli(TASK, "train", "--preset", "small", "--workdir", workdir, "-q") == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        f"error: {workdir} holds a finished run ({model}, the same config): pass --fresh to "
        "train over it, or another --workdir.")
    assert run_cli(TASK, "train", "--preset", "small", "--workdir", workdir, "-q",
                   "--set", "units=16") == 2
    assert (f"a different config: units: saved 8, now 16): pass --fresh"
            in capsys.readouterr().err)
    assert os.path.getmtime(model) == before


def test_a_fresh_process_loads_the_trained_model(sentiment_run, tmp_path):
    """export in a new process: the task's Keras classes are registered before loading
    (its modules are imported only when needed)."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "pipelines.sentiment", "export", "--preset", "small",
                           "--workdir", sentiment_run["workdir"], "--export-dir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert os.path.isdir(tmp_path / "sentiment" / "1")
