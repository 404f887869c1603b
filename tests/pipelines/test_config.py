import dataclasses
import json

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
