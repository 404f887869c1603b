"""Speech data: the folder layouts (manifest, FSDD names, LibriSpeech), splits that
never put a speaker in two splits, FSDD's official split, transcripts outside the
alphabet and unreadable clips as one error line, TFDS through the real tfds.load."""

import dataclasses
import os

import numpy as np
import pytest
import soundfile

from pipelines.common.cli import main
from pipelines.common.textio import DataError
from pipelines.speech import TASK, data
from pipelines.speech.config import PRESETS

SMALL = PRESETS["small"]


def _tone(path, seconds=0.4, rate=8000, freq=300.0, subtype="PCM_16", channels=1):
    t = np.arange(int(seconds * rate)) / rate
    x = 0.3 * np.sin(2 * np.pi * freq * t)
    soundfile.write(str(path), np.stack([x] * channels, 1) if channels > 1 else x, rate,
                    subtype=subtype)
    return str(path)


def _fsdd(folder, speakers=("ann", "bob", "cid", "dee"), takes=range(0, 8), digits=range(3)):
    os.makedirs(folder, exist_ok=True)
    for s in speakers:
        for d in digits:
            for t in takes:
                _tone(os.path.join(folder, f"{d}_{s}_{t}.wav"), 0.3 + 0.05 * d, freq=200 + 50 * d)
    return str(folder)


def test_fsdd_names_give_transcripts_speakers_and_the_official_split(tmp_path):
    folder = _fsdd(tmp_path / "fsdd")
    clips = data.read_folder(folder)
    assert len(clips) == 4 * 3 * 8 and set(clips.transcripts) == {"zero", "one", "two"}
    config = dataclasses.replace(SMALL, data=folder, split="fsdd_takes")
    splits, _ = data.load_clips(config)
    assert {clips_take for clips_take in splits["test"].takes} == set(range(5))
    assert min(splits["train"].takes + splits["valid"].takes) == 5
    held = dataclasses.replace(SMALL, data=folder, holdout_speaker="bob")
    splits, _ = data.load_clips(held)
    assert set(splits["test"].speakers) == {"bob"}
    assert "bob" not in set(splits["train"].speakers) | set(splits["valid"].speakers)


def test_a_split_by_speaker_never_puts_a_speaker_in_two_splits(tmp_path):
    folder = _fsdd(tmp_path / "fsdd", speakers=tuple(f"s{i}" for i in range(10)), takes=range(2))
    splits, _ = data.load_clips(dataclasses.replace(SMALL, data=folder, split="speaker"))
    seen = [set(c.speakers) for c in splits.values()]
    assert len(seen) == 3 and all(seen)
    assert sum(len(s) for s in seen) == len(set().union(*seen)) == 10
    by_utterance, _ = data.load_clips(dataclasses.replace(SMALL, data=folder, split="utterance"))
    assert sum(len(c) for c in by_utterance.values()) == 10 * 3 * 2


def test_a_manifest_and_librispeech_transcripts(tmp_path):
    _tone(tmp_path / "a.wav")
    _tone(tmp_path / "b.wav", subtype="PCM_24", channels=2)
    (tmp_path / "list.csv").write_text("path,transcript,speaker\na.wav,Hello  World,x\n"
                                       "b.wav,it’s me,y\n")
    clips = data.read_folder(str(tmp_path))
    assert clips.transcripts == ["hello world", "it's me"] and clips.speakers == ["x", "y"]
    libri = tmp_path / "libri" / "19" / "198"
    libri.mkdir(parents=True)
    _tone(libri / "19-198-0000.wav")
    soundfile.write(str(libri / "19-198-0001.flac"), np.zeros(4000), 16000)
    (libri / "19-198.trans.txt").write_text("19-198-0000 NORTHANGER ABBEY\n19-198-0001 CHAPTER ONE\n")
    clips = data.read_folder(str(tmp_path / "libri"))
    assert clips.transcripts == ["northanger abbey", "chapter one"] and clips.speakers == ["19", "19"]
    wav = data.read_bytes(clips.sources[1])  # FLAC converted for the graph's WAV reader
    assert wav[:4] == b"RIFF" and soundfile.read(__import__("io").BytesIO(wav))[1] == 16000


@pytest.mark.parametrize("name, content, message", [
    ("list.csv", b"path,transcript\na.wav,route 66\n",
     "{path}:2: transcript 'route 66' has characters outside the alphabet (a-z, space, "
     "apostrophe): '6' (write numbers as words)"),
    ("list.csv", b"path,transcript\nmissing.wav,hello\n",
     "{path}:2: field 'path': no such audio file 'missing.wav'"),
])
def test_bad_manifests_are_one_error_line(name, content, message, tmp_path, capsys):
    _tone(tmp_path / "a.wav")
    path = tmp_path / name
    path.write_bytes(content)
    expected = message.format(path=path)
    with pytest.raises(DataError) as e:
        data.read_folder(str(path))
    assert str(e.value) == expected
    code = main(TASK, ["train", "--preset", "small", "--data", str(path),
                       "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2 and capsys.readouterr().err == f"error: {expected}\n"


def test_an_unreadable_clip_stops_naming_it_or_is_skipped_and_counted(tmp_path, capsys):
    folder = _fsdd(tmp_path / "fsdd", takes=range(2))
    bad = os.path.join(folder, "1_ann_9.wav")
    with open(bad, "wb") as f:
        f.write(b"RIFF\x10\x00\x00\x00WAVEjunk")
    config = dataclasses.replace(SMALL, data=folder, split="utterance")
    with pytest.raises(DataError, match=f"^{bad}: .*--set on_error=skip leaves such clips out"):
        data.make_datasets(config)
    made = data.make_datasets(dataclasses.replace(config, on_error="skip"))
    assert any(f"skipped 1 unreadable or too long clips, e.g. {bad}" in n for n in made.notes)
    assert sum(made.sizes.values()) == 4 * 3 * 2


def test_batches_hold_frames_lengths_and_padded_labels(tmp_path):
    folder = _fsdd(tmp_path / "fsdd", takes=range(2))
    config = dataclasses.replace(SMALL, data=folder, split="utterance", batch_size=4)
    made = data.make_datasets(config)
    inputs, labels = next(iter(made.train))
    assert inputs["features"].shape[2] == config.n_mels
    lengths = inputs["length"].numpy()
    assert inputs["features"].shape[1] == lengths.max()
    for row, n in zip(inputs["features"].numpy(), lengths):
        assert not row[n:].any()  # padding frames are 0
    texts = {data.decode_ids(row) for row in labels.numpy()}
    assert texts <= {"zero", "one", "two"}
    assert (labels.numpy()[labels.numpy() < 0] == -1).all()


def test_speed_perturbation_adds_faster_and_slower_copies_to_training_only(tmp_path):
    folder = _fsdd(tmp_path / "fsdd", takes=range(2))
    plain = dataclasses.replace(SMALL, data=folder, split="utterance", batch_size=4)
    made = data.make_datasets(plain)
    perturbed = data.make_datasets(dataclasses.replace(plain, speed_perturb=(0.8, 1.25)))
    assert perturbed.sizes == {**made.sizes, "train": 3 * made.sizes["train"]}
    frames = lambda ds: sorted(int(n) for x, _ in ds for n in x["length"].numpy())  # noqa: E731
    clips = data.load_clips(plain)[0]["train"]
    wavs = np.array([data.read_bytes(s) for s in clips.sources], object)
    copies = [int(n) for s in (0.8, 1.25) for n in data.feature_fn(plain, s)(wavs)["length"]]
    assert frames(perturbed.train) == sorted(frames(made.train) + copies)
    assert max(copies) > max(frames(made.train)) and min(copies) < min(frames(made.train))
    assert frames(perturbed.valid) == frames(made.valid)


@pytest.mark.parametrize("speed", [1.0, 0.4, 2.5])
def test_speed_perturbation_refuses_no_change_and_extremes(speed, capsys):
    assert main(TASK, ["train", "--preset", "small", "--set", f"speed_perturb=0.9,{speed}"]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: Config key 'speed_perturb' expects speeds in [0.5, 2] other than 1. "
        f"Received: {(0.9, speed)!r}")


@pytest.mark.parametrize("name", ["speech_commands", "librispeech"])
def test_tfds_datasets_through_the_real_tfds_load(name):
    import io as _io

    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
        splits = data.read_tfds(name, None)
    assert set(splits) == {"train", "valid", "test"}
    for clips in splits.values():
        for source, text, speaker in zip(clips.sources, clips.transcripts, clips.speakers):
            samples, rate = soundfile.read(_io.BytesIO(source))
            assert rate == 16000 and samples.ndim == 1
            assert set(text) <= set(data.ALPHABET) and text
            if name == "speech_commands":
                assert text in ("down", "go", "left", "no", "off", "on", "right", "stop", "up",
                                "yes") and speaker == ""
            else:
                assert speaker.isdigit()
    assert sum(len(c) for c in splits.values()) > 0


def test_a_folder_of_symbolic_links_is_followed(tmp_path):
    real = _fsdd(tmp_path / "real", speakers=("ann", "bob", "cid"), takes=range(2))
    linked = tmp_path / "linked"
    linked.mkdir()
    os.symlink(real, linked / "recordings")
    clips = data.read_folder(str(linked))
    assert len(clips) == 3 * 3 * 2 and all(s.startswith(str(linked)) for s in clips.sources)
