import dataclasses
import json

import numpy as np
import pytest

from pipelines.common import config as config_lib
from pipelines.sentiment.config import PRESETS, SentimentConfig


def test_overrides_parse_by_field_type():
    config = config_lib.override(
        PRESETS["default"],
        ["units=32", "dropout=0.25", "bidirectional=false", "labels=neg,pos", "tfds_data_dir=none"],
    )
    assert config.units == 32 and config.dropout == 0.25 and config.bidirectional is False
    assert config.labels == ("neg", "pos") and config.tfds_data_dir is None
    assert PRESETS["default"].units == 64, "presets must not change"


def test_unknown_key_is_refused_with_the_valid_keys():
    with pytest.raises(config_lib.ConfigError, match="Unknown config key 'unit'.*units"):
        config_lib.override(PRESETS["default"], ["unit=3"])


@pytest.mark.parametrize("pair", ["units=many", "dropout=x", "bidirectional=maybe", "novalue"])
def test_wrong_types_are_refused(pair):
    with pytest.raises(config_lib.ConfigError):
        config_lib.override(PRESETS["default"], [pair])


def test_keyword_values_are_type_checked():
    with pytest.raises(config_lib.ConfigError, match="units"):
        config_lib.override(PRESETS["default"], units="8")
    assert config_lib.override(PRESETS["default"], learning_rate=1).learning_rate == 1.0


def test_unknown_preset():
    with pytest.raises(config_lib.ConfigError, match="Unknown preset 'huge'"):
        config_lib.from_preset(PRESETS, "huge")


def test_save_and_load_round_trip(tmp_path):
    config = dataclasses.replace(PRESETS["small"], labels=("a", "b"), train_file="x.csv")
    path = tmp_path / "config.json"
    config_lib.save(config, str(path))
    assert json.loads(path.read_text())["labels"] == ["a", "b"]
    assert config_lib.load(SentimentConfig, str(path)) == config


# ------------------------------------------------------- enumerated fields and the base


def _task_configs():
    from pipelines.char_lm.config import CharLMConfig
    from pipelines.ner.config import NerConfig

    return [SentimentConfig, NerConfig, CharLMConfig]


def test_every_task_config_inherits_the_base_fields():
    for cls in _task_configs():
        assert issubclass(cls, config_lib.BaseConfig)
        names = [f.name for f in dataclasses.fields(cls)]
        base = [f.name for f in dataclasses.fields(config_lib.BaseConfig)]
        assert names[: len(base)] == base  # the shared fields first in config.json
    assert SentimentConfig().cell == "gru" and SentimentConfig().clipnorm == 1.0
    from pipelines.char_lm.config import CharLMConfig
    from pipelines.ner.config import NerConfig

    assert (NerConfig().clipnorm, NerConfig().max_length, NerConfig().word_dropout) == (5.0, 200, 0.05)
    assert (CharLMConfig().units, CharLMConfig().vocab_size) == (256, 10000)


def test_the_cell_names_are_the_zoos():
    import zoo.cells

    assert config_lib.CELL_NAMES == tuple(zoo.cells.CELLS)


@pytest.mark.parametrize("key, bad, allowed", [
    ("cell", "transformer", "['gru', 'lstm', 'peephole_lstm', 'rnn', 'simplified_gru']"),
    ("pooling", "sum", "['last', 'max', 'mean', 'mean_max']"),
    ("format", "xml", "['csv', 'jsonl', 'sst', 'tsv']"),
])
def test_enumerated_values_are_refused_with_the_choices(key, bad, allowed):
    message = f"Config key '{key}' expects one of {allowed}. Received: '{bad}'"
    with pytest.raises(config_lib.ConfigError) as e:
        config_lib.override(PRESETS["small"], [f"{key}={bad}"])
    assert str(e.value) == message
    with pytest.raises(config_lib.ConfigError) as e:
        config_lib.override(PRESETS["small"], **{key: bad})
    assert str(e.value) == message
    with pytest.raises(config_lib.ConfigError) as e:  # set in code: refused on construction
        dataclasses.replace(PRESETS["small"], **{key: bad})
    assert str(e.value) == message


def test_every_enumerated_field_of_every_task_is_checked():
    import typing

    seen = {}
    for cls in _task_configs():
        for name, tp in typing.get_type_hints(cls).items():
            choices = config_lib._choices(tp)
            if not choices:
                continue
            seen[(cls.__name__, name)] = sorted(choices)
            for value in choices:  # each allowed value parses
                assert getattr(config_lib.override(cls(), [f"{name}={value}"]), name) == value
            with pytest.raises(config_lib.ConfigError,
                               match=rf"^Config key '{name}' expects one of .*Received: 'bogus'$"):
                config_lib.override(cls(), [f"{name}=bogus"])
    assert seen == {
        ("SentimentConfig", "cell"): sorted(config_lib.CELL_NAMES),
        ("SentimentConfig", "format"): ["csv", "jsonl", "sst", "tsv"],
        ("SentimentConfig", "pooling"): ["last", "max", "mean", "mean_max"],
        ("NerConfig", "cell"): sorted(config_lib.CELL_NAMES),
        ("NerConfig", "tag_scheme"): ["auto", "bio", "iobes"],
        ("NerConfig", "on_error"): ["repair", "report"],
        ("NerConfig", "target"): ["person", "tags"],
        ("NerConfig", "train_scheme"): ["bio", "iobes"],
        ("NerConfig", "char_encoder"): ["cnn", "none", "rnn"],
        ("NerConfig", "head"): ["crf", "softmax"],
        ("CharLMConfig", "cell"): sorted(config_lib.CELL_NAMES),
        ("CharLMConfig", "level"): ["char", "word"],
        **{(cls, "precision"): ["float32", "mixed_bfloat16"]
           for cls in ("SentimentConfig", "NerConfig", "CharLMConfig")},
        **{(cls, "optimizer"): ["adam", "fused_adam", "lazy_adam"]
           for cls in ("SentimentConfig", "NerConfig", "CharLMConfig")},
    }


def test_optional_enumerated_field_takes_none():
    assert config_lib.override(PRESETS["small"], ["format=sst"]).format == "sst"
    assert config_lib.override(PRESETS["small"], ["format=none"]).format is None


def test_load_refuses_a_saved_value_outside_the_choices(tmp_path):
    from pipelines.char_lm.config import CharLMConfig

    path = tmp_path / "config.json"
    config_lib.save(CharLMConfig(), str(path))
    saved = json.loads(path.read_text())
    assert list(saved)[:3] == ["data", "train_file", "valid_file"] and saved["level"] == "char"
    path.write_text(json.dumps({**saved, "level": "byte"}))
    with pytest.raises(config_lib.ConfigError,
                       match=r"^Config key 'level' expects one of \['char', 'word'\]\. "
                             r"Received: 'byte'$"):
        config_lib.load(CharLMConfig, str(path))


@pytest.mark.parametrize("task_name, key, value", [
    ("sentiment", "cell", "transformer"), ("sentiment", "pooling", "sum"),
    ("char_lm", "level", "byte"), ("ner", "head", "hmm"),
])
def test_cli_refuses_a_bad_choice_in_one_line(tmp_path, capsys, task_name, key, value):
    import importlib

    from pipelines.common.cli import main

    task = importlib.import_module(f"pipelines.{task_name}").TASK
    code = main(task, ["train", "--preset", "small", "--set", f"{key}={value}",
                       "--workdir", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith(f"error: Config key '{key}' expects one of [")
    assert err.endswith(f"Received: '{value}'\n") and err.count("\n") == 1


def test_adam_clips_each_gradient_or_all_together():
    config = PRESETS["small"]
    opt = config_lib.adam(config)
    assert (opt.clipnorm, opt.global_clipnorm) == (1.0, None)
    np.testing.assert_allclose(float(opt.learning_rate), config.learning_rate, rtol=1e-6)
    opt = config_lib.adam(dataclasses.replace(config, clipnorm=5.0), 1e-3, global_clipnorm=True)
    assert (opt.clipnorm, opt.global_clipnorm) == (None, 5.0)
    np.testing.assert_allclose(float(opt.learning_rate), 1e-3, rtol=1e-6)
    assert config_lib.adam(dataclasses.replace(config, clipnorm=0.0)).clipnorm is None


def test_choose_cell_offers_every_cell_with_the_config_default():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    assert config_lib.choose_cell(hp, PRESETS["small"]) == "gru"
    assert hp.get("cell") == "gru"
    assert list(hp.space[0].values) == list(config_lib.CELL_NAMES)


def test_values_outside_a_declared_range_are_refused_when_set():
    import math

    from pipelines.common import config as config_lib
    from pipelines.sentiment.config import PRESETS

    small = PRESETS["small"]
    for pair, message in [
        ("batch_size=0", "Config key 'batch_size' expects a value >= 1. Received: 0"),
        ("dropout=1", "Config key 'dropout' expects a value [0, 1). Received: 1.0"),
        ("dropout=-0.1", "Config key 'dropout' expects a value [0, 1). Received: -0.1"),
        ("learning_rate=0", "Config key 'learning_rate' expects a value > 0. Received: 0.0"),
        ("learning_rate=nan", "Config key 'learning_rate' expects a value > 0. Received: nan"),
        ("valid_fraction=1", "Config key 'valid_fraction' expects a value (0, 1). Received: 1.0"),
        ("lr_decay=1.5", "Config key 'lr_decay' expects a value (0, 1]. Received: 1.5"),
    ]:
        with pytest.raises(config_lib.ConfigError) as info:
            config_lib.override(small, [pair])
        assert str(info.value) == message
    # The edges of the ranges are accepted; a subclass redeclaring a field keeps its range.
    edge = config_lib.override(small, ["dropout=0", "patience=0", "lr_decay=1", "clipnorm=0"])
    assert (edge.dropout, edge.patience, edge.lr_decay, edge.clipnorm) == (0.0, 0, 1.0, 0.0)
    assert "dropout" in type(small).__annotations__  # sentiment redeclares dropout's default
    with pytest.raises(config_lib.ConfigError):
        dataclasses.replace(small, dropout=2.0)
    assert not config_lib.Range(0, 1).contains(math.nan)


@pytest.mark.parametrize("task, fields, message", [
    ("speech", {"time_reduction": 3}, "Config key 'time_reduction' expects one of [1, 2, 4]. Received: 3"),
    ("speech", {"conv_layers": 0},
     "Config key 'conv_layers' expects a value >= 1 with time_reduction=2. Received: 0"),
    ("speech", {"top_paths": 8, "beam_width": 4},
     "Config key 'top_paths' expects a value <= beam_width (4). Received: 8"),
    ("dna", {"fold": 10}, "Config key 'fold' expects a value < folds (10). Received: 10"),
    ("dna", {"stride": 500}, "Config key 'stride' expects a value <= window (400). Received: 500"),
])
def test_cross_field_checks_name_the_key_the_bound_and_the_value(task, fields, message):
    import importlib

    config_class = importlib.import_module(f"pipelines.{task}").TASK.config_class
    with pytest.raises(config_lib.ConfigError) as e:
        config_class(**fields)
    assert str(e.value) == message
