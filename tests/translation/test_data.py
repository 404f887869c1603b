"""Translation data: CLDR dates (calendar year, never the week-based one; no source
with two targets; held-out years and format only in the test split), number words,
pairs files (.tsv, .zip, aligned files) split by source sentence, and bad lines as one
error line naming the file and line (or skipped and counted)."""

import dataclasses
import datetime
import zipfile

import pytest

from pipelines.common.cli import main
from pipelines.translation import TASK, data
from pipelines.translation.config import PRESETS
from tests.conftest import assert_data_error

SMALL = PRESETS["small"]


def test_dates_use_the_calendar_year_not_the_week_based_one():
    date = datetime.date(2019, 12, 30)  # in ISO week 1 of 2020
    for locale in data.LOCALES:
        for fmt in data.date_formats(locale):
            text = data.render_date(date, fmt, locale)
            assert "2020" not in text and ("2019" in text or "19" in text), (locale, fmt, text)


def test_generated_dates_are_unambiguous_and_hold_out_years_and_a_format():
    config = dataclasses.replace(SMALL, num_examples=3000)
    splits = data.generate_dates(config)
    targets = {}
    for pairs in splits.values():
        for source, target in pairs:
            assert targets.setdefault(source, target) == target, source  # one target each
    years = {name: {int(t[:4]) for _, t in pairs} for name, pairs in splits.items()}
    assert years["test"] <= set(range(1990, 1995))
    assert not (years["train"] | years["valid"]) & set(range(1990, 1995))
    for source, target in splits["train"]:  # a held-out rendering only where another
        date = datetime.date.fromisoformat(target)  # format gives the same string ("May")
        for locale in data.LOCALES:
            others = {data.render_date(date, f, locale) for f in data.date_formats(locale)
                      if f != "yMMMEd"}
            assert source in others or source != data.render_date(date, "yMMMEd", locale)
    assert not {s for s, _ in splits["test"]} & {s for s, _ in splits["train"]}
    assert any(data.render_date(datetime.date.fromisoformat(t), "yMMMEd", locale) == s
               for s, t in splits["test"] for locale in data.LOCALES)


def test_number_words_map_to_their_digits():
    from num2words import num2words

    config = dataclasses.replace(PRESETS["numbers"], num_examples=200)
    splits = data.generate_numbers(config)
    seen = [int(t) for pairs in splits.values() for _, t in pairs]
    assert len(seen) == len(set(seen))  # no number in two splits
    for source, target in splits["train"][:50]:
        n = int(target)
        assert source in {num2words(n, lang=lang, to=to) for lang in data.LOCALES
                          for to in ("cardinal", "year")}


def test_pairs_files_split_by_source_sentence_and_read_from_zip(tmp_path):
    lines = [f"sentence {i % 40}\tphrase {i}\tCC-BY 2.0 (France) Attribution" for i in range(120)]
    tsv = tmp_path / "fra.txt"
    tsv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    archive = tmp_path / "fra-eng.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.write(tsv, "fra.txt")
        z.writestr("_about.txt", "about")
    config = dataclasses.replace(SMALL, data=str(archive))
    splits, notes = data.load_pairs(config)
    sources = {name: {s for s, _ in pairs} for name, pairs in splits.items()}
    assert not (sources["train"] & sources["valid"]) and not (sources["train"] & sources["test"])
    assert sum(len(p) for p in splits.values()) == 120 and notes == []
    reverse, _ = data.load_pairs(dataclasses.replace(config, reverse=True))
    assert all(s.startswith("phrase") for s, _ in reverse["train"])


def test_aligned_files_and_their_errors(tmp_path, capsys):
    source, target = tmp_path / "en.txt", tmp_path / "fr.txt"
    source.write_text("a\nb\nc\n")
    target.write_text("x\ny\n")
    assert main(TASK, ["train", "--preset", "small", "--source-file", str(source),
                       "--target-file", str(target), "--workdir", str(tmp_path / "w"), "-q"]) == 2
    assert capsys.readouterr().err == (f"error: {target}: 2 lines, but {source} has 3: the files "
                                       "must be aligned line by line\n")
    target.write_text("x\n\nz\n")
    with pytest.raises(data.DataError, match=f"{target}:2: an empty line"):
        data.read_aligned(str(source), str(target))


@pytest.mark.parametrize("name, content, message", [
    ("pairs.tsv", b"hello\tbonjour\nno tab here\n",
     "{path}:2: expected source<TAB>target (--set on_error=skip skips such lines)"),
    ("empty_side.tsv", b"hello\tbonjour\n\tvide\n",
     "{path}:2: an empty side (--set on_error=skip skips such lines)"),
    ("latin.tsv", b"hello\tbonjour\ncaf\xe9\tcoffee\n", "{path}:2: bytes b'\\xe9' are not valid UTF-8"),
    ("broken.zip", b"PK\x03\x04 not really", "{path}: not a zip archive"),
])
def test_bad_lines_are_one_error_line(name, content, message, tmp_path, capsys):
    assert_data_error(TASK, SMALL, tmp_path, capsys, name, content, message)


def test_bad_lines_can_be_skipped_and_counted(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("".join(f"s{i}\tt{i}\n" for i in range(30)) + "oops\n\tx\n")
    config = dataclasses.replace(SMALL, data=str(path), on_error="skip")
    splits, notes = data.load_pairs(config)
    assert sum(len(p) for p in splits.values()) == 30
    assert notes == [f"skipped 2 bad lines of {path}"]


def test_tokens_round_trip_through_the_graph():
    texts = ["Il a dit : « bonjour ! »", "12/30/19", ""]
    for level in ("char", "word"):
        tokens = data.tokenize(texts, level)
        back = [t.decode() for t in data.detokenize(tokens, level).numpy()]
        if level == "char":
            assert back == texts
        else:
            assert tokens.to_list()[1] == [b"12", b"/", b"30", b"/", b"19"]
            assert back[2] == "" and back[0].startswith("Il a dit:")


def test_words_are_unicode_words_and_every_unicode_space_separates():
    texts = ["Il a été très gentil\u202f! Ça va\xa0? l'élève peut-être", "I don't know."]
    tokens = data.tokenize(texts, "word").to_list()
    assert [t.decode() for t in tokens[0]] == [
        "Il", "a", "été", "très", "gentil", "!", "Ça", "va", "?", "l", "'", "élève",
        "peut", "-", "être"]
    back = [t.decode() for t in data.detokenize(data.tokenize(texts, "word"), "word").numpy()]
    assert back == ["Il a été très gentil! Ça va? l'élève peut-être", "I don't know."]
