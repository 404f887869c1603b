"""Exports for TensorFlow Serving: versioned, atomic, listed in models.config.

Layout under the base path (default ``saved_models/``)::

    saved_models/models.config          --model_config_file for tensorflow_model_server
    saved_models/<task>/<version>/      one SavedModel per integer version

A version is written to a hidden directory beside the others and renamed into place,
so a server polling ``saved_models/<task>/`` never sees a half-written version (the
rename is atomic on one filesystem; Serving ignores names that are not integers).
"""

import os
import shutil

import keras
import tensorflow as tf

from pipelines.common import config as config_lib

SIGNATURE = "serving_default"


def versions(task_dir):
    """The integer versions present in ``task_dir``, ascending."""
    if not os.path.isdir(task_dir):
        return []
    return sorted(int(n) for n in os.listdir(task_dir) if n.isdigit())


def latest_version_dir(base, task_name):
    task_dir = os.path.join(base, task_name)
    found = versions(task_dir)
    if not found:
        raise FileNotFoundError(
            f"No exported versions in {task_dir}: run `python -m pipelines.{task_name} export` "
            "(or pass --model DIR)."
        )
    return os.path.join(task_dir, str(found[-1]))


def export(serving_model, base, task_name, config=None, meta=None):
    """Writes ``serving_model`` as the next version of ``base/task_name``.

    ``serving_model`` is a Keras layer (or any trackable) whose ``endpoints()`` returns
    {signature name: ``task.Endpoint``}; one must be ``serving_default``. Each endpoint's
    ``example`` request runs once before anything is written (it builds the layers and
    checks that the function works). The endpoints' ``defaults`` go to
    ``assets.extra/signature_defaults.json`` ({signature: {input: value}}) for
    ``predict``; the resolved config and meta to ``assets.extra/`` too (Serving ignores
    that folder). Returns the version directory.
    """
    endpoints = dict(serving_model.endpoints())
    if SIGNATURE not in endpoints:
        raise ValueError(f"{task_name}: the serving model declares no {SIGNATURE!r} endpoint. "
                         f"Received: {sorted(endpoints)}")
    for name, endpoint in endpoints.items():  # builds the layers; a request that must work
        endpoint.fn(*_tensors(endpoint.example, endpoint.inputs))
    # The examples built every sublayer; a server layer called only through methods
    # other than ``call`` (generate, score) is not marked built by Keras itself.
    serving_model.built = True

    task_dir = os.path.join(base, task_name)
    os.makedirs(task_dir, exist_ok=True)
    remove_stale_partials(task_dir)
    tmp = os.path.join(task_dir, f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    for name, endpoint in endpoints.items():
        archive.add_endpoint(name=name, fn=endpoint.fn, input_signature=list(endpoint.inputs))
    archive.write_out(tmp, verbose=False)
    extra = os.path.join(tmp, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    config_lib.write_json(os.path.join(extra, "signature_defaults.json"),
                          {name: dict(e.defaults) for name, e in endpoints.items()})
    if config is not None:
        config_lib.save(config, os.path.join(extra, "config.json"))
    if meta is not None:
        config_lib.write_json(os.path.join(extra, "meta.json"), dict(meta))

    # Versions only grow; retry if another exporter took the number meanwhile.
    while True:
        version = (versions(task_dir) or [0])[-1] + 1
        final = os.path.join(task_dir, str(version))
        try:
            os.rename(tmp, final)
            break
        except OSError:
            if not os.path.exists(final):
                raise
    write_models_config(base)
    return final


def remove_stale_partials(task_dir):
    """Deletes the ``.tmp-<pid>`` directories of exports whose process is gone (killed
    while writing); a live writer's directory is left alone. Returns the removed paths."""
    removed = []
    for name in os.listdir(task_dir):
        pid = name[len(".tmp-"):]
        if not (name.startswith(".tmp-") and pid.isdigit()) or _alive(int(pid)):
            continue
        shutil.rmtree(os.path.join(task_dir, name), ignore_errors=True)
        removed.append(os.path.join(task_dir, name))
    return removed


def _alive(pid):
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def _tensors(values, specs):
    """{name: value} as a list of tensors in the order and dtypes of the specs."""
    names = [spec.name for spec in specs]
    if sorted(values) != sorted(names):
        raise ValueError(f"Expected an example with the inputs {names}. Received: {sorted(values)}")
    return [tf.constant(values[spec.name], dtype=spec.dtype) for spec in specs]


def write_models_config(base):
    """(Re)writes ``base/models.config`` listing every task directory under ``base``."""
    base = os.path.abspath(base)
    names = sorted(
        n for n in os.listdir(base)
        if not n.startswith(".") and os.path.isdir(os.path.join(base, n)) and versions(os.path.join(base, n))
    )
    entries = "".join(
        "  config {\n"
        f'    name: "{n}"\n'
        f'    base_path: "{os.path.join(base, n)}"\n'
        '    model_platform: "tensorflow"\n'
        "  }\n"
        for n in names
    )
    path = os.path.join(base, "models.config")
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("model_config_list {\n" + entries + "}\n")
    os.replace(tmp, path)
    return path


def load_signature(version_dir, signature=SIGNATURE):
    """A signature function of an export (``tf.saved_model.load``)."""
    loaded = tf.saved_model.load(version_dir)
    if signature not in loaded.signatures:
        raise ValueError(f"{version_dir} has no signature {signature!r}. "
                         f"Received: {sorted(loaded.signatures)}")
    return loaded.signatures[signature]


def predict(version_dir, feeds, signature=SIGNATURE, batch_size=256):
    """Runs the batched inputs ``feeds`` ({input name: array, batch first}) through the
    signature of an export, with the export's saved defaults for the other inputs.
    Returns a list of dicts of numpy values, one per row."""
    fn = load_signature(version_dir, signature)
    specs = fn.structured_input_signature[1]
    defaults_path = os.path.join(version_dir, "assets.extra", "signature_defaults.json")
    defaults = config_lib.read_json(defaults_path) if os.path.exists(defaults_path) else {}
    extra = {name: tf.constant(value, dtype=specs[name].dtype)
             for name, value in defaults.get(signature, {}).items() if name not in feeds}
    rows = len(next(iter(feeds.values()))) if feeds else 0
    out_rows = []
    for start in range(0, rows, batch_size):
        batch = {name: tf.constant(value[start:start + batch_size], dtype=specs[name].dtype)
                 for name, value in feeds.items()}
        out = {k: v.numpy() for k, v in fn(**batch, **extra).items()}
        n = len(next(iter(out.values())))
        out_rows.extend({k: v[i] for k, v in out.items()} for i in range(n))
    return out_rows


def text_endpoint(fn, input_name="text", example=("", "a text")):
    """The usual endpoint of a text task: ``fn(strings (batch,)) -> {name: tensor}``,
    one input ``input_name`` of shape (batch,) tf.string."""
    from pipelines.common.task import Endpoint

    return Endpoint(fn=lambda strings: fn(strings),
                    inputs=[tf.TensorSpec((None,), tf.string, name=input_name)],
                    example={input_name: list(example)})
