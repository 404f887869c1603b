"""The char_lm pipeline end to end on its small preset: train, evaluate, export with the
generate/score signatures loaded as TensorFlow Serving does (fresh process, project
code blocked), the export equal to the live model, and the score / sample commands.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from pipelines.char_lm import TASK, data, sample
from pipelines.char_lm.config import CharLMConfig
from pipelines.common import serving_check, train
from pipelines.common.cli import main

PROMPTS = ["The ", "", "x" * 3000, "ça \U0001F600"]
TEXTS = ["the apple and pair salad", "the apple and pear salad", "", "ça \U0001F600"]


@pytest.fixture(scope="module")
def run(small_run, tmp_path_factory):
    """The shared small run (trained and exported once per session), evaluated on a
    held-out file with ``evaluate --data``."""
    shared = small_run("char_lm")
    root = tmp_path_factory.mktemp("char_lm_eval")
    held_out = root / "held_out.txt"
    held_out.write_text(data.load_corpus()[20000:24000], encoding="utf-8")
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", shared["workdir"], "-q",
                       "--data", str(held_out), "--out", str(root / "eval")]) == 0
    model, config, meta = train.load_trained(shared["workdir"], CharLMConfig)
    return {**shared, "eval_dir": str(root / "eval"), "model": model, "config": config,
            "meta": meta}


@pytest.fixture(scope="module")
def loaded(run):
    return tf.saved_model.load(run["version_dir"])


def test_evaluate_reports_bits_per_char(run):
    report = json.load(open(os.path.join(run["eval_dir"], "metrics.json")))
    assert report["bits_per_char"] == pytest.approx(report["nats_per_token"] / np.log(2))
    assert 0 < report["nats_per_token"] < np.log(len(run["meta"]["vocabulary"]))
    assert 'name: "char_lm"' in open(os.path.join(run["export_dir"], "models.config")).read()


def test_generate_runs_without_project_code_and_equals_the_live_sampler(run, loaded):
    inputs = {"prompts": PROMPTS, "max_length": 25, "temperature": 0.9, "top_k": 10, "seed": 4}
    child = serving_check.run_export(run["version_dir"], inputs, signature="generate")
    assert child["blocked"] == {"zoo": True, "pipelines": True} and child["modules"] == []
    assert child["session"]["text"] == child["eager"]["text"]
    texts = child["eager"]["text"]
    assert all(t.startswith(p) for t, p in zip(texts, PROMPTS))
    assert child["eager"]["length"] == [25] * len(PROMPTS)  # char level: no <eos>
    live = sample.sample(run["model"], run["meta"], PROMPTS, max_length=25, temperature=0.9,
                         top_k=10, seed=4)
    assert texts == live


def test_serving_default_is_generate(loaded):
    assert set(loaded.signatures) == {"serving_default", "generate", "score"}
    for name in ("serving_default", "generate"):
        inputs = loaded.signatures[name].structured_input_signature[1]
        assert set(inputs) == {"prompts", "max_length", "temperature", "top_k", "seed"}
        assert set(loaded.signatures[name].structured_outputs) == {"text", "generated", "length"}


def test_score_signature_equals_the_live_scores(run, loaded):
    out = loaded.signatures["score"](texts=tf.constant(TEXTS))
    out = {k: v.numpy() for k, v in out.items()}
    live = sample.score(run["model"], run["meta"], TEXTS)
    np.testing.assert_allclose(out["log_prob"], [total for total, _ in live], rtol=1e-4)
    assert out["num_tokens"].tolist() == [len(t) for t in TEXTS]
    np.testing.assert_allclose(out["token_log_probs"].sum(axis=1), out["log_prob"], rtol=1e-5)
    assert out["log_prob"][2] == 0.0  # the empty text: no tokens


def test_score_and_sample_commands(run, capsys):
    assert set(TASK.commands) == {"score", "sample"}
    common = ["--preset", "small", "--workdir", run["workdir"]]
    capsys.readouterr()
    assert main(TASK, ["score", *common, "pair", "pear"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and "log P" in lines[0]
    assert main(TASK, ["sample", *common, "The ", "--max-length", "12", "--temperature", "0"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert out[0] == "---" and out[1].startswith("The ")
