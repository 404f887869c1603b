"""Music output and primers: MIDI written with pretty_midi reads back with mido to the
same notes, the grid encodings invert, WAV and PNG files are made without external
programs, primers are the first bars of a file on the model's grid."""

import dataclasses
import wave

import mido
import numpy as np
import pytest

from pipelines.music import data, sample
from pipelines.music.config import PRESETS

SMALL = PRESETS["small"]


def _mido_notes(path):
    """(pitch, start, end) in quarter notes, read with mido (not pretty_midi)."""
    midi = mido.MidiFile(path)
    notes, open_notes = [], {}
    for track in midi.tracks:
        tick = 0
        for message in track:
            tick += message.time
            if message.type == "note_on" and message.velocity > 0:
                open_notes[message.note] = tick
            elif message.type in ("note_off", "note_on"):
                start = open_notes.pop(message.note)
                notes.append((message.note, start / midi.ticks_per_beat, tick / midi.ticks_per_beat))
    return sorted(notes, key=lambda n: (n[1], n[0]))


def test_written_midi_reads_back_with_mido_to_the_same_notes(tmp_path):
    notes = data._notes([(60, 0, 1, 0), (64, 0, 2, 0), (67, 1.5, 2, 0), (72, 2, 4.25, 0)])
    path = sample.write_midi(notes, str(tmp_path / "x.mid"), tempo=90, program=19)
    assert _mido_notes(path) == [tuple(n[:3]) for n in notes]
    midi = mido.MidiFile(path)
    messages = [m for track in midi.tracks for m in track]
    (tempo,) = [m.tempo for m in messages if m.type == "set_tempo"]
    assert abs(tempo - mido.bpm2tempo(90)) <= 1  # µs a quarter note, rounded
    assert [m.program for m in messages if m.type == "program_change"] == [19]


def test_frames_and_events_turn_back_into_the_notes_they_encode():
    notes = data._notes([(60, 0, 2, 0), (64, 1, 2, 0), (64, 2, 3, 0), (67, 3, 4, 0)])
    roll = data.piano_roll(notes, 1, 0, 127)
    back = sample.frames_to_notes(roll, 1)  # 64 held over two frames is one note
    assert back[:, :3].tolist() == [[60, 0, 2], [64, 1, 3], [67, 3, 4]]
    melody = data._notes([(60, 0, 1, 0), (62, 1, 1.5, 0), (65, 2, 4, 0)])
    events = data.melody_events(melody, 4)
    assert sample.events_to_notes(events, 4)[:, :3].tolist() == melody[:, :3].tolist()
    shifted = sample.events_to_notes(events, 4, offset=8.0)
    assert shifted[0, 1] == 8.0


def test_wav_and_png_are_written_without_external_programs(tmp_path):
    notes = data._notes([(60, 0, 1, 0), (67, 1, 2, 0)])
    paths = sample.save_piece(notes, str(tmp_path), "x", SMALL, wav=True, primer_end=1.0)
    assert [p.rsplit(".", 1)[1] for p in paths] == ["mid", "png", "wav"]
    with wave.open(paths[2]) as f:
        seconds = f.getnframes() / f.getframerate()
        assert (f.getnchannels(), f.getsampwidth()) == (1, 2)
    assert seconds == pytest.approx(2 * 60 / SMALL.tempo, abs=1.1)  # + pretty_midi's release
    assert open(paths[1], "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def _chorale_midi(tmp_path):
    """A 3/4 MIDI file: 12 quarter notes of C, D, E..."""
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=60)
    midi.time_signature_changes.append(pretty_midi.TimeSignature(3, 4, 0))
    instrument = pretty_midi.Instrument(0)
    instrument.notes = [pretty_midi.Note(80, 60 + i, i, i + 1) for i in range(12)]
    midi.instruments.append(instrument)
    midi.write(str(tmp_path / "waltz.mid"))
    return str(tmp_path / "waltz.mid")


@pytest.mark.parametrize("encoding", ["piano_roll", "melody"])
def test_a_primer_is_the_first_bars_of_a_file_on_the_models_grid(encoding, tmp_path):
    path = _chorale_midi(tmp_path)
    config = dataclasses.replace(SMALL, encoding=encoding, primer_bars=2,
                                 grid="8th" if encoding == "piano_roll" else "16th")
    meta = data.make_meta(config, {}, "test")
    primer = sample.read_primer(path, config, meta)
    assert primer.label == "waltz.mid"
    assert primer.notes[:, 0].tolist() == list(range(60, 66))  # two bars of 3/4
    if encoding == "piano_roll":
        assert primer.values.shape == (12, 128)  # 6 quarters x 2 steps
        assert [int(np.flatnonzero(f)[0]) for f in primer.values] == [p for p in range(60, 66)
                                                                      for _ in range(2)]
    else:
        assert primer.values.tolist()[:5] == [60, -2, -2, -2, 61] and len(primer.values) == 24
    empty = sample.read_primer("", config, meta)
    assert empty.label == "(no primer)" and len(empty.values) == 0
    feeds = sample.feed([primer, empty])
    assert feeds["primer_length"].tolist() == [len(primer.values), 0]
    assert feeds["primer"].shape[:2] == (2, len(primer.values))


def test_a_primer_longer_than_the_model_takes_is_refused(tmp_path):
    path = _chorale_midi(tmp_path)
    config = dataclasses.replace(SMALL, primer_bars=4, serve_max_primer=10)
    meta = data.make_meta(config, {}, "test")
    with pytest.raises(data.DataError) as e:
        sample.read_primer(path, config, meta)
    assert str(e.value) == (f"{path}: the primer is 12 steps long (4 bars); the model conditions "
                            "on at most 10: ask for fewer --primer-bars")
    with pytest.raises(data.DataError, match="no such file"):
        sample.read_primer(str(tmp_path / "none.mid"), config, meta)
