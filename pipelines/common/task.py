"""The record a task hands to the shared skeleton, and the records it is made of.

``Task`` is a frozen record of functions (see ``pipelines.common`` for the contract).
The skeleton knows nothing about a task's inputs: a task declares

* its serving ``Endpoint``s (``serving_model(...).endpoints()``): name, input
  signature, function and a request that works;
* how ``predict`` reads a user's input (``PredictInput``: text lines, a file per
  request, ...) and which endpoint it feeds;
* how ``evaluate`` prints and draws its report (``ReportView``);
* its data flags (``data_flags``: ``--data``, ``--train``..., or a source/target pair).
"""

import dataclasses
import importlib
from typing import Any, Callable, Mapping, Optional, Sequence


def lazy(module, name):
    """``module.name`` (a function), imported at its first call. A task's record names
    its model and data functions this way, so that ``--help``, a bad ``--set`` or a
    missing file answer at once instead of after TensorFlow's import (seconds)."""

    def call(*args, **kwargs):
        return getattr(importlib.import_module(module), name)(*args, **kwargs)

    call.__name__, call.__qualname__ = name, f"{module}.{name}"
    call.__doc__ = f"``{module}.{name}``, imported when first called."
    call.lazy_module = module
    return call


def contract_functions(data_module, model_module):
    """The contract's functions under their usual names and modules (``make_datasets``
    and ``read_split`` in data.py; ``build_model``, ``search_space``, ``serving_model``,
    ``evaluate``, ``example_inputs``, ``format_prediction`` in model.py), each ``lazy``:
    ``Task(name=..., **contract_functions(DATA, MODEL), ...)``."""
    return {**{name: lazy(data_module, name) for name in ("make_datasets", "read_split")},
            **{name: lazy(model_module, name)
               for name in ("build_model", "search_space", "serving_model", "evaluate",
                            "example_inputs", "format_prediction")}}


def _lazy_modules(value):
    """The modules named by the ``lazy`` functions in ``value`` (records, dicts, tuples)."""
    if hasattr(value, "lazy_module"):
        return {value.lazy_module}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return set().union(*(_lazy_modules(getattr(value, f.name))
                             for f in dataclasses.fields(value)))
    if isinstance(value, Mapping):
        return set().union(set(), *(_lazy_modules(v) for v in value.values()))
    if isinstance(value, (tuple, list)):
        return set().union(set(), *(_lazy_modules(v) for v in value))
    return set()


@dataclasses.dataclass(frozen=True)
class Datasets:
    """What ``Task.make_datasets`` returns.

    ``train``/``valid``/``test`` are ``tf.data.Dataset``s of ``(inputs, targets)`` batches
    ready for ``model.fit`` (``test`` may be None). ``meta`` is a JSON-able dict of
    everything learned from the training data that the model, the evaluation and the
    export need (vocabulary, label names...): it is saved beside the model and handed
    back to every later step. ``sizes`` counts examples per split, for the log;
    ``notes`` are lines the user should read (what a repair mode changed).
    """

    train: Any
    valid: Any
    test: Any
    meta: Mapping[str, Any]
    sizes: Mapping[str, int] = dataclasses.field(default_factory=dict)
    notes: Sequence[str] = ()


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """One serving signature of an export.

    ``fn(*tensors) -> {output name: tensor}`` takes the tensors of ``inputs`` in order,
    a list of named ``tf.TensorSpec`` (the SignatureDef's inputs, named by the specs;
    batch first for batched inputs, shape () for scalars). ``example`` ({input name: value}) is a request that must
    work: the export runs it before writing, and the contract test runs it through
    the written export with no project code. ``defaults`` ({input name: value}) are
    what ``predict`` sends for the inputs its reader does not fill (sampling scalars).
    """

    fn: Callable[..., Mapping[str, Any]]
    inputs: Sequence[Any]
    example: Mapping[str, Any]
    defaults: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def input_names(self):
        return [spec.name for spec in self.inputs]


@dataclasses.dataclass(frozen=True)
class PredictInput:
    """How ``predict`` turns what a user gives into requests of one endpoint.

    ``read_text(value)`` makes one item of a ``--text`` value; ``read_file(path)`` the
    items of a ``--file`` (raises ``textio.DataError`` naming the file and line);
    ``feed(items)`` the endpoint's batched inputs {name: array} for a list of items;
    ``show(item)`` the short text printed beside each prediction. ``stdin``: with no
    ``--text``/``--file``, read a piped stdin as a file.

    Optional: ``save(row, item, out_dir, index) -> [paths]`` writes files made from one
    prediction (MIDI, pictures) into ``predict --out``; ``bind(config, meta) ->
    PredictInput`` gives the reader of one trained model (a primer read on the
    model's grid): ``predict`` binds it to the export's saved config and meta, the
    main job to its own (``for_model``); ``file_flags``: other names of ``--file``
    (dna: ``fasta``, for ``predict --fasta FILE``).
    """

    endpoint: str
    read_text: Optional[Callable[[str], Any]]
    read_file: Optional[Callable[[str], list]]
    feed: Callable[[list], Mapping[str, Any]]
    show: Callable[[Any], str]
    stdin: bool = True
    save: Optional[Callable[..., list]] = None
    bind: Optional[Callable[..., "PredictInput"]] = None
    file_flags: tuple = ()

    def for_model(self, config, meta):
        """The reader for the model trained with ``config`` and ``meta``."""
        return self.bind(config, meta) if self.bind else self


@dataclasses.dataclass(frozen=True)
class ReportView:
    """How ``evaluate`` shows a task's report (the dict ``Task.evaluate`` returns).

    ``format(report) -> str`` is printed; ``draw(report, out_dir, title) -> [paths]``
    writes pictures (confusion matrix, attention maps...) beside metrics.json.
    """

    format: Callable[[Mapping[str, Any]], str]
    draw: Callable[[Mapping[str, Any], str, str], list] = lambda report, out_dir, title: []


# ``--flag`` -> config field, for the data of one run (a task may declare its own).
DATA_FLAGS = {
    "data": ("data", "a file (split deterministically), 'embedded' or tfds:NAME"),
    "train": ("train_file", "training file (with --valid, optional --test)"),
    "valid": ("valid_file", "validation file"),
    "test": ("test_file", "test file"),
}


@dataclasses.dataclass(frozen=True)
class Task:
    """A task, as functions. See ``pipelines.common`` for the full contract."""

    name: str
    presets: Mapping[str, Any]
    make_datasets: Callable[..., Datasets]
    read_split: Callable[..., Any]
    build_model: Callable[..., Any]
    search_space: Callable[..., Any]
    serving_model: Callable[..., Any]
    evaluate: Callable[..., Mapping[str, Any]]
    report: ReportView
    predict_input: PredictInput
    example_inputs: Callable[..., list]
    format_prediction: Callable[[Mapping[str, Any]], str]
    monitor: str = "val_loss"
    # Optional: (model, valid dataset, config, meta) -> {name: float}, computed on the
    # validation split after every epoch and logged as val_<name> (training, tuning and
    # the distributed loop alike): a metric the compiled model cannot compute, such as
    # NER's entity F1, becomes a monitor that is comparable across the search space.
    validation_metrics: Optional[Callable[..., Mapping[str, float]]] = None
    # Optional: (members, config, meta) -> one compiled model from trained members (an
    # ensemble; configs with ``ensemble`` > 1, see ``train.fit_ensemble``).
    combine: Optional[Callable[..., Any]] = None
    # Extra subcommands: {name: (add_arguments(parser), run(task, args) -> int)}, e.g.
    # ``score`` and ``sample`` of a language model; they take the common flags too.
    commands: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    data_flags: Mapping[str, Any] = dataclasses.field(default_factory=lambda: dict(DATA_FLAGS))
    default_preset: str = "default"
    test_preset: str = "small"

    def __post_init__(self):
        for name in (self.default_preset, self.test_preset):
            if name not in self.presets:
                raise ValueError(
                    f"Task {self.name!r}: preset {name!r} missing. Received: {sorted(self.presets)}"
                )
        mode = self.monitor_mode
        if mode not in ("min", "max"):
            raise ValueError(f"Expected monitor 'val_<metric>'. Received: monitor={self.monitor!r}")
        fields = {f.name for f in dataclasses.fields(self.presets[self.default_preset])}
        missing = sorted(field for field, _ in self.data_flags.values() if field not in fields)
        if missing:
            raise ValueError(f"Task {self.name!r}: data_flags name config fields {missing} "
                             "that its config does not have.")

    def import_modules(self):
        """Imports the modules of the task's ``lazy`` functions: what registers its Keras
        classes, before a saved model of the task is loaded."""
        for module in sorted(_lazy_modules(self)):
            importlib.import_module(module)

    @property
    def config_class(self):
        return type(self.presets[self.default_preset])

    @property
    def monitor_mode(self):
        """'min' for losses, 'max' for anything else (accuracy, F1)."""
        return "min" if self.monitor.endswith("loss") else "max"
