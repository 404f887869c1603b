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


def export(serving_model, base, task_name, config=None, meta=None, input_name="text"):
    """Writes ``serving_model`` as the next version of ``base/task_name``.

    ``serving_model`` maps a (batch,) string tensor to a dict of named tensors; it
    becomes the ``serving_default`` signature with input ``input_name``. A serving
    model with an ``endpoints()`` method ({name: (fn, input_signature)}) gets those
    signatures instead (one must be ``serving_default``); its ``signature_defaults``
    ({input name: value}) are saved for ``predict`` to fill the non-text inputs. The resolved
    config and meta are written inside the version (``assets.extra/``), which Serving
    ignores. Returns the version directory.
    """
    task_dir = os.path.join(base, task_name)
    os.makedirs(task_dir, exist_ok=True)
    tmp = os.path.join(task_dir, f".tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)

    if not serving_model.built:
        serving_model(tf.constant(["", "a text"]))  # builds the layer; checks an empty input
    archive = keras.export.ExportArchive()
    archive.track(serving_model)
    if hasattr(serving_model, "endpoints"):  # several signatures (generative tasks)
        for name, (fn, input_signature) in serving_model.endpoints().items():
            archive.add_endpoint(name=name, fn=fn, input_signature=input_signature)
    else:
        archive.add_endpoint(
            name=SIGNATURE,
            fn=lambda text: serving_model(text),
            input_signature=[tf.TensorSpec(shape=(None,), dtype=tf.string, name=input_name)],
        )
    archive.write_out(tmp, verbose=False)
    extra = os.path.join(tmp, "assets.extra")
    os.makedirs(extra, exist_ok=True)
    defaults = getattr(serving_model, "signature_defaults", None)
    if defaults:  # values `predict` feeds to the inputs after the first one
        config_lib.write_json(os.path.join(extra, "signature_defaults.json"), dict(defaults))
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


def load_signature(version_dir):
    """The ``serving_default`` function of an export (``tf.saved_model.load``)."""
    return tf.saved_model.load(version_dir).signatures[SIGNATURE]


def predict(version_dir, texts, batch_size=256):
    """Runs raw ``texts`` through an export; returns a list of dicts of numpy values."""
    fn = load_signature(version_dir)
    specs = fn.structured_input_signature[1]
    string_inputs = [name for name, spec in specs.items() if spec.dtype == tf.string]
    input_name = (string_inputs or list(specs))[0]
    defaults_path = os.path.join(version_dir, "assets.extra", "signature_defaults.json")
    defaults = config_lib.read_json(defaults_path) if os.path.exists(defaults_path) else {}
    extra = {name: tf.constant(defaults[name], dtype=spec.dtype)
             for name, spec in specs.items() if name != input_name and name in defaults}
    rows = []
    for start in range(0, len(texts), batch_size):
        out = fn(**{input_name: tf.constant(texts[start:start + batch_size], dtype=tf.string)},
                 **extra)
        out = {k: v.numpy() for k, v in out.items()}
        n = len(next(iter(out.values())))
        rows.extend({k: v[i] for k, v in out.items()} for i in range(n))
    return rows
