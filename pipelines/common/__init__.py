"""The shared skeleton every pipeline plugs into (written once, used by all tasks).

A task package ``pipelines/<task>/`` has the same files as every other:

    config.py    a frozen dataclass config (every field defaulted) and PRESETS
                 {"default": ..., "small": ...}; "small" runs in seconds (tests)
    data.py      the tf.data chain: make_datasets, read_split
    model.py     build_model, search_space, serving_model, evaluate, ...
    __init__.py  TASK = pipelines.common.task.Task(...)
    __main__.py  three lines: ``raise SystemExit(main(TASK))``
    sample.py    generative tasks only: sampling / decoding helpers

The task contract (``Task``, a frozen record of functions; no classes to subclass):

    name            "sentiment": the package, the export directory, the Serving name.
    presets         {name: config}; must hold "default" and "small".
    make_datasets(config, meta=None) -> Datasets(train, valid, test|None, meta, sizes)
                    reads the data the config names; batches are (inputs, targets)
                    for model.fit. ``meta`` (JSON-able: vocabularies, labels...) is
                    learned from the training split, or reused when given (resume,
                    evaluate). Bad input raises textio.DataError("file:line: field ...").
    read_split(config, meta, path) -> tf.data.Dataset
                    a user's file as an evaluation dataset (``evaluate --data FILE``);
                    labels unseen in training raise DataError naming the line.
    build_model(config, meta) -> compiled keras.Model (trained on make_datasets' batches).
    search_space(hp, config) -> config
                    the config with tuned fields drawn from keras-tuner ``hp``; called
                    with the best hp after a search to get the best config.
    serving_model(model, config, meta) -> keras layer/model
                    maps a (batch,) tf.string tensor of RAW inputs to a dict of named
                    tensors: all preprocessing in the graph, readable outputs (label
                    strings, generated text). It becomes the ``serving_default``
                    signature (input "text"); empty and very long inputs must give
                    valid outputs.
    evaluate(model, dataset, config, meta) -> dict
                    JSON-able metrics. A classification report from
                    ``metrics.classification_report`` (accuracy, per_class, confusion)
                    is printed as a table and drawn as confusion.png.
    example_inputs(config, meta) -> list[str]
                    raw inputs the main job runs through the fresh export.
    format_prediction(row) -> str
                    one example's outputs (dict of numpy values) as a short text.
    monitor         "val_loss" (default) or "val_<metric>": checkpoint/early-stopping
                    and tuner objective; "...loss" is minimised, others maximised.
    sample          optional; generative tasks: (model, config, meta, prompt, **kw) -> str.
    combine         optional: (members, config, meta) -> one compiled model made of
                    trained members; lets a config with ``ensemble`` > 1 train that many
                    (``train.fit_ensemble``; sentiment averages probabilities).

Configs must have the fields the skeleton reads: ``seed``, ``epochs``, ``patience``;
and, to take ``--data/--train/--valid/--test``, the fields ``data``, ``train_file``,
``valid_file``, ``test_file``.

How the task kinds fit:
* many-to-one (sentiment): inputs (batch, time) ids, targets (batch,) class index;
  serving returns probabilities, label, label_index.
* many-to-many (ner): targets (batch, time) tags with padding masked (sample weights
  or a masked loss); evaluate returns entity F1 (a classification report over the
  unmasked steps works for the table and the picture); serving returns per-token tags.
* generative (char_lm, music): targets are the inputs shifted by one; ``evaluate``
  returns loss/perplexity; ``serving_model`` runs the sampling loop in the graph
  (prompt string -> generated string); ``sample`` exposes it to Python.
* encoder-decoder (translation): inputs may be a tuple (source, shifted target) for
  teacher forcing; the serving model decodes greedily or by beam search in the graph.

Modules:
    task.py          Task and Datasets.
    config.py        presets, ``--set key=value`` overrides checked for unknown keys and
                     types, the resolved config saved as JSON beside every artifact.
    textio.py        CSV/TSV/JSONL reading, DataError with file:line:field.
    train.py         fit with per-epoch atomic checkpoints: a killed run resumes after
                     its last completed epoch; TensorBoard logs in the work directory;
                     ensembles (members trained in turn, each resumable, then combined).
    metrics.py       classification report, text table, confusion-matrix PNG.
    tune.py          keras-tuner random / bayesian / hyperband search that resumes.
    export.py        saved_models/<task>/<version>/ written aside then renamed, and
                     saved_models/models.config for TensorFlow Serving.
    serving_check.py load an export in a fresh process with the project unimportable,
                     through the TF1 session path (as Serving does) and tf.saved_model.
    cli.py           ``main(task, argv) -> int``: run (default), train, evaluate, tune,
                     export, predict.
"""
