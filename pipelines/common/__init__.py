"""The shared skeleton every pipeline plugs into (written once, used by all tasks).

A task package ``pipelines/<task>/`` has the same files as every other:

    config.py    a frozen dataclass config (every field defaulted) and PRESETS
                 {"default": ..., "small": ...}; "small" runs in seconds (tests)
    data.py      the tf.data chain: make_datasets, read_split
    model.py     build_model, search_space, serving_model, evaluate, ...
    __init__.py  TASK = pipelines.common.task.Task(...)
    __main__.py  three lines: ``raise SystemExit(main(TASK))``
    sample.py    generative tasks only: sampling / decoding helpers

The task contract (``task.Task``, a frozen record of functions and small records; no
classes to subclass). The skeleton assumes nothing about a task's inputs or outputs:

    name            "sentiment": the package, the export directory, the Serving name.
    presets         {name: config}; must hold "default" and "small".
    make_datasets(config, meta=None) -> Datasets(train, valid, test|None, meta, sizes)
                    reads the data the config names; batches are (inputs, targets)
                    for model.fit. ``meta`` (JSON-able: vocabularies, labels...) is
                    learned from the training split, or reused when given (resume,
                    evaluate). Bad input raises textio.DataError("file:line: field ...").
    read_split(config, meta, path) -> tf.data.Dataset
                    a user's file as an evaluation dataset (``evaluate --data FILE``).
    build_model(config, meta) -> compiled keras.Model (trained on make_datasets' batches).
    search_space(hp, config) -> config
                    the config with tuned fields drawn from keras-tuner ``hp``; called
                    with the best hp after a search to get the best config.
    serving_model(model, config, meta) -> a Keras layer whose ``endpoints()`` returns
                    {signature name: Endpoint(fn, inputs, example, defaults)}: the
                    export's signatures (one is "serving_default"), all pre- and
                    post-processing in the graph; ``example`` is a request that works
                    (the export runs it; the contract test runs it from the export).
    evaluate(model, dataset, config, meta) -> dict of JSON-able metrics (metrics.json).
    report          ReportView(format, draw): how evaluate prints the dict and what it
                    draws beside metrics.json (``metrics.CLASSIFICATION``: a table and
                    confusion.png; ``metrics.SCALARS``: numbers on one line).
    predict_input   PredictInput: how ``predict`` reads a user's input (``--text``,
                    ``--file``, stdin) into requests of one endpoint
                    (``inputs.text_lines``, ``inputs.whole_files`` for WAV/MIDI...);
                    optional ``bind(config, meta)`` (a reader for one trained model:
                    ``predict`` binds it to the export's saved config and meta) and
                    ``save`` (files written from a prediction into ``--out``).
    example_inputs(config, meta) -> list of ``--text`` values the main job predicts.
    format_prediction(row) -> str: one request row's outputs (numpy values) as text.
    monitor         "val_loss" (default) or "val_<metric>": checkpoint/early-stopping
                    and tuner objective; "...loss" is minimised, others maximised.
    data_flags      {flag: (config field, help)}: the data options of train/tune/run
                    (default --data/--train/--valid/--test; a task with source/target
                    files declares its own pair).
    combine         optional: (members, config, meta) -> one compiled model made of
                    trained members; lets a config with ``ensemble`` > 1 train that many
                    (``train.fit_ensemble``; sentiment averages probabilities).
    commands        optional extra subcommands {name: (add_arguments, run)}.

Configs must have the fields the skeleton reads: ``seed``, ``epochs``, ``patience``, and
the fields their ``data_flags`` name. ``tests/pipelines/test_contract.py`` checks every
task package it finds against this contract.

Modules:
    task.py          Task, Datasets, Endpoint, PredictInput, ReportView; ``lazy`` (a
                     task's functions imported at first call: --help needs no TensorFlow).
    inputs.py        the usual PredictInputs: text lines, whole files.
    config.py        BaseConfig/SplitConfig (the shared fields), presets, ``--set
                     key=value`` checked for unknown keys, types, Literal choices and
                     Annotated Ranges; the resolved config saved as JSON beside artifacts.
    data.py          what the tasks' tf.data chains share: deterministic split,
                     subsetting, vocabulary, length bucketing, seeded word dropout.
    textio.py        CSV/TSV/JSONL reading, DataError with file:line:field.
    train.py         the one run state (RunState: resume, best weights, patience,
                     history, the config check) of both training loops; fit with
                     per-epoch atomic checkpoints; ensembles; validation_metrics.
    distribute.py    the distributed fit (mirrored / multi-worker custom loop) on RunState.
    cluster.py       TF_CONFIG parsing, port checks, rendezvous, strategy set-up;
                     watcher.py the watchdog process (``python -m``).
    distributed_tune.py  keras-tuner's own chief/worker mode, bounded waits.
    metrics.py       classification report, text table, confusion-matrix PNG; the
                     CLASSIFICATION and SCALARS report views.
    tune.py          keras-tuner random / bayesian / hyperband search that resumes.
    export.py        saved_models/<task>/<version>/ written aside then renamed (stale
                     partial versions removed), saved_models/models.config for Serving.
    serving_check.py load an export in a fresh process with the project unimportable
                     (serving_child.py, run with ``python -m``), through the TF1 session
                     path (as Serving does) and tf.saved_model.
    cli.py           ``main(task, argv) -> int``: run (default), train, evaluate, tune,
                     export, predict, config.
"""
