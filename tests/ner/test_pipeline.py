"""The ner pipeline end to end on its small preset: CLI, metrics, export for Serving
(loaded in a fresh process without project code), predict, bad input through the CLI."""

import json
import os

import pytest
from seqeval import metrics as seqeval

from pipelines.common import serving_check, train
from pipelines.common.cli import main
from pipelines.ner import TASK
from pipelines.ner import model as ner_model

LONG = " ".join(["word"] * 300)


def test_run_writes_the_entity_metrics_of_its_model_checked_with_seqeval(ner_run):
    """metrics.json holds what the trained model scores on the test split, recomputed
    here from its predictions: token accuracy by counting, entity P/R/F1 by seqeval."""
    report = json.load(open(os.path.join(ner_run["workdir"], "eval", "metrics.json")))
    model, config, meta = train.load_trained(ner_run["workdir"], TASK.config_class)
    test = TASK.make_datasets(config, meta=meta).test
    gold, predicted, correct, total = [], [], 0, 0
    for features, targets in test:
        for p, y in zip(ner_model.predict_tags(model, features, config), targets.numpy()):
            n = int((y >= 0).sum())
            correct, total = correct + int((p[:n] == y[:n]).sum()), total + n
            gold.append(ner_model.to_bio(y[:n], meta))
            predicted.append(ner_model.to_bio(p[:n], meta))
    assert report["examples"] == len(gold)
    assert report["accuracy"] == pytest.approx(correct / total)
    assert report["f1"] == pytest.approx(seqeval.f1_score(gold, predicted, mode=None))
    assert report["precision"] == pytest.approx(seqeval.precision_score(gold, predicted))
    assert report["recall"] == pytest.approx(seqeval.recall_score(gold, predicted))
    assert report["overall"]["f1"] == report["f1"]
    assert report["overall"]["support"] == sum(m["support"] for m in report["per_type"].values())
    by_type = seqeval.classification_report(gold, predicted, output_dict=True, zero_division=0)
    for kind, m in report["per_type"].items():
        assert m["support"] == by_type[kind]["support"]
        assert m["f1"] == pytest.approx(by_type[kind]["f1-score"])


def test_export_runs_without_project_code_through_both_paths(ner_run):
    inputs = ["Barack Obama visited Paris .", "", LONG]
    result = serving_check.run_export(ner_run["version_dir"], inputs)
    assert result["blocked"] == {"zoo": True, "pipelines": True} and result["modules"] == []
    session, eager = result["session"], result["eager"]
    assert session == eager
    assert session["lengths"] == [5, 0, 64]  # small preset: serve_max_tokens=64
    assert [t for t in session["tokens"][0] if t] == ["Barack", "Obama", "visited", "Paris", "."]
    for row, n in zip(session["tags"], session["lengths"]):
        assert len([t for t in row if t]) == n
        assert all(t == "O" or t[:2] in ("B-", "I-") for t in row if t)
    for key in ("entity_types", "entity_starts", "entity_ends", "entity_texts", "entity_counts"):
        assert key in session
    config = open(os.path.join(ner_run["export_dir"], "models.config")).read()
    assert 'name: "ner"' in config
    shown = serving_check.saved_model_cli_show(ner_run["version_dir"])
    assert "['text']" in shown and "entity_types" in shown and "tags" in shown


@pytest.mark.slow  # about 50 s; tests/serving runs the tokens signature without project code too
def test_tokens_signature_runs_without_project_code(ner_run):
    words = [["Barack", "Obama", "visited", "Paris", "."], ["Paris", "", "", "", ""]]
    pre = serving_check.run_export(ner_run["version_dir"], {"tokens": words},
                                   signature="tokens")
    raw = serving_check.run_export(ner_run["version_dir"],
                                   ["Barack Obama visited Paris .", "Paris"])
    assert pre["blocked"] == {"zoo": True, "pipelines": True} and pre["modules"] == []
    assert pre["session"] == pre["eager"]
    assert pre["session"]["lengths"] == [5, 1]
    for key in raw["session"]:
        assert pre["session"][key] == raw["session"][key], key


def test_predict_and_evaluate_through_the_cli(ner_run, tmp_path, capsys):
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", ner_run["export_dir"], "--text",
                       "Obama in Paris", "--text", ""]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 2

    good = tmp_path / "eval.conll"
    good.write_text("Obama B-person\nin O\nParis B-geo-loc\n\nhello O\n", encoding="utf-8")
    out_dir = tmp_path / "eval"
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", ner_run["workdir"],
                       "--data", str(good), "--out", str(out_dir), "-q"]) == 0
    report = json.load(open(out_dir / "metrics.json"))
    assert report["examples"] == 2 and report["overall"]["support"] == 2
    assert (out_dir / "entity_f1.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    bad = tmp_path / "bad.conll"
    bad.write_text("Obama B-person\nin\n", encoding="utf-8")
    capsys.readouterr()
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", ner_run["workdir"],
                       "--data", str(bad)]) == 2
    assert f"{bad}:2: expected 2 columns" in capsys.readouterr().err


@pytest.mark.slow  # about 12 s; the default run must stay under 15 min (.ci/run runs it)
def test_tuning_ranks_trials_by_validation_entity_f1(tmp_path, capsys):
    """The CRF head's loss is per sentence and the softmax head's per token: trials are
    ranked on val_f1, which the task computes after every epoch."""
    workdir = str(tmp_path / "work")
    assert main(TASK, ["tune", "--preset", "small", "--workdir", workdir, "-q", "--max-trials", "1",
                       "--set", "epochs=1", "--set", "max_examples=120", "--fix", "head=softmax",
                       "--fix", "char_encoder=none"]) == 0
    out = os.path.join(workdir, "tune", "random")
    best = json.load(open(os.path.join(out, "best_hyperparameters.json")))
    assert best["monitor"] == "val_f1" and best["trials"] == 1
    (trial,) = [d for d in os.listdir(out) if d.startswith("trial_")]
    record = json.load(open(os.path.join(out, trial, "trial.json")))
    f1 = record["metrics"]["metrics"]["val_f1"]["observations"][0]["value"][0]
    assert best["best_score"] == pytest.approx(f1) and 0.0 <= f1 <= 1.0
    assert record["hyperparameters"]["values"]["head"] == "softmax"
