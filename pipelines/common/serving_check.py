"""Loading an export the way TensorFlow Serving does, with no project code importable.

``run_export(version_dir, inputs)`` starts a fresh Python process in which importing
``zoo`` or ``pipelines`` raises (a ``sys.meta_path`` finder placed first, so even an
editable install cannot reach them), with PYTHONPATH cleared, isolated mode and the
working directory outside the repository. The child proves the block, then runs the
inputs through the export twice:

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

_CHILD = r'''
import importlib.abc, json, sys

BLOCKED = tuple(json.loads(sys.argv[1])["blocked"])

class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: exports must run without project code")
        return None

sys.meta_path.insert(0, _Block())
blocked = {}
for name in BLOCKED:
    try:
        __import__(name)
        blocked[name] = False
    except ImportError:
        blocked[name] = name not in sys.modules

import os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

args = json.loads(sys.argv[1])
path, inputs, input_name = args["dir"], args["inputs"], args["input_name"]
signature_name = args.get("signature", "serving_default")
# One input (the list under input_name) or several ({input name: value}, scalars allowed).
feeds = inputs if isinstance(inputs, dict) else {input_name: inputs}

def plain(value):
    value = np.asarray(value)
    if value.dtype.kind in "SO":
        decode = np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b, otypes=[object])
        return decode(value).tolist() if value.size else value.tolist()
    return value.tolist()

graph = tf.Graph()
with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
    meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
    signature = meta_graph.signature_def[signature_name]
    feed = {signature.inputs[name].name: value for name, value in feeds.items()}
    fetches = {key: info.name for key, info in signature.outputs.items()}
    session_out = session.run(fetches, feed_dict=feed)
    tensor_names = {"inputs": {k: v.name for k, v in signature.inputs.items()}, "outputs": fetches}

loaded = tf.saved_model.load(path)
serve = loaded.signatures[signature_name]
specs = serve.structured_input_signature[1]
eager_out = serve(**{name: tf.constant(value, specs[name].dtype) for name, value in feeds.items()})

print("RESULT " + json.dumps({
    "blocked": blocked,
    "modules": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
    "tensor_names": tensor_names,
    "session": {k: plain(v) for k, v in session_out.items()},
    "eager": {k: plain(v.numpy()) for k, v in eager_out.items()},
}))
'''


class ServingCheckError(RuntimeError):
    """The child process failed to load or run the export."""


def clean_env():
    """The environment for the child: no PYTHONPATH, quiet TensorFlow."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_export(version_dir, inputs, input_name="text", timeout=600, signature="serving_default"):
    """Runs ``inputs`` (list of str, or nested lists of numbers for non-text signatures) through the export at ``version_dir`` in a process
    where the project cannot be imported. ``inputs`` may also be a dict {input name:
    value} for a signature with several inputs (scalars allowed); ``signature`` names
    the SignatureDef to run.

    Returns a dict: ``blocked`` ({"zoo": True, "pipelines": True} when the block held),
    ``modules`` (project modules found loaded: must be empty), ``tensor_names`` (of the
    SignatureDef), and ``session`` / ``eager``: {output name: list} from the TF1
    session path and from ``tf.saved_model.load``. Raises ServingCheckError.
    """
    args = {
        "dir": os.path.abspath(version_dir),
        "inputs": dict(inputs) if isinstance(inputs, dict) else list(inputs),
        "input_name": input_name,
        "signature": signature,
        "blocked": list(BLOCKED),
    }
    with tempfile.TemporaryDirectory() as cwd:
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _CHILD, json.dumps(args)],
            cwd=cwd, env=clean_env(), capture_output=True, text=True, timeout=timeout,
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
