"""Frozen dataclass configs: presets, checked overrides, saving beside artifacts.

A task's config is a frozen dataclass; its presets are instances. The command line
changes fields with ``--set key=value``: unknown keys and values of the wrong type are
refused with the list of valid keys. ``save``/``load`` write the resolved config as JSON
next to every artifact so that later steps (evaluate, export) read it back.
"""

import dataclasses
import json
import os
import types
import typing


class ConfigError(ValueError):
    """A bad preset name, override key or override value."""


def from_preset(presets, name):
    if name not in presets:
        raise ConfigError(f"Unknown preset {name!r}. Expected one of {sorted(presets)}.")
    return presets[name]


def override(config, pairs=(), **values):
    """``config`` with fields replaced from ``"key=value"`` strings and keyword values.

    String values are parsed by the field's annotated type (int, float, bool, str,
    tuples of those, Optional of those). Raises ConfigError naming the key and value.
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
