"""Subword tokens: WordPiece pieces learned by tensorflow-text's learner, tokenized by
its WordpieceTokenizer in the tf.data chain and in the export (which loads with no
project code, TensorFlow Text's ops registered as Serving's model server has them)."""

import dataclasses
import json
import os
import sys

import pytest

from pipelines.common import serving_check
from pipelines.common.cli import main
from pipelines.translation import TASK, data
from pipelines.translation.config import PRESETS

NUMBERS = dataclasses.replace(PRESETS["small"], data="numbers", num_examples=400, level="subword",
                              vocab_size=200, max_source_length=60, max_target_length=12)


@pytest.fixture(scope="module")
def numbers():
    splits, _ = data.load_pairs(NUMBERS)
    return [s for s, _ in splits["train"]]


def test_pieces_cut_words_and_glue_back_to_the_word_level_text(numbers):
    vocabulary = data.build_vocabulary(numbers, "subword", 200)
    assert vocabulary[:4] == list(data.RESERVED) and len(vocabulary) <= 200
    assert any(t.startswith("##") for t in vocabulary)  # continuation pieces were learned
    pieces = data.make_pieces(vocabulary, "subword")
    tokens = data.tokenize(numbers, "subword", pieces)
    words = data.tokenize(numbers, "word")
    assert tokens.flat_values.shape[0] > words.flat_values.shape[0]  # some words were cut
    assert all(t.decode() in vocabulary for t in tokens.flat_values.numpy())
    back = data.detokenize(tokens, "subword").numpy().tolist()
    assert back == data.detokenize(words, "word").numpy().tolist()
    # a word with a character never seen is one [UNK]
    odd = data.tokenize(["quarante \u4e00\u4e8c"], "subword", pieces).to_list()[0]
    assert odd[-1] == b"[UNK]" and b"".join(odd[:-1]).replace(b"##", b"") == b"quarante"


@pytest.mark.slow  # about 80 s; the word-level translation export runs in test_contract by default
def test_a_subword_model_trains_exports_and_serves_with_no_project_code(tmp_path, capsys):
    workdir, export_dir = str(tmp_path / "w"), str(tmp_path / "saved_models")
    overrides = ["--set", "data=numbers", "--set", "num_examples=400", "--set", "level=subword",
                 "--set", "vocab_size=200", "--set", "max_source_length=60",
                 "--set", "max_target_length=12"]
    assert main(TASK, ["--preset", "small", *overrides, "--workdir", workdir,
                       "--export-dir", export_dir, "-q"]) == 0
    meta = json.load(open(os.path.join(workdir, "meta.json")))
    assert meta["level"] == "subword"
    sources = ["quarante-deux", "", "mil neuf cent quatre-vingt-dix " * 40]
    got = serving_check.run_export(os.path.join(export_dir, "translation", "1"),
                                   {"source": sources, "beam_width": 2})
    assert got["blocked"] == {"zoo": True, "pipelines": True} and not got["modules"]
    for path in ("session", "eager"):
        out = got[path]
        assert len(out["translation"]) == 3 and out["truncated"] == [False, False, True]
        assert all(isinstance(t, str) and "##" not in t for t in out["translation"])
    assert got["session"]["translation"] == got["eager"]["translation"]


def test_without_tensorflow_text_it_says_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorflow_text", None)  # import fails
    code = main(TASK, ["train", "--preset", "small", "--set", "data=numbers",
                       "--set", "level=subword", "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2
    err = capsys.readouterr().err
    assert err == f"error: tensorflow_text: {data.SUBWORD_INSTALL}\n"
