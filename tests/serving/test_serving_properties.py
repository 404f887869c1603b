"""Every serving signature of every task's small-preset export survives any input, and
one loaded export serves 8 threads at once as it serves one.

Tasks are discovered as in the contract test; each task's ``serving_model(...)``
declares its signatures (``endpoints()``) and, optionally, the accepted ranges of its
scalar inputs (``input_ranges()`` -> {input: (lowest, highest)}, inclusive, None =
unbounded, floats also finite; a scalar without a range must accept every value). One
child process per task (``properties_child.py``, no project code importable) loads the
export once and runs edge requests and hypothesis-drawn requests through every
signature."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

from pipelines.common import serving_check, train
from tests.pipelines.test_contract import NAMES

CHILD = os.path.join(os.path.dirname(os.path.abspath(__file__)), "properties_child.py")
MAX_EXAMPLES = 25  # hypothesis requests per signature, after the fixed edge requests
SLOWEST_CALL = 30.0  # seconds: more is a hang (the longest legal call is about 2 s here)
_RESULTS = {}


def _plain(value):
    import numpy as np

    if isinstance(value, (list, tuple)):  # not np.asarray: a bytes array drops trailing NULs
        return [_plain(v) for v in value]
    value = np.asarray(value) if not isinstance(value, (str, bytes, int, float)) else value
    return value.tolist() if hasattr(value, "tolist") else value


def signature_infos(task, workdir):
    """{signature: {"inputs", "example", "ranges"}} of the task's serving model."""
    model, config, meta = train.load_trained(workdir, task.config_class)
    server = task.serving_model(model, config, meta)
    ranges = getattr(server, "input_ranges", dict)()
    infos = {}
    for name, endpoint in server.endpoints().items():
        inputs = [{"name": s.name, "dtype": s.dtype.name, "shape": s.shape.as_list()}
                  for s in endpoint.inputs]
        infos[name] = {
            "inputs": inputs,
            "example": serving_check.to_json({k: _plain(v) for k, v in endpoint.example.items()}),
            "ranges": {k: list(v) for k, v in ranges.items() if k in endpoint.input_names},
        }
    return infos


def start_child(version_dir, infos, max_examples=MAX_EXAMPLES):
    args = {"dir": os.path.abspath(version_dir), "blocked": list(serving_check.BLOCKED),
            "signatures": infos, "max_examples": max_examples, "call_limit": SLOWEST_CALL}
    cwd = tempfile.mkdtemp(prefix="serving_properties_")
    return subprocess.Popen([sys.executable, "-I", CHILD, json.dumps(args)], cwd=cwd,
                            env=serving_check.clean_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_child(proc, timeout=900):
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        raise AssertionError(f"the property child hung (> {timeout} s):\n{err[-3000:]}")
    for line in out.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise AssertionError(f"the property child failed (exit {proc.returncode}):\n{err[-4000:]}")


@pytest.fixture
def result(name, small_run):
    """The task's child result, one child per task per test process (under pytest-xdist
    a task's tests run in one worker: tests/conftest.py groups them)."""
    if name not in _RESULTS:
        run = small_run(name)
        _RESULTS[name] = finish_child(start_child(run["version_dir"],
                                                  signature_infos(run["task"], run["workdir"])))
    return _RESULTS[name]


@pytest.mark.parametrize("name", NAMES)
def test_every_signature_survives_any_input(name, result):
    assert result["blocked"] == {"zoo": True, "pipelines": True} and result["modules"] == []
    for signature, report in result["signatures"].items():
        assert not report["failures"], (signature, json.dumps(report["failures"], indent=1))
        assert report["calls"] > MAX_EXAMPLES, (signature, report["calls"])
        assert report["slowest"] < SLOWEST_CALL, (signature, report["slowest"])


@pytest.mark.parametrize("name", NAMES)
def test_eight_threads_get_what_sequential_calls_get(name, result):
    signatures = result["signatures"]
    assert "serving_default" in signatures
    for signature, report in signatures.items():
        assert report["concurrency"] == [], (signature, report["concurrency"])
