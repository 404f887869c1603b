"""The music pipeline's commands on the shared small run: evaluate --data (the JSB
layout's test split) against the export's score signature, sample from the workdir and
from an export into MIDI/PNG/WAV files, predict with a primer file, and bad flags as
one error line."""

import json
import os

import mido
import numpy as np
import pytest

from pipelines.common import export
from pipelines.common.cli import main
from pipelines.music import TASK

PIECES = [[[60, 64, 67], [62, 65], [], [59, 62, 67]], [[48, 55], [50]]]


@pytest.fixture(scope="module")
def run(small_run):
    return small_run("music")


def _primer(tmp_path):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=80)
    instrument = pretty_midi.Instrument(0)
    instrument.notes = [pretty_midi.Note(80, p, i * 0.75, (i + 1) * 0.75)
                        for i, p in enumerate([67, 69, 71, 72, 74, 72, 71, 69])]
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "primer.mid"))
    return str(tmp_path / "primer.mid")


def _onsets(path):
    """Sorted (quarter note, pitch) of every note-on, read with mido."""
    midi = mido.MidiFile(path)
    onsets, tick = [], 0
    for message in midi.tracks[-1]:
        tick += message.time
        if message.type == "note_on" and message.velocity:
            onsets.append((tick / midi.ticks_per_beat, message.note))
    return sorted(onsets)


def test_evaluate_scores_the_test_split_of_a_jsb_file_as_the_export_does(run, tmp_path, capsys):
    path = tmp_path / "jsb.json"
    path.write_text(json.dumps({"train": [[[60]]], "valid": [[[61]]], "test": PIECES}))
    out = tmp_path / "eval"
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", run["workdir"], "-q",
                       "--data", str(path), "--out", str(out)]) == 0
    report = json.load(open(out / "metrics.json"))
    assert report["frames"] == 6
    assert f"nll_per_frame {report['nll_per_frame']:.4f}" in capsys.readouterr().out
    rolls = np.zeros((2, 4, 128), "float32")
    for i, piece in enumerate(PIECES):
        for t, frame in enumerate(piece):
            rolls[i, t, frame] = 1.0
    rows = export.predict(run["version_dir"], {"piece": rolls, "length": np.array([4, 2], "int32")},
                          signature="score")
    total = sum(float(row["nll"]) for row in rows)
    assert report["nll_per_frame"] == pytest.approx(total / 6, rel=1e-5)


def test_sample_writes_playable_files_from_the_workdir_and_from_an_export(run, tmp_path, capsys):
    primer = _primer(tmp_path)  # 8 quarter notes at 80 bpm: the 2 bars of 4/4 the config reads
    out = tmp_path / "samples"
    capsys.readouterr()
    assert main(TASK, ["sample", "--preset", "small", "--workdir", run["workdir"], "--primer",
                       primer, "--steps", "5", "-n", "2", "--wav", "--out", str(out),
                       "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].startswith("5 frames, ")
    assert sorted(os.listdir(out)) == [f"0{i}-primer.{ext}" for i in (1, 2)
                                       for ext in ("mid", "png", "wav")]
    onsets = _onsets(out / "01-primer.mid")
    assert [n for t, n in onsets if t < 8] == [67, 69, 71, 72, 74, 72, 71, 69]
    assert max(t for t, _ in onsets) < 8 + 5  # then 5 generated quarter-note frames

    exported = tmp_path / "from_export"
    assert main(TASK, ["sample", "--model", run["version_dir"], "--bars", "1", "--out",
                       str(exported), "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("4 frames, ")  # a bar of 4 quarter-note frames
    assert sorted(os.listdir(exported)) == ["01-free.mid", "01-free.png"]


@pytest.mark.parametrize("flags, message", [
    (["--steps", "-1"], "error: --steps: expected 0 <= steps <= 2048. Received: -1"),
    (["--temperature", "nan"],
     "error: --temperature: expected a finite value >= 0 (0 = most likely). Received: nan"),
    (["--top-p", "0"], "error: --top-p: expected 0 < top_p <= 1. Received: 0.0"),
    (["--primer", "nowhere.mid"], "error: nowhere.mid: no such file"),
    (["--model", "nowhere"], "error: nowhere: not an export version directory (no saved_model.pb)."),
])
def test_bad_sample_flags_are_one_error_line(run, flags, message, capsys):
    capsys.readouterr()
    assert main(TASK, ["sample", "--preset", "small", "--workdir", run["workdir"], *flags]) == 2
    assert capsys.readouterr().err == message + "\n"


def test_predict_continues_a_primer_file_into_midi(run, tmp_path, capsys):
    primer = _primer(tmp_path)
    out = tmp_path / "predicted"
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--text", "", "--file",
                       primer, "--out", str(out)]) == 0
    first, second = capsys.readouterr().out.splitlines()
    assert first.endswith("(no primer)") and f"{out}/01-free.mid" in first
    assert second.startswith("8 frames, ") and second.endswith("primer.mid")
    assert f"-> {out}/02-primer.mid, {out}/02-primer.png" in second
    assert [p for p in _onsets(out / "02-primer.mid") if p[0] < 8] == list(enumerate(
        [67, 69, 71, 72, 74, 72, 71, 69]))
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--text",
                       str(tmp_path)]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path}: is a directory, expected a MIDI / "
                                       "MusicXML / ABC / kern file\n")
