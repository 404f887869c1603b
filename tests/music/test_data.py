"""Music data: the grid encodings against hand-made pieces, the event coding, pitch
folding, key estimation, the JSB JSON layout, the chorale cache, and bad input (one
``error:`` line naming the file, exit code 2)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from pipelines.common.cli import main
from pipelines.music import TASK, data
from pipelines.music.config import PRESETS
from tests.conftest import assert_data_error

SMALL = PRESETS["small"]
N, O = data.MIDI_NO_EVENT, data.MIDI_NOTE_OFF


def notes(*rows):
    return data._notes([row + (0,) * (4 - len(row)) for row in rows])


def test_piano_roll_holds_the_pitches_sounding_at_each_grid_point():
    piece = notes((60, 0, 2), (64, 0.5, 1), (67, 1, 1.5), (72, 3, 4))
    roll = data.piano_roll(piece, 1, 60, 72)  # quarter grid: points 0, 1, 2, 3
    on = [sorted(60 + np.flatnonzero(frame)) for frame in roll]
    assert on == [[60], [60, 67], [], [72]]  # 64 covers no grid point: dropped (JSB)
    eighths = data.piano_roll(piece, 2, 60, 72)
    assert [sorted(60 + np.flatnonzero(f)) for f in eighths] == \
        [[60], [60, 64], [60, 67], [60], [], [], [72], [72]]
    assert data.piano_roll(piece, 1, 61, 72)[:, 0].tolist() == [0, 0, 0, 0]  # 61 not 60


def test_melody_events_code_onsets_note_offs_and_holds_of_the_first_part():
    piece = notes((60, 0, 1), (62, 1, 1.5), (64, 2, 3), (55, 2, 3), (48, 0, 4, 1))
    events = data.melody_events(piece, 4)  # 16th grid; part 1 (48) is not the melody
    assert events.tolist() == [60, N, N, N, 62, N, O, N, 64, N, N, N]  # 64 over 55 at step 8
    ids = data.events_to_ids(events, 55, 84)
    assert ids.tolist()[:7] == [3 + 5, 1, 1, 1, 3 + 7, 1, 2]
    assert data.ids_to_events(ids, 55).tolist() == events.tolist()


def test_out_of_range_values_fold_by_octaves_or_read_as_no_event():
    assert data.fold([20, 21, 108, 109, 0, 127], 21, 108).tolist() == [32, 21, 108, 97, 24, 103]
    ids = data.events_to_ids([40, 90, -3, 128, O, N], 55, 84)
    assert data.ids_to_events(ids, 55).tolist() == [64, 78, N, N, O, N]


def test_key_shift_takes_a_piece_to_c_major_or_a_minor():
    scale = [0, 2, 4, 5, 7, 9, 11, 12]
    c_major = notes(*[(60 + p, i, i + (2 if p in (0, 7, 12) else 1)) for i, p in enumerate(scale)])
    assert data.key_shift(c_major) == 0
    d_major = c_major.copy()
    d_major[:, 0] += 2
    assert data.key_shift(d_major) == -2
    g_major = c_major.copy()
    g_major[:, 0] += 7
    assert data.key_shift(g_major) == 5  # the smaller move: up a fourth


def test_transposing_to_all_keys_keeps_pieces_in_range():
    config = dataclasses.replace(SMALL, min_pitch=60, max_pitch=72)
    out = data.augment([data.Piece("p", notes((62, 0, 1), (70, 1, 2)))], config)
    shifts = sorted(int(p.notes[0, 0]) - 62 for p in out)
    assert shifts == [-2, -1, 0, 1, 2]  # 60..72 holds 62+s and 70+s only for these
    assert sorted(p.name for p in out)[0] == "p"


def _jsb(path, **splits):
    path.write_text(json.dumps(splits))
    return str(path)


def test_the_jsb_layout_is_read_frame_for_frame(tmp_path):
    train = [[[60, 64], [60], [], [62, 67]], [[48], [50]]]
    valid = [[[72], [72, 76]]]
    path = _jsb(tmp_path / "jsb.json", train=train, valid=valid, test=[[[60], [-1, 62]]])
    config = dataclasses.replace(SMALL, data=path, max_examples=0, batch_size=8)
    datasets = TASK.make_datasets(config)
    assert (datasets.sizes["train"], datasets.sizes["valid"]) == (2, 1)
    assert datasets.test is None  # train --data FILE.json: its train and valid splits
    for x, y, w in datasets.valid:
        frames = [sorted(21 + np.flatnonzero(f)) for f in y.numpy()[0]]
        assert frames == [[72], [72, 76]]
        assert x.numpy()[0, 0].sum() == 0 and (x.numpy()[0, 1] == y.numpy()[0, 0]).all()
        assert w.numpy().tolist() == [[1.0, 1.0]]
    (tested,) = list(TASK.read_split(config, datasets.meta, path))  # evaluate --data: test split
    assert [sorted(21 + np.flatnonzero(f)) for f in tested[1].numpy()[0]] == [[60], [62]]


def test_chorales_are_parsed_once_and_cached(tmp_path, monkeypatch):
    monkeypatch.setenv("SEQZOO_CACHE", str(tmp_path))
    seen = []
    first = data.chorales(limit=2, progress=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 2), (2, 2)]
    (cached,) = os.listdir(tmp_path / "music")
    import music21

    assert cached == f"chorales-first2-music21-{music21.__version__}.npz"
    again = data.chorales(limit=2, progress=lambda *a: pytest.fail("parsed again"))
    assert [p.name for p in again] == [p.name for p in first]
    assert all(np.array_equal(a.notes, b.notes) for a, b in zip(first, again))
    soprano = first[0].notes[first[0].notes[:, 3] == 0]
    assert len(set(first[0].notes[:, 3])) == 4 and 55 <= soprano[:, 0].min()


def _midi(path, pitches, start=0.0):
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    instrument = pretty_midi.Instrument(program=0)
    instrument.notes = [pretty_midi.Note(80, p, start + i * 0.5, start + (i + 1) * 0.5)
                        for i, p in enumerate(pitches)]
    midi.instruments.append(instrument)
    midi.write(str(path))
    return str(path)


def test_a_folder_trains_on_its_good_files_and_lists_the_bad_ones(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    for i in range(4):
        _midi(folder / f"song{i}.mid", [60 + i, 62, 64, 65, 67, 69])
    (folder / "broken.mid").write_bytes(b"MThd\x00\x00garbage")
    _midi(folder / "silent.mid", [])
    config = dataclasses.replace(SMALL, data=str(folder), max_examples=0, valid_fraction=0.25,
                                 test_fraction=0.0)
    datasets = TASK.make_datasets(config)
    assert datasets.sizes["train"] + datasets.sizes["valid"] == 4
    assert datasets.notes[0] == "skipped 2 unreadable files:"
    assert datasets.notes[1].startswith(f"  {folder / 'broken.mid'}: not a readable MIDI file (")
    assert datasets.notes[2] == f"  {folder / 'silent.mid'}: no notes"
    for _, y, _ in datasets.train.take(1):  # 120 bpm, notes of half a second = quarter notes
        assert y.shape[1] == 6


@pytest.mark.parametrize("name, content, message", [
    ("broken.mid", b"MThd\x00\x00\x00\x06garbage",
     "{path}: not a readable MIDI file (EOFError: )"),
    ("empty.mid", b"", "{path}: the file is empty"),
    ("notes.txt", b"c d e f g", "{path}: expected a .json (JSB layout), MIDI (.mid), MusicXML "
     "(.xml, .mxl), ABC (.abc) or kern (.krn) file, or a folder of them"),
    ("bad.json", b"{\"train\": [[[60], [\"C\"]]]}",
     "{path}: field 'train[0]': frame 1 must be a list of MIDI pitches"),
    ("pitch.json", b"{\"train\": [[[60], [200]]], \"valid\": [[[60]]]}",
     "{path}: field 'train[0]': pitch 200 is not a MIDI pitch (0..127)"),
    ("layout.json", b"[[60, 62]]", '{path}: expected the JSB layout {{"train": [[[pitches at '
     't0], ...], ...], "valid": ..., "test": ...}}'),
    ("text.json", b'{"train": "caf\xe9"}', "{path}: not JSON ('utf-8' codec can't decode byte "
     "0xe9 in position 14: invalid continuation byte)"),
])
def test_bad_files_are_one_error_line(name, content, message, tmp_path, capsys):
    config = dataclasses.replace(SMALL, max_examples=0)
    assert_data_error(TASK, config, tmp_path, capsys, name, content, message)


def test_a_midi_file_with_no_notes_and_pitches_out_of_range(tmp_path, capsys):
    silent = _midi(tmp_path / "silent.mid", [])
    assert_data_error(TASK, SMALL, tmp_path, capsys, "silent.mid", None, f"{silent}: no notes")
    low = _midi(tmp_path / "low.mid", [60, 62, 10])
    assert_data_error(TASK, SMALL, tmp_path, capsys, "low.mid", None, f"{low}: one piece: "
                      "splitting needs at least 2 (train and valid); pass a folder, or --train "
                      "FILE --valid FILE")
    capsys.readouterr()
    assert main(TASK, ["train", "--preset", "small", "--train", low, "--valid", low, "--set",
                       "out_of_range=refuse", "--workdir", str(tmp_path / "w"), "-q"]) == 2
    assert capsys.readouterr().err == (
        f"error: {low}: low.mid: pitch 10 at quarter 2 is outside the model's range 21..108 "
        "(--set out_of_range=fold moves such notes by octaves)\n")
    folded = data.fit_range(data.read_file(low)[0], SMALL, low)
    assert folded[1] == 1 and folded[0].notes[:, 0].tolist() == [60, 62, 22]


def test_melody_refuses_the_jsb_layout(tmp_path, capsys):
    melody = dataclasses.replace(PRESETS["melody"], max_examples=0)
    path = _jsb(tmp_path / "jsb.json", train=[[[60]]], valid=[[[60]]])
    with pytest.raises(data.DataError, match="use --set encoding=piano_roll"):
        TASK.make_datasets(dataclasses.replace(melody, data=path))


def test_a_missing_extra_is_one_line_saying_what_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "music21", None)  # import music21 fails
    assert main(TASK, ["train", "--preset", "small", "--workdir", str(tmp_path), "-q"]) == 2
    assert capsys.readouterr().err == \
        "error: music21: the music pipeline needs its extra: pip install 'seqzoo[music]'\n"


def test_abc_books_and_musicxml_are_read_through_music21(tmp_path):
    book = tmp_path / "book.abc"
    book.write_text("X:1\nT:One\nM:4/4\nL:1/4\nK:C\nC D E F|G2 z2|]\n\n"
                    "X:2\nT:Two\nM:3/4\nL:1/8\nK:G\nB2 A2 G2|d6|]\n")
    one, two = data.read_file(str(book))
    assert (one.name, two.name) == ("book.abc#1", "book.abc#2")
    assert one.notes[:, :3].tolist() == [[60, 0, 1], [62, 1, 2], [64, 2, 3], [65, 3, 4], [67, 4, 6]]
    assert two.notes[:, 0].tolist() == [71, 69, 67, 74]  # K:G: F is F#, none here
    import music21

    xml = tmp_path / "one.musicxml"
    music21.converter.parse(str(book)).scores[0].write("musicxml", fp=str(xml))
    (again,) = data.read_file(str(xml))
    assert again.notes[:, :3].tolist() == one.notes[:, :3].tolist()


def test_corpus_names_read_music21s_own_files():
    (piece,) = data.read_source("corpus:bach/bwv66.6.mxl")[0]
    assert piece.name == "bwv66.6.mxl" and len(set(piece.notes[:, 3])) == 4
    with pytest.raises(data.DataError) as e:
        data.read_source("corpus:no/such/piece")
    assert str(e.value) == "corpus:no/such/piece: no such file or folder in the music21 corpus"
