"""The one command line of every pipeline: ``python -m pipelines.<task> [command]``.

Commands: ``train``, ``evaluate``, ``tune``, ``export``, ``predict``; with no command
the task's main job runs (train, evaluate on the test split, export, show predictions).
``main(task, argv) -> int`` so tests call it in-process; only this module prints.
"""

import argparse
import json
import os
import sys
import time

# TensorFlow's C++ start-up lines (CPU features, absl) are hidden unless --verbose; this
# must be set before TensorFlow is imported, which happens after this module's import.
if "--verbose" not in sys.argv[1:]:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from pipelines.common import config as config_lib  # noqa: E402
from pipelines.common import cluster, distributed_tune  # noqa: E402
from pipelines.common.textio import DataError  # noqa: E402


def build_parser(task):
    parser = argparse.ArgumentParser(
        prog=f"python -m pipelines.{task.name}",
        description=f"The {task.name} pipeline. With no command: train, evaluate, export "
        "and show example predictions.",
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--preset", default=task.default_preset,
                        help=f"named config: {', '.join(task.presets)} (default %(default)s)")
    common.add_argument("--set", dest="overrides", action="append", default=[],
                        metavar="KEY=VALUE", help="change one config field (repeatable)")
    common.add_argument("--workdir", help=f"work directory (default runs/{task.name}/<preset>)")
    common.add_argument("--export-dir", default="saved_models",
                        help="Serving base path (default %(default)s)")
    common.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    common.add_argument("--verbose", action="store_true",
                        help="show TensorFlow's start-up and C++ log lines (hidden by default)")
    data = argparse.ArgumentParser(add_help=False)
    for flag, (_, help_text) in task.data_flags.items():
        data.add_argument(f"--{flag}", dest=flag, help=help_text)
    data.add_argument("--fresh", action="store_true",
                      help="discard an unfinished run in the workdir instead of resuming it")

    sub = parser.add_subparsers(dest="command")
    cluster.add_arguments(
        sub.add_parser("run", parents=[common, data], help="the main job (the default)"))
    cluster.add_arguments(
        sub.add_parser("train", parents=[common, data], help="train (resumes an unfinished run)"))
    p = sub.add_parser("evaluate", parents=[common], help="metrics of the trained model")
    p.add_argument("--data", help="file to evaluate on (default: the test split)")
    p.add_argument("--out", help="directory for metrics.json and confusion.png "
                   "(default <workdir>/eval)")
    p = sub.add_parser("tune", parents=[common, data], help="keras-tuner search (resumable)")
    p.add_argument("--tuner", default="random", choices=["random", "bayesian", "hyperband"])
    p.add_argument("--max-trials", type=int, default=10)
    distributed_tune.add_arguments(p)
    p.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="pin a hyperparameter of the search space (repeatable)")
    p.add_argument("--train-best", action="store_true",
                   help="then train the best config (in <workdir>/best) and export it")
    sub.add_parser("export", parents=[common], help="export the trained model for Serving")
    sub.add_parser("config", parents=[common, data],
                   help="print every config field of the preset (after --set) with its "
                   "value, allowed values and meaning")
    p = sub.add_parser("predict", parents=[common], help="predict through the exported model")
    p.add_argument("--text", action="append", default=[], help="an input (repeatable)")
    names = [f"--{name}" for name in task.predict_input.file_flags]
    p.add_argument("--file", *names, dest="file", action="append", default=[],
                   help="a file of inputs (repeatable; '-' for stdin)"
                   + (f"; also {', '.join(names)}" if names else ""))
    p.add_argument("--model", help="an export version directory (default: the latest under "
                   "--export-dir)")
    p.add_argument("--out", help="directory for the files a task writes from its predictions "
                   "(MIDI, pictures; default <workdir>/predictions)")
    for name, (add_arguments, run) in task.commands.items():
        add_arguments(sub.add_parser(name, parents=[common], help=(run.__doc__ or name).strip()))
    return parser


def main(task, argv=None):
    """Runs the CLI of ``task`` on ``argv`` (default sys.argv[1:]). Returns the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0].startswith("-") and argv[0] not in ("-h", "--help")):
        argv = ["run", *argv]
    args = build_parser(task).parse_args(argv)
    try:
        command = COMMANDS.get(args.command) or task.commands[args.command][1]
        return command(task, args)
    except Exception as e:  # noqa: BLE001 -- the user's mistakes end in one line
        if not isinstance(e, _user_errors()):
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def _user_errors():
    """The exceptions that are the user's to fix: printed as one line, exit code 2.
    (train's ResumeError counts only once train is imported: no TensorFlow import for
    a run that ends before training.)"""
    errors = [DataError, config_lib.ConfigError, UsageError, FileNotFoundError]
    train = sys.modules.get("pipelines.common.train")
    if train is not None:
        errors.append(train.ResumeError)
    return tuple(errors)


class UsageError(ValueError):
    """A command used in a way that cannot work (nothing to predict, no test split)."""


def resolve_config(task, args):
    config = config_lib.from_preset(task.presets, args.preset)
    values = {
        field: getattr(args, flag)
        for flag, (field, _) in task.data_flags.items()
        if getattr(args, flag, None) is not None
    }
    return config_lib.override(config, args.overrides, **values)


def workdir_of(task, args):
    return args.workdir or os.path.join("runs", task.name, args.preset)


def _verbose(args):
    if args.quiet:
        return 0
    return 1 if sys.stdout.isatty() else 2


def _say(args, *lines):
    for line in lines:
        print(line, flush=True)


def _train(task, args, config, workdir):
    from pipelines.common import distribute, train

    started = time.time()
    fresh = getattr(args, "fresh", False)
    if not fresh:  # before reading the data: answers at once
        train.refuse_finished_run(workdir, config)
    strategy = cluster.strategy_from_args(args)  # before any TensorFlow op
    datasets = task.make_datasets(config)
    sizes = ", ".join(f"{k} {v}" for k, v in datasets.sizes.items())
    _say(args, f"[{task.name}] data: {sizes}; work directory {workdir}", *datasets.notes)
    if not fresh:
        point = train.resume_point(workdir)
        if point and point[0] == "members":
            _say(args, f"resuming: ensemble members {point[1]} are already trained")
        elif point:
            _say(args, f"resuming after epoch {point[1]} (pass --fresh to start over)")
    model, info = distribute.fit(task, config, workdir, datasets, strategy,
                                 verbose=_verbose(args), fresh=fresh)
    if not info["chief"]:  # multi-worker: the chief reports and writes the artifacts
        _say(args, f"worker trained {info['epochs_run']} epochs in {time.time() - started:.0f} s; "
                   f"examples per epoch on this worker: {info['seen']}; "
                   f"weights {info['weights_digest']}")
        return model, datasets, info
    _say(args, f"trained {info['epochs_run']} epochs in {time.time() - started:.0f} s; "
               f"best {task.monitor} {info['best']:.4f}")
    return model, datasets, info


def cmd_train(task, args):
    config = resolve_config(task, args)
    _train(task, args, config, workdir_of(task, args))
    return 0


def _report(task, args, report, out_dir, title, config):
    os.makedirs(out_dir, exist_ok=True)
    config_lib.write_json(os.path.join(out_dir, "metrics.json"), report)
    config_lib.save(config, os.path.join(out_dir, "config.json"))
    _say(args, task.report.format(report))
    drawn = [os.path.basename(path) for path in task.report.draw(report, out_dir, title)]
    _say(args, f"wrote {out_dir}/metrics.json" + "".join(f" and {name}" for name in drawn))


def cmd_evaluate(task, args):
    from pipelines.common import train

    workdir = workdir_of(task, args)
    model, config, meta = train.load_trained(workdir, task.config_class, task)
    config = config_lib.override(config, args.overrides)  # e.g. the columns of --data FILE
    if args.data:
        dataset, name = task.read_split(config, meta, args.data), args.data
    else:
        datasets = task.make_datasets(config, meta=meta)
        if datasets.test is None:
            raise UsageError("This run's data has no test split: pass --data FILE.")
        dataset, name = datasets.test, "test split"
    report = task.evaluate(model, dataset, config, meta)
    _say(args, f"[{task.name}] evaluation on {name}:")
    _report(task, args, report, args.out or os.path.join(workdir, "eval"), f"{task.name}: {name}",
            config)
    return 0


def _export(task, args, model, config, meta):
    from pipelines.common import export

    path = export.export(task.serving_model(model, config, meta), args.export_dir, task.name,
                         config=config, meta=meta)
    _say(args, f"exported {path} (and {os.path.join(args.export_dir, 'models.config')})")
    return path


def cmd_export(task, args):
    from pipelines.common import train

    model, config, meta = train.load_trained(workdir_of(task, args), task.config_class, task)
    _export(task, args, model, config, meta)
    return 0


def _show_predictions(task, args, version_dir, items, reader, out_dir):
    """Runs ``items`` of ``reader`` (the task's ``predict_input``) through the export
    and prints a line per item: the prediction (and the files ``reader.save`` wrote
    into ``out_dir``), then the input shown short."""
    from pipelines.common import export

    rows = export.predict(version_dir, reader.feed(items), signature=reader.endpoint) if items else []
    for index, (item, row) in enumerate(zip(items, rows)):
        shown = task.format_prediction(row)
        if reader.save is not None:
            shown += " -> " + ", ".join(reader.save(row, item, out_dir, index))
        _say(args, f"{shown:<28} {reader.show(item)}")


def export_reader(task, version_dir):
    """The task's ``predict_input`` bound to the config and meta saved in an export."""
    reader = task.predict_input
    if reader.bind is None:
        return reader
    extra = os.path.join(version_dir, "assets.extra")
    return reader.for_model(config_lib.load(task.config_class, os.path.join(extra, "config.json")),
                            config_lib.read_json(os.path.join(extra, "meta.json")))


def cmd_predict(task, args):
    from pipelines.common import export

    if args.model:  # which export first: its config says how to read the inputs
        if not os.path.isfile(os.path.join(args.model, "saved_model.pb")):
            raise UsageError(f"{args.model}: not an export version directory (no saved_model.pb).")
        version_dir = args.model
    else:
        version_dir = export.latest_version_dir(args.export_dir, task.name)
    reader = export_reader(task, version_dir)
    items = [reader.read_text(text) for text in args.text]
    for path in args.file:
        if path == "-":
            items += _read_stdin(reader)
        else:
            items += reader.read_file(path)
    if not args.text and not args.file:
        if sys.stdin is None or sys.stdin.isatty() or not reader.stdin:
            raise UsageError("Nothing to predict: pass --text or --file FILE"
                             + (", or pipe lines to stdin." if reader.stdin else "."))
        items = _read_stdin(reader)
        if not items:
            raise UsageError("Nothing to predict: stdin was empty.")
    out_dir = args.out or os.path.join(workdir_of(task, args), "predictions")
    _show_predictions(task, args, version_dir, items, reader, out_dir)
    return 0


def _read_stdin(reader):
    """The items of a piped stdin, read as the reader reads a file."""
    import tempfile

    with tempfile.NamedTemporaryFile(suffix=".stdin") as f:
        f.write(sys.stdin.buffer.read() if hasattr(sys.stdin, "buffer") else sys.stdin.read().encode())
        f.flush()
        try:
            return reader.read_file(f.name)
        except DataError as e:
            raise UsageError(str(e).replace(f.name, "<stdin>")) from None


def cmd_tune(task, args):
    from pipelines.common import tune

    config = resolve_config(task, args)
    workdir = workdir_of(task, args)
    role = distributed_tune.prepare(args)  # --distributed: keras-tuner's chief or worker
    datasets = task.make_datasets(config)
    fixed = {}
    for pair in args.fix:
        name, sep, text = pair.partition("=")
        if not sep:
            raise UsageError(f"Expected --fix NAME=VALUE. Received: {pair!r}")
        try:
            fixed[name] = json.loads(text)
        except json.JSONDecodeError:
            fixed[name] = text
    with distributed_tune.watch(role, args.connect_timeout):
        best_config, values, summary = tune.search(task, config, datasets, workdir, args.tuner,
                                                   args.max_trials, verbose=_verbose(args),
                                                   fixed=fixed)
    if best_config is None:
        _say(args, f"[{task.name}] {summary['tuner_id']}: search over; the chief holds the results")
        return 0
    _say(args, f"[{task.name}] {summary['trials']} trials; best {task.monitor} "
               f"{summary['best_score']:.4f} with {json.dumps(values)}",
         f"wrote {os.path.join(workdir, 'tune', args.tuner, 'best_config.json')}")
    if args.train_best:
        best_dir = os.path.join(workdir, "best")
        model, datasets, _ = _train(task, args, best_config, best_dir)
        if datasets.test is not None:
            _report(task, args, task.evaluate(model, datasets.test, best_config, datasets.meta),
                    os.path.join(best_dir, "eval"), f"{task.name}: test split", best_config)
        _export(task, args, model, best_config, datasets.meta)
    return 0


def cmd_run(task, args):
    config = resolve_config(task, args)
    workdir = workdir_of(task, args)
    model, datasets, info = _train(task, args, config, workdir)
    if not info["chief"]:
        return 0
    # Tasks without a test split (a language model on one corpus) report validation.
    split, dataset = ("test", datasets.test) if datasets.test is not None else ("validation", datasets.valid)
    _say(args, f"[{task.name}] {split} metrics:")
    _report(task, args, task.evaluate(model, dataset, config, datasets.meta),
            os.path.join(workdir, "eval"), f"{task.name}: {split} split", config)
    version_dir = _export(task, args, model, config, datasets.meta)
    _say(args, f"[{task.name}] example predictions through the export:")
    reader = task.predict_input.for_model(config, datasets.meta)
    _show_predictions(task, args, version_dir,
                      [reader.read_text(v) for v in task.example_inputs(config, datasets.meta)],
                      reader, os.path.join(workdir, "samples"))
    return 0


def cmd_config(task, args):
    config = resolve_config(task, args)
    base = task.presets[args.preset]
    _say(args, f"[{task.name}] preset {args.preset}" + (" (* changed by the command line)"
                                                        if config != base else ""))
    _say(args, *config_lib.describe(config, base))
    return 0


COMMANDS = {
    "config": cmd_config,
    "run": cmd_run,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "tune": cmd_tune,
    "export": cmd_export,
    "predict": cmd_predict,
}
