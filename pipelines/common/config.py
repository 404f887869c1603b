"""Frozen dataclass configs: presets, checked overrides, saving beside artifacts.

A task's config is a frozen dataclass; its presets are instances. The command line
changes fields with ``--set key=value``: unknown keys, values of the wrong type and
values outside a ``typing.Literal`` field's choices are refused, naming the valid keys
or values. ``save``/``load`` write the resolved config as JSON next to every artifact
so that later steps (evaluate, export) read it back.

``BaseConfig`` holds the data, recurrent-model and optimisation fields every task has,
``SplitConfig`` adds those of tasks that split labelled examples (sentiment, NER);
a task config inherits one and redeclares a field to change its default. ``adam`` and
``choose_cell`` are the compile and search-space pieces of those fields.
"""

import dataclasses
import json
import os
import types
import typing
from typing import Annotated, Literal, Optional

# The zoo's cells (zoo.cells.CELLS, in that order: the keras-tuner search space's
# order), named here so that reading a config does not import Keras.
CELL_NAMES = ("rnn", "simplified_gru", "gru", "lstm", "peephole_lstm")
Cell = Literal[CELL_NAMES]


class ConfigError(ValueError):
    """A bad preset name, override key or override value."""


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number field accepts, declared with the field:
    ``dropout: Annotated[float, Range(0, 1, high_open=True)] = 0.0`` is [0, 1).
    ``None`` leaves a side unbounded."""

    low: Optional[float] = None
    high: Optional[float] = None
    low_open: bool = False
    high_open: bool = False

    def __str__(self):
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {self.low:g}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {self.high:g}"
        return (f"{'(' if self.low_open else '['}{self.low:g}, {self.high:g}"
                f"{')' if self.high_open else ']'}")

    def contains(self, value):
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        if self.high is not None and (value >= self.high if self.high_open else value > self.high):
            return False
        return value == value  # NaN is in no range


def ranges(config_class):
    """{field: Range} declared for the fields of ``config_class`` or of a base class (a
    subclass that redeclares a field to change its default keeps the base's range)."""
    found = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        for name, tp in typing.get_type_hints(klass, include_extras=True).items():
            for limit in getattr(tp, "__metadata__", ()):
                if isinstance(limit, Range):
                    found[name] = limit
    return found


def require(ok, key, expects, received):
    """ConfigError "Config key 'key' expects <expects>. Received: <received>" unless ``ok``
    (the cross-field checks of task configs)."""
    if not ok:
        raise ConfigError(f"Config key {key!r} expects {expects}. Received: {received!r}")


def check_ranges(config):
    """Raises ConfigError for a field outside its declared ``Range``."""
    for name, limit in ranges(type(config)).items():
        value = getattr(config, name)
        if value is not None and not limit.contains(value):
            raise ConfigError(f"Config key {name!r} expects a value {limit}. Received: {value!r}")


AtLeast1 = Range(1)
NonNegative = Range(0)
Positive = Range(0, low_open=True)
Fraction = Range(0, 1, high_open=True)  # [0, 1): dropout rates, split fractions


@dataclasses.dataclass(frozen=True)
class BaseConfig:
    """The fields every task config has (the skeleton reads seed, epochs, patience and
    the data fields). Enumerated fields (``Literal``) are checked on construction."""

    # Data. ``data``: "embedded" (the task's bundled corpus) or a file; train_file +
    # valid_file (+ test_file): explicit splits instead.
    data: str = "embedded"
    train_file: Optional[str] = None
    valid_file: Optional[str] = None
    test_file: Optional[str] = None
    valid_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.1
    vocab_size: Annotated[int, Range(3)] = 20000
    # Model: a zoo recurrent stack.
    cell: Cell = "lstm"
    units: Annotated[int, AtLeast1] = 64
    num_layers: Annotated[int, AtLeast1] = 1
    dropout: Annotated[float, Fraction] = 0.0
    # Optimisation: Adam, gradients clipped to norm clipnorm (0 = off), early stopping
    # after `patience` epochs without improvement (0 = never stop early).
    learning_rate: Annotated[float, Positive] = 2e-3
    clipnorm: Annotated[float, NonNegative] = 1.0
    # "adam": Keras' Adam; "fused_adam": Adam's update as one TensorFlow kernel per
    # variable (zoo.optimizers.FusedAdam; faster with large embeddings; where a batch
    # looks up a row twice, Adam's v of the summed gradient, which Keras' Adam is not);
    # "lazy_adam": embeddings move only at the rows a batch looks up (zoo.optimizers.
    # LazyAdam); faster with large vocabularies, not the same updates as Adam's.
    optimizer: Literal["adam", "fused_adam", "lazy_adam"] = "adam"
    batch_size: Annotated[int, AtLeast1] = 64
    # Training (and evaluation) steps per call of Keras' compiled function (compile's
    # steps_per_execution): fewer round trips between Python and the graph (a sentiment
    # model of 1.8 M weights: epoch 1.4-1.8x faster at 32; the default model of 5.4 M,
    # whose step is its optimizer's memory traffic: no faster; benchmarks/RESULTS.md);
    # batch-level callbacks see every Nth batch. The distributed loop ignores it.
    steps_per_execution: Annotated[int, AtLeast1] = 1
    epochs: Annotated[int, AtLeast1] = 10
    patience: Annotated[int, NonNegative] = 3
    seed: int = 0
    # Keras dtype policy of the model: "mixed_bfloat16" computes in bfloat16 with float32
    # weights (zoo recurrences keep their states in float32; heads, CRF and losses stay
    # float32); faster only where the CPU multiplies bfloat16 fast (benchmarks).
    precision: Literal["float32", "mixed_bfloat16"] = "float32"

    def __post_init__(self):
        for name, tp in typing.get_type_hints(type(self)).items():
            if _choices(tp):
                check_value(getattr(self, name), tp, name)
        check_ranges(self)


@dataclasses.dataclass(frozen=True)
class SplitConfig(BaseConfig):
    """``BaseConfig`` and the fields of tasks whose labelled examples are split and
    vectorized word by word (sentiment, NER)."""

    # --data FILE is split deterministically (seeded); max_examples > 0 keeps a seeded
    # subset of that many examples in all (tests); "tfds:NAME" reads from tfds_data_dir.
    test_fraction: Annotated[float, Fraction] = 0.1
    max_examples: Annotated[int, NonNegative] = 0
    tfds_data_dir: Optional[str] = None
    min_count: Annotated[int, AtLeast1] = 2  # rarer words become [UNK], so the model learns what [UNK] means
    max_length: Annotated[int, AtLeast1] = 64  # words per example (longer ones are truncated or cut)
    word_dropout: Annotated[float, Fraction] = 0.1  # training words replaced by [UNK]


def adam(config, learning_rate=None, global_clipnorm=False):
    """``keras.optimizers.Adam`` (or ``zoo.optimizers.FusedAdam`` / ``LazyAdam``:
    ``config.optimizer``)
    at ``learning_rate`` (default ``config.learning_rate``;
    a schedule works too) clipping each gradient's norm to ``config.clipnorm`` (0 = no
    clipping), or with ``global_clipnorm`` the norm of all gradients together."""
    import keras

    from zoo.optimizers import FusedAdam, LazyAdam

    clip = config.clipnorm or None
    rate = config.learning_rate if learning_rate is None else learning_rate
    kind = {"adam": keras.optimizers.Adam, "fused_adam": FusedAdam,
            "lazy_adam": LazyAdam}[config.optimizer]
    if global_clipnorm:
        return kind(rate, global_clipnorm=clip)
    return kind(rate, clipnorm=clip)


def choose_cell(hp, config):
    """keras-tuner's choice of a zoo cell (``CELL_NAMES``), ``config.cell`` by default."""
    return hp.Choice("cell", list(CELL_NAMES), default=config.cell)


def language_model_space(hp, config):
    """The search space of a recurrent language model (char_lm, music): ``config`` with
    cell, units (64..512), num_layers (1..3), dropout (0..0.5) and learning_rate (5e-4..
    1e-2, log) drawn from ``hp``, each defaulting to the config's value."""
    return dataclasses.replace(
        config,
        cell=choose_cell(hp, config),
        units=hp.Choice("units", sorted({64, 128, 256, 512, config.units}), default=config.units),
        num_layers=hp.Int("num_layers", 1, 3, default=config.num_layers),
        dropout=hp.Float("dropout", 0.0, 0.5, step=0.1, default=config.dropout),
        learning_rate=hp.Float("learning_rate", 5e-4, 1e-2, sampling="log",
                               default=config.learning_rate),
    )


def field_comments(config_class):
    """{field: its comment in the source}: the comment at the end of the field's line,
    else the comment block just above it (the first field of a group)."""
    import inspect
    import re

    comments = {}
    for klass in reversed(config_class.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        block = []
        for line in inspect.getsource(klass).splitlines():
            stripped = line.strip()
            if stripped.startswith("#"):
                block.append(stripped.lstrip("# "))
                continue
            match = re.match(r"\s+(\w+)\s*:[^=]*=.*?(?:#\s*(.*))?$", line)
            if match and match.group(1) in {f.name for f in dataclasses.fields(klass)}:
                comment = match.group(2) or " ".join(block)
                if comment or match.group(1) not in comments:
                    comments[match.group(1)] = comment or ""
            block = []
    return comments


def describe(config, base=None):
    """Every field of ``config`` as text lines: name, value, allowed values or range,
    and its comment; ``*`` marks the fields that differ from ``base``."""
    hints = typing.get_type_hints(type(config))
    limits = ranges(type(config))
    comments = field_comments(type(config))
    rows = []
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        choices = _choices(hints[field.name])
        allowed = (f"one of {', '.join(choices)}" if choices else
                   str(limits[field.name]) if field.name in limits else "")
        changed = "*" if base is not None and getattr(base, field.name) != value else " "
        rows.append((f"{changed}{field.name}", json.dumps(to_dict(config)[field.name]), allowed,
                     comments.get(field.name, "")))
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    return [f"{a:<{widths[0]}}  {b:<{widths[1]}}  {c:<{widths[2]}}  {d}".rstrip()
            for a, b, c, d in rows]


def from_preset(presets, name):
    if name not in presets:
        raise ConfigError(f"Unknown preset {name!r}. Expected one of {sorted(presets)}.")
    return presets[name]


def override(config, pairs=(), **values):
    """``config`` with fields replaced from ``"key=value"`` strings and keyword values.

    String values are parsed by the field's annotated type (int, float, bool, str,
    Literal choices, tuples of those, Optional of those). Raises ConfigError naming the key and value.
    """
    fields = {f.name: f for f in dataclasses.fields(config)}
    hints = typing.get_type_hints(type(config))
    changes = {}
    for pair in pairs:
        if "=" not in pair:
            raise ConfigError(f"Expected key=value. Received: {pair!r}")
        key, text = pair.split("=", 1)
        key = key.strip()
        _check_key(key, fields)
        changes[key] = parse_value(text.strip(), hints[key], key)
    for key, value in values.items():
        _check_key(key, fields)
        changes[key] = check_value(value, hints[key], key)
    return dataclasses.replace(config, **changes)


def _check_key(key, fields):
    if key not in fields:
        raise ConfigError(f"Unknown config key {key!r}. Valid keys: {', '.join(sorted(fields))}.")


def _choices(tp):
    """The values of a ``Literal`` (or ``Optional[Literal]``) type; () for other types."""
    base, _ = _unwrap_optional(tp)
    return typing.get_args(base) if typing.get_origin(base) is Literal else ()


def _refuse_choice(key, choices, received):
    return ConfigError(f"Config key {key!r} expects one of {sorted(choices)}. Received: {received!r}")


def _unwrap_optional(tp):
    args = typing.get_args(tp)
    if typing.get_origin(tp) in (typing.Union, types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return rest[0], True
    return tp, False


def parse_value(text, tp, key):
    """Parses the command-line ``text`` for a field of type ``tp``."""
    base, optional = _unwrap_optional(tp)
    if optional and text.lower() in ("none", "null", ""):
        return None
    if typing.get_origin(base) is tuple:
        (item,) = typing.get_args(base)[:1]
        parts = [p for p in text.strip("()[] ").split(",") if p.strip()]
        return tuple(parse_value(p.strip(), item, key) for p in parts)
    choices = _choices(base)
    if choices:
        if text not in choices:
            raise _refuse_choice(key, choices, text)
        return text
    try:
        if base is bool:
            lowered = text.lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if base is int:
            return int(text)
        if base is float:
            return float(text)
    except ValueError:
        raise ConfigError(
            f"Config key {key!r} expects {base.__name__}. Received: {text!r}"
        ) from None
    return text


def check_value(value, tp, key):
    """Checks a Python ``value`` against ``tp`` (ints are accepted for floats)."""
    base, optional = _unwrap_optional(tp)
    if value is None and optional:
        return None
    if typing.get_origin(base) is tuple:
        if not isinstance(value, (tuple, list)):
            raise ConfigError(f"Config key {key!r} expects a tuple. Received: {value!r}")
        (item,) = typing.get_args(base)[:1]
        return tuple(check_value(v, item, key) for v in value)
    choices = _choices(base)
    if choices:
        if not isinstance(value, str) or value not in choices:
            raise _refuse_choice(key, choices, value)
        return value
    ok = (
        isinstance(value, bool)
        if base is bool
        else isinstance(value, (int, float)) and not isinstance(value, bool)
        if base is float
        else isinstance(value, base) and not (base is int and isinstance(value, bool))
    )
    if not ok:
        raise ConfigError(
            f"Config key {key!r} expects {getattr(base, '__name__', base)}. Received: {value!r}"
        )
    return float(value) if base is float else value


def to_dict(config):
    return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(config).items()}


def save(config, path):
    """Writes the config as JSON (atomically: a temporary file renamed into place)."""
    write_json(path, to_dict(config))


def load(config_class, path):
    """Reads a config written by ``save`` back into ``config_class``."""
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    defaults = config_class()
    known = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown config keys {unknown}.")
    return override(defaults, **data)


def write_json(path, data):
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")
    os.replace(tmp, path)


def read_json(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)
