"""The sentiment export as TensorFlow Serving sees it: layout, atomicity, signature,
loading with no project code, robustness to empty and very long inputs."""

import os
import re
import threading

import numpy as np
import pytest

from pipelines.common import export, serving_check

INPUTS = ["what a great ride, loved it", "", "terrible " * 5000, "ça va très bien \U0001F600"]


@pytest.fixture(scope="module")
def child(sentiment_run):
    return serving_check.run_export(sentiment_run["version_dir"], INPUTS)


def test_loads_without_project_code_in_a_fresh_process(child):
    assert child["blocked"] == {"zoo": True, "pipelines": True}
    assert child["modules"] == []
    # Started with `python -m pipelines.common.serving_child`: the packages it came from
    # were loaded, then unloaded before TensorFlow; no project module imports again.
    assert {"pipelines", "pipelines.common"} <= set(child["unloaded"])
    assert set(child["probes"]) >= {"zoo", "zoo.cells", "pipelines", "pipelines.common",
                                    "pipelines.common.serving_child", "pipelines.sentiment"}
    for name, error in child["probes"].items():  # the package is refused first
        package = name.split(".")[0]
        assert error == f"{package} is blocked: exports must run without project code", name


def test_the_block_refuses_an_editable_install(tmp_path):
    """The blocker holds even where the project is importable (here it is: the tests
    import it), from an already-loaded package to a module never loaded before."""
    import json
    import subprocess
    import sys

    code = ("import importlib.util, json, pipelines.common.config\n"
            "assert importlib.util.find_spec('zoo') is not None\n"  # importable, not loaded
            "from pipelines.common import serving_child as c\n"
            "print(json.dumps(c.block(('zoo', 'pipelines'))))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    unloaded, held, probes = json.loads(proc.stdout.splitlines()[-1])
    assert unloaded == ["pipelines", "pipelines.common", "pipelines.common.config",
                        "pipelines.common.serving_child"]
    assert held == {"zoo": True, "pipelines": True}
    assert all(error and "is blocked" in error for error in probes.values()), probes


def test_tf1_session_path_and_saved_model_load_agree(child, sentiment_run):
    import json

    labels = json.load(open(os.path.join(sentiment_run["workdir"], "meta.json")))["labels"]
    assert set(child["tensor_names"]["outputs"]) == {"probabilities", "label", "label_index"}
    assert list(child["tensor_names"]["inputs"]) == ["text"]
    for path in ("session", "eager"):
        out = child[path]
        probs = np.asarray(out["probabilities"])
        assert probs.shape == (len(INPUTS), len(labels))
        np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
        assert out["label"] == [labels[i] for i in out["label_index"]]
        assert out["label_index"] == np.argmax(probs, axis=1).tolist()
    np.testing.assert_allclose(child["session"]["probabilities"], child["eager"]["probabilities"],
                               rtol=1e-5, atol=1e-6)


def test_export_matches_the_trained_model(child, sentiment_run):
    import keras

    from pipelines.common import train
    from pipelines.sentiment import data
    from pipelines.sentiment.config import SentimentConfig

    model, config, meta = train.load_trained(sentiment_run["workdir"], SentimentConfig)
    ids = data.encode(data.make_vectorizer(meta["vocabulary"]), INPUTS, config.max_length)
    live = keras.ops.convert_to_numpy(model(ids))
    np.testing.assert_allclose(child["eager"]["probabilities"], live, rtol=1e-4, atol=1e-5)


def test_saved_model_cli_lists_the_signature(sentiment_run):
    shown = serving_check.saved_model_cli_show(sentiment_run["version_dir"])
    assert "inputs['text']" in shown and "dtype: DT_STRING" in shown
    for name in ("probabilities", "label", "label_index"):
        assert f"outputs['{name}']" in shown
    assert "Method name is: tensorflow/serving/predict" in shown


def test_layout_and_models_config(sentiment_run):
    base = sentiment_run["export_dir"]
    assert export.versions(os.path.join(base, "sentiment")) == [1]
    text = open(os.path.join(base, "models.config")).read()
    assert re.search(r'config \{\s*name: "sentiment"\s*base_path: "([^"]+)"\s*'
                     r'model_platform: "tensorflow"\s*\}', text)
    assert f'base_path: "{os.path.abspath(os.path.join(base, "sentiment"))}"' in text
    assert text.count("{") == text.count("}")


def test_new_versions_are_atomic_and_increasing(sentiment_run, tmp_path):
    """While an export is written, the task directory only ever holds complete integer
    versions (a poller never sees a partial one); each export adds the next version."""
    from pipelines.common import train
    from pipelines.sentiment import TASK
    from pipelines.sentiment.config import SentimentConfig

    model, config, meta = train.load_trained(sentiment_run["workdir"], SentimentConfig)
    base = str(tmp_path / "models")
    seen, stop = [], threading.Event()

    def poll():
        task_dir = os.path.join(base, "sentiment")
        while not stop.is_set():
            for v in export.versions(task_dir):
                vdir = os.path.join(task_dir, str(v))
                seen.append(os.path.exists(os.path.join(vdir, "saved_model.pb"))
                            and os.path.isdir(os.path.join(vdir, "variables")))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        first = export.export(TASK.serving_model(model, config, meta), base, "sentiment")
        second = export.export(TASK.serving_model(model, config, meta), base, "sentiment")
    finally:
        stop.set()
        poller.join()
    assert first.endswith(os.sep + "1") and second.endswith(os.sep + "2")
    assert seen and all(seen), "a poller saw an incomplete version directory"
    assert sorted(os.listdir(os.path.join(base, "sentiment"))) == ["1", "2"], "temporary left"
