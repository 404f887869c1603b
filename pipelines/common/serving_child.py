"""The child process of ``serving_check.run_export``: runs an export with no project code.

    python -m pipelines.common.serving_child ARGS_JSON

ARGS_JSON is {"dir": SavedModel directory, "requests": [{"inputs": a list (fed to
"input_name") or {input name: value}, "input_name", "signature"}], "blocked": top-level
package names}.

Starting with ``-m`` imports the packages ``pipelines`` and ``pipelines.common``
first, so before TensorFlow is imported ``main`` puts a finder first on
``sys.meta_path`` that refuses every module of the blocked packages (an editable
install cannot reach them either), removes the ones already loaded from
``sys.modules`` and tries to import some back (each must fail). Then it loads the
export twice, TF1-style as TensorFlow Serving does
(``tf.compat.v1.saved_model.loader.load`` + ``session.run`` on the SignatureDef's
tensor names) and TF2-style (``tf.saved_model.load(...).signatures[...]``), runs every
request through both, and prints one line ``RESULT {json}`` with ``blocked``,
``unloaded``, ``probes``, ``modules`` and ``results`` (per request: ``tensor_names``,
``session`` and ``eager``; see ``serving_check.run_exports``).

This module imports only the standard library, NumPy and TensorFlow.
"""

import importlib
import importlib.abc
import json
import os
import sys

# Imports tried after the block: each must raise ImportError.
PROBES = ("zoo", "zoo.cells", "pipelines", "pipelines.common", "pipelines.common.serving_child",
          "pipelines.sentiment")


class Block(importlib.abc.MetaPathFinder):
    """A finder that refuses every module of the ``blocked`` top-level packages."""

    def __init__(self, blocked):
        self.blocked = tuple(blocked)

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            raise ImportError(f"{name} is blocked: exports must run without project code")
        return None


def block(blocked):
    """Blocks the packages ``blocked`` in this process and unloads their modules.

    Returns (unloaded module names, {package: True if importing it fails}, {probe
    name: the ImportError's message, or None if the import worked})."""
    sys.meta_path.insert(0, Block(blocked))
    unloaded = sorted(m for m in sys.modules if m.split(".")[0] in blocked)
    for name in unloaded:
        del sys.modules[name]
    importlib.invalidate_caches()
    held = {}
    for name in blocked:
        try:
            importlib.import_module(name)
            held[name] = False
        except ImportError:
            held[name] = name not in sys.modules
    probes = {}
    for name in PROBES:
        try:
            importlib.import_module(name)
            probes[name] = None
        except ImportError as e:
            probes[name] = str(e)
    return unloaded, held, probes


def _plain(value):
    """A NumPy output as JSON-ready lists (bytes decoded as UTF-8)."""
    import numpy as np

    value = np.asarray(value)
    if value.dtype.kind in "SO":
        decode = np.vectorize(lambda b: b.decode("utf-8") if isinstance(b, bytes) else b,
                              otypes=[object])
        return decode(value).tolist() if value.size else value.tolist()
    return value.tolist()


def run(path, requests):
    """[{tensor_names, session, eager}] of ``requests`` [(feeds {input name: value},
    signature name)] through the SavedModel at ``path``, loaded once by the TF1 session
    path and once by ``tf.saved_model.load``. TensorFlow Text's ops are registered
    first when it is installed (TensorFlow Serving's model server has them built in;
    subword translation exports use them)."""
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401 -- registers its ops
    except ImportError:
        pass

    results = []
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], path)
        for feeds, signature_name in requests:
            signature = meta_graph.signature_def[signature_name]
            feed = {signature.inputs[name].name: value for name, value in feeds.items()}
            fetches = {key: info.name for key, info in signature.outputs.items()}
            session_out = session.run(fetches, feed_dict=feed)
            results.append({
                "tensor_names": {"inputs": {k: v.name for k, v in signature.inputs.items()},
                                 "outputs": fetches},
                "session": {k: _plain(v) for k, v in session_out.items()}})

    loaded = tf.saved_model.load(path)
    for (feeds, signature_name), result in zip(requests, results):
        serve = loaded.signatures[signature_name]
        specs = serve.structured_input_signature[1]
        eager_out = serve(**{name: tf.constant(value, specs[name].dtype)
                             for name, value in feeds.items()})
        result["eager"] = {k: _plain(v.numpy()) for k, v in eager_out.items()}
    return results


def from_json(value):
    """JSON values back to feeds: {"b64": text} is bytes (TensorFlow Serving's REST
    convention for binary strings), lists recursively."""
    import base64

    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: from_json(v) for k, v in value.items()}
    return value


def main(argv):
    args = json.loads(argv[0])
    blocked = tuple(args["blocked"])
    unloaded, held, probes = block(blocked)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    requests = []
    for request in args["requests"]:
        inputs = from_json(request["inputs"])
        # One input (the list under input_name) or several ({input name: value}, scalars allowed).
        feeds = inputs if isinstance(inputs, dict) else {request["input_name"]: inputs}
        requests.append((feeds, request["signature"]))
    results = run(args["dir"], requests)
    print("RESULT " + json.dumps({
        "blocked": held,
        "unloaded": unloaded,
        "probes": probes,
        "modules": sorted(m for m in sys.modules if m.split(".")[0] in blocked),
        "results": results,
    }), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
