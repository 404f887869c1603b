"""Loading an export the way TensorFlow Serving does, with no project code importable.

``run_export(version_dir, inputs)`` (``run_exports`` for several requests) starts a
fresh Python process,
``python -m pipelines.common.serving_child`` (the working directory outside the
repository, PYTHONPATH only the directory holding this ``pipelines``), in which
importing ``zoo`` or ``pipelines`` raises: before TensorFlow is imported the child
puts a ``sys.meta_path`` finder first (so even an editable install cannot reach them)
and unloads the project modules that starting it with ``-m`` loaded. The child proves
the block, then runs the inputs through the export twice:

* TF1-style, as Serving does: ``tf.compat.v1.saved_model.loader.load`` into a
  session and ``session.run`` on the SignatureDef's tensor names;
* TF2-style: ``tf.saved_model.load(...).signatures["serving_default"]``.

``saved_model_cli_show`` returns the text of ``saved_model_cli show`` for the
signature. Tests of every pipeline and of the zoo use these helpers.
"""

import json
import os
import subprocess
import sys
import tempfile

BLOCKED = ("zoo", "pipelines")

class ServingCheckError(RuntimeError):
    """The child process failed to load or run the export."""


# The directory holding the ``pipelines`` package, the child's only PYTHONPATH entry.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def clean_env():
    """The environment for a child: no PYTHONPATH, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def to_json(value):
    """Feeds as JSON values: bytes that are not UTF-8 (WAV, MIDI) as {"b64": text},
    TensorFlow Serving's REST convention; lists, tuples and dicts recursively."""
    import base64

    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return {"b64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    return value


def run_export(version_dir, inputs, input_name="text", timeout=600, signature="serving_default"):
    """Runs ``inputs`` (list of str, or nested lists of numbers for non-text signatures)
    through the export at ``version_dir`` in a process where the project cannot be
    imported. ``inputs`` may also be a dict {input name: value} for a signature with
    several inputs (scalars allowed); ``signature`` names the SignatureDef to run.

    Returns a dict: ``blocked`` ({"zoo": True, "pipelines": True} when the block held),
    ``unloaded`` (the project modules loaded by starting the child, then removed),
    ``probes`` ({module: the ImportError's message} for imports tried after the block,
    None where one worked), ``modules`` (project modules found loaded after running
    the export: must be empty), ``tensor_names`` (of the
    SignatureDef), and ``session`` / ``eager``: {output name: list} from the TF1
    session path and from ``tf.saved_model.load``. Raises ServingCheckError.
    """
    child = run_exports(version_dir, [(signature, inputs)], input_name, timeout)
    results = child.pop("results")
    return {**child, **results[0]}


def run_exports(version_dir, requests, input_name="text", timeout=600):
    """``run_export`` of several ``requests`` [(signature, inputs)] in one child process
    (the export loaded once each way): returns ``blocked``, ``unloaded``, ``probes``,
    ``modules`` as ``run_export`` and ``results``, per request a dict with
    ``tensor_names``, ``session`` and ``eager``. Raises ServingCheckError."""
    args = {
        "dir": os.path.abspath(version_dir),
        "requests": [{"inputs": to_json(dict(inputs) if isinstance(inputs, dict) else list(inputs)),
                      "input_name": input_name, "signature": signature}
                     for signature, inputs in requests],
        "blocked": list(BLOCKED),
    }
    env = {**clean_env(), "PYTHONPATH": ROOT}
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-s", "-m", "pipelines.common.serving_child", json.dumps(args)],
            cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
        )
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    raise ServingCheckError(
        f"The export at {version_dir} failed to run without project code "
        f"(exit {proc.returncode}):\n{proc.stderr[-4000:]}"
    )


def saved_model_cli_show(version_dir, timeout=300):
    """The output of ``saved_model_cli show --tag_set serve --signature_def serving_default``."""
    cli = os.path.join(os.path.dirname(sys.executable), "saved_model_cli")
    command = [cli] if os.path.exists(cli) else [
        sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            command + ["show", "--dir", os.path.abspath(version_dir), "--tag_set", "serve",
                       "--signature_def", "serving_default"],
            cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout,
        )
    if proc.returncode != 0:
        raise ServingCheckError(f"saved_model_cli failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.stdout
