"""pipelines.activity.recordings: real GIF/MP4/PNG clips and CSV/NPY sensor recordings
made in tmp_path, the embedded smartwatch data, subject splits and windows."""

import os
import time

import numpy as np
import pytest

import imageio.v3 as iio  # the activity extra (the test extra takes it)

from pipelines.activity import recordings as rec
from pipelines.common.textio import DataError

COLOURS = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0], [0, 255, 255],
                    [255, 0, 255], [128, 128, 128], [255, 255, 255], [0, 0, 0],
                    [128, 0, 0], [0, 128, 0], [0, 0, 128]], np.uint8)


def solid_frames(n, height=32, width=32):
    """Frame i is a solid COLOURS[i]."""
    return np.broadcast_to(COLOURS[:n, None, None, :], (n, height, width, 3)).copy()


def colour_indices(clip, tolerance=0):
    """The COLOURS index of each (solid) frame; lossy codecs within ``tolerance``."""
    means = clip.reshape(len(clip), -1, 3).mean(axis=1)
    distance = np.abs(means[:, None, :] - COLOURS[None].astype(float)).max(axis=2)
    assert (distance.min(axis=1) <= tolerance).all(), distance.min(axis=1)
    return distance.argmin(axis=1).tolist()


def write_gif(path, n):
    iio.imwrite(path, solid_frames(n), duration=100, loop=0)


def write_mp4(path, n):
    iio.imwrite(path, solid_frames(n), plugin="FFMPEG", fps=10)


def write_png_folder(folder, n):
    os.makedirs(folder)
    for i, frame in enumerate(solid_frames(n, 20, 30)):  # names frame1..frame{n}: unpadded
        iio.imwrite(os.path.join(folder, f"frame{i + 1}.png"), frame)


def raises(exception, call, *args, **kwargs):
    with pytest.raises(exception) as info:
        call(*args, **kwargs)
    return str(info.value)


# ----------------------------------------------------------------------------- clips


def test_sample_indices():
    assert rec.sample_indices(10, 4) == [1, 3, 6, 8]  # middles of four 2.5-frame segments
    assert rec.sample_indices(3, 6) == [0, 0, 1, 1, 2, 2]
    assert rec.sample_indices(10, 5, "stride", 3) == [0, 3, 6, 9, 9]
    assert rec.sample_indices(10, 3, "stride", 2) == [0, 2, 4]


def test_gif_is_decoded_and_sampled(tmp_path):
    path = str(tmp_path / "clip.gif")
    write_gif(path, 10)
    clip = rec.read_clip(path, 4, 8)
    assert clip.shape == (4, 8, 8, 3) and clip.dtype == np.uint8
    assert colour_indices(clip) == [1, 3, 6, 8]
    np.testing.assert_array_equal(clip[0], np.broadcast_to(COLOURS[1], (8, 8, 3)))
    assert colour_indices(rec.read_clip(path, 5, 8, "stride", 3)) == [0, 3, 6, 9, 9]


def test_mp4_is_decoded_and_sampled(tmp_path):
    path = str(tmp_path / "clip.mp4")
    write_mp4(path, 12)
    clip = rec.read_clip(path, 3, 16)
    assert clip.shape == (3, 16, 16, 3) and clip.dtype == np.uint8
    assert colour_indices(clip, tolerance=12) == [2, 6, 10]
    assert colour_indices(rec.read_clip(path, 4, 16, "stride", 5), 12) == [0, 5, 10, 10]


def test_png_folder_in_natural_order(tmp_path):
    folder = str(tmp_path / "clip")
    write_png_folder(folder, 12)
    clip = rec.read_clip(folder, 4, 10)
    assert clip.shape == (4, 10, 10, 3)
    assert colour_indices(clip) == [1, 4, 7, 10]  # frame10 after frame9, not after frame1


def test_video_folder_classes_subjects_and_names(tmp_path):
    os.makedirs(tmp_path / "jump")
    write_gif(str(tmp_path / "jump" / "p01_a.gif"), 6)
    write_mp4(str(tmp_path / "jump" / "p02_b.mp4"), 8)
    os.makedirs(tmp_path / "wave")
    write_png_folder(str(tmp_path / "wave" / "p01_c"), 5)
    write_gif(str(tmp_path / "wave" / "p03_d.gif"), 7)
    (tmp_path / "wave" / "notes.txt").write_text("not a clip")
    calls = []
    clips = rec.read_video_folder(str(tmp_path), 4, 12, progress=lambda *a: calls.append(a))
    assert [(c.label, c.subject, c.name) for c in clips] == [
        ("jump", "p01", "jump/p01_a.gif"), ("jump", "p02", "jump/p02_b.mp4"),
        ("wave", "p01", "wave/p01_c"), ("wave", "p03", "wave/p03_d.gif")]
    assert all(c.frames.shape == (4, 12, 12, 3) and c.frames.dtype == np.uint8 for c in clips)
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]

    (tmp_path / "subjects.csv").write_text(
        "file,subject\njump/p01_a.gif,ann\njump/p02_b.mp4,bob\nwave/p01_c,ann\n")
    message = raises(DataError, rec.read_video_folder, str(tmp_path), 2, 4)
    assert message == (f"{tmp_path / 'subjects.csv'}: no subject for 1 clip(s): "
                       "['wave/p03_d.gif'] (list every clip)")
    with open(tmp_path / "subjects.csv", "a") as f:
        f.write("wave/p03_d.gif,cy\n")
    assert [c.subject for c in rec.read_video_folder(str(tmp_path), 2, 4)] == [
        "ann", "bob", "ann", "cy"]
    with open(tmp_path / "subjects.csv", "a") as f:
        f.write("wave/p09.gif,dee\n")
    message = raises(DataError, rec.read_video_folder, str(tmp_path), 2, 4)
    assert message == (f"{tmp_path / 'subjects.csv'}:6: field 'file': no clip 'wave/p09.gif' "
                       "(expected <class>/<file or frame folder>)")


def test_video_subject_rules():
    ucf = ["Jump/v_Jump_g08_c01.avi", "Jump/v_Jump_g09_c02.avi", "Wave/v_Wave_g08_c03.avi"]
    assert list(rec._video_subjects("/nowhere", ucf).values()) == ["g08", "g09", "g08"]
    same_prefix = ["a/clip_1.gif", "b/clip_2.gif"]  # one prefix for all: not a subject
    assert rec._video_subjects("/nowhere", same_prefix) == {r: r for r in same_prefix}
    plain = ["a/one.gif", "b/p1_two.gif"]
    assert rec._video_subjects("/nowhere", plain) == {r: r for r in plain}


def test_video_errors(tmp_path):
    os.makedirs(tmp_path / "jump" / "empty")
    message = raises(DataError, rec.read_video_folder, str(tmp_path), 2, 4)
    assert message == (f"{tmp_path / 'jump' / 'empty'}: the clip has no frames "
                       "(no ('.png', '.jpg', '.jpeg', '.bmp') images)")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video" * 10)
    assert raises(DataError, rec.read_clip, str(bad), 2, 4).startswith(
        f"{bad}: cannot read the video (")
    assert raises(DataError, rec.read_clip, str(bad), 2, 4, "stride").startswith(
        f"{bad}: cannot read the video (")
    gif = tmp_path / "bad.gif"
    gif.write_bytes(b"GIF89a nonsense")
    assert raises(DataError, rec.read_clip, str(gif), 2, 4).startswith(
        f"{gif}: cannot read the GIF (")
    loose = tmp_path / "loose"
    os.makedirs(loose / "wave")
    iio.imwrite(loose / "wave" / "f1.png", solid_frames(1)[0])
    assert raises(DataError, rec.read_video_folder, str(loose), 2, 4) == (
        f"{loose / 'wave' / 'f1.png'}: a frame image directly in a class folder: put each "
        "clip's frames in a sub-folder of its own")
    assert raises(DataError, rec.read_video_folder, str(tmp_path / "none"), 2, 4) == (
        f"{tmp_path / 'none'}: no such folder")
    assert raises(ValueError, rec.read_video_folder, str(tmp_path), 2, 4, "random") == (
        "Expected sampling in ('uniform', 'stride'). Received: sampling='random'")


# ------------------------------------------------------------------------ sensors


def sensor_folder(tmp_path, csv_text="ax,ay\n1,2\n3,4\n5,6\n", npy=None, labels=None):
    (tmp_path / "r1.csv").write_text(csv_text)
    np.save(tmp_path / "r2.npy", np.arange(8, dtype=np.float64).reshape(4, 2)
            if npy is None else npy)
    (tmp_path / "labels.csv").write_text(
        labels or "file,label,subject\nr1.csv,walk,s1\nr2.npy,run,s2\n")
    return str(tmp_path)


def test_sensor_folder_reads_csv_and_npy(tmp_path):
    first, second = rec.read_sensor_folder(sensor_folder(tmp_path))
    assert (first.label, first.subject, first.name) == ("walk", "s1", "r1.csv")
    assert (second.label, second.subject, second.name) == ("run", "s2", "r2.npy")
    assert first.frames.dtype == second.frames.dtype == np.float32
    np.testing.assert_array_equal(first.frames, [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(second.frames, np.arange(8).reshape(4, 2))
    assert len(rec.read_sensor_folder(str(tmp_path / "labels.csv"))) == 2


@pytest.mark.parametrize("csv_text, npy, error", [
    ("ax,ay\n1,2\n3,x\n", None, "r1.csv:3: field 'ay': 'x' is not a number"),
    ("ax,ay\n1,2\n3\n", None, "r1.csv:3: 1 values, the header names 2 channels"),
    ("ax,ay\n", None, "r1.csv: the recording has no frames (no rows after the header)"),
    ("1,2\n3,4\n", None, "r1.csv:1: the first line should name the channels (a header "
                         "line), found numbers"),
    ("ax,ay\n1,2\n,4\n", None, "r1.csv:3: field 'ax': a NaN reading (nan='interpolate' "
                               "fills gaps linearly)"),
    ("ax,ay\n1,inf\n", None, "r1.csv:2: field 'ay': an infinite reading"),
    ("ax,ay\n1,2\n", np.zeros((4, 3)), "r2.npy: 3 channels, the first recording 'r1.csv' "
                                       "has 2"),
    ("ax,ay\n1,2\n", np.array([[0, 1], [2, np.nan]]),
     "r2.npy: frame 1 channel 1: a NaN reading (nan='interpolate' fills gaps linearly)"),
    ("ax,ay\n1,2\n", np.zeros((0, 2)), "r2.npy: the recording has no frames"),
    ("ax,ay\n1,2\n", np.array(["a", "b"]), "r2.npy: expected a numeric array, got <U1"),
])
def test_sensor_folder_errors(tmp_path, csv_text, npy, error):
    folder = sensor_folder(tmp_path, csv_text, npy)
    assert raises(DataError, rec.read_sensor_folder, folder) == os.path.join(folder, error)


def test_sensor_labels_errors(tmp_path):
    folder = sensor_folder(tmp_path, labels="file,label,subject\nr1.csv,walk,s1\nr3.csv,run,s2\n")
    assert raises(DataError, rec.read_sensor_folder, folder) == (
        f"{folder}/labels.csv:3: field 'file': no such recording file 'r3.csv'")
    folder = sensor_folder(tmp_path, labels="file,label,subject\nr1.csv,walk,\n")
    assert raises(DataError, rec.read_sensor_folder, folder) == (
        f"{folder}/labels.csv:2: field 'subject': the subject is empty")
    os.remove(tmp_path / "labels.csv")
    assert raises(DataError, rec.read_sensor_folder, folder) == (
        f"{folder}: no labels.csv (file,label,subject) in the folder")


def test_sensor_nan_interpolate(tmp_path):
    folder = sensor_folder(tmp_path, "ax,ay\n,1\n2,nan\n4,\n5,7\n",
                           np.array([[np.nan, 0], [np.nan, 1]]))
    assert raises(DataError, rec.read_sensor_folder, folder, nan="interpolate") == (
        f"{folder}/r2.npy: channel 0 has no reading (all NaN)")
    np.save(tmp_path / "r2.npy", np.array([[1.0, 0], [np.nan, 1], [3, 2]]))
    first, second = rec.read_sensor_folder(folder, nan="interpolate")
    np.testing.assert_allclose(first.frames, [[2, 1], [2, 3], [4, 5], [5, 7]])
    np.testing.assert_allclose(second.frames, [[1, 0], [2, 1], [3, 2]])


# ---------------------------------------------------------------------- splits


def people(counts):
    return [rec.Recording(np.zeros((3, 1), np.float32), "a", subject, f"{subject}-{i}")
            for subject, n in counts.items() for i in range(n)]


@pytest.mark.parametrize("seed", range(5))
def test_split_by_subject_never_mixes(seed):
    recordings = people({str(s): s % 4 + 1 for s in range(1, 11)})
    splits = rec.split_by_subject(recordings, 0.2, 0.1, seed)
    assert list(splits) == ["train", "valid", "test"]
    subjects = {name: {r.subject for r in split} for name, split in splits.items()}
    assert [len(s) for s in subjects.values()] == [7, 2, 1]
    assert not (subjects["train"] & subjects["valid"] or subjects["train"] & subjects["test"]
                or subjects["valid"] & subjects["test"])
    assert sorted(r.name for split in splits.values() for r in split) == sorted(
        r.name for r in recordings)
    again = rec.split_by_subject(recordings, 0.2, 0.1, seed)
    assert {k: [r.name for r in v] for k, v in again.items()} == {
        k: [r.name for r in v] for k, v in splits.items()}


def test_split_by_subject_small():
    splits = rec.split_by_subject(people({"a": 2, "b": 1, "c": 1}), 0.01, 0.01, seed=0)
    assert [len({r.subject for r in s}) for s in splits.values()] == [1, 1, 1]
    assert list(rec.split_by_subject(people({"a": 1, "b": 1}), 0.1, 0.0)) == ["train", "valid"]
    assert raises(DataError, rec.split_by_subject, people({"a": 1, "b": 1}), 0.1, 0.1,
                  source="data/") == (
        "data/: 2 subject(s) cannot make train, valid, test splits with no subject in two "
        "(valid_fraction=0.1, test_fraction=0.1 need at least 3)")


def test_leave_subjects_out():
    recordings = people({"1": 2, "2": 1, "3": 1, "10": 1})
    splits = rec.leave_subjects_out(recordings, ["10"], valid_subjects=[2])
    assert {k: [r.name for r in v] for k, v in splits.items()} == {
        "train": ["1-0", "1-1", "3-0"], "valid": ["2-0"], "test": ["10-0"]}
    assert raises(DataError, rec.leave_subjects_out, recordings, ["4"]) == (
        "recordings: subject(s) ['4'] are not among the subjects ['1', '2', '3', '10']")
    assert raises(DataError, rec.leave_subjects_out, recordings, ["1", "2", "3", "10"]) == (
        "recordings: no subject is left to train on")


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("count, length, stride", [(10, 4, 3), (12, 4, 4), (5, 5, 2),
                                                   (100, 16, 7), (17, 16, 16)])
def test_windows_cover_the_recording(count, length, stride):
    frames = np.arange(count * 2, dtype=np.float32).reshape(count, 2) + 1
    out, lengths = rec.windows(frames, length, stride)
    assert out.shape[1:] == (length, 2) and lengths.tolist() == [length] * len(out)
    covered = np.unique(np.concatenate([w[:, 0] for w in out]))
    np.testing.assert_array_equal(covered, frames[:, 0])
    np.testing.assert_array_equal(out[0], frames[:length])
    np.testing.assert_array_equal(out[-1], frames[-length:])


def test_windows_of_a_short_recording_are_padded():
    frames = np.ones((3, 4, 4, 3), np.uint8)  # video frames window too
    out, lengths = rec.windows(frames, 5, 2)
    assert out.shape == (1, 5, 4, 4, 3) and lengths.tolist() == [3]
    assert out[0, :3].all() and not out[0, 3:].any()
    assert raises(ValueError, rec.windows, frames, 0, 1) == (
        "Expected length >= 1. Received: length=0")


# ------------------------------------------------------------------------ watch data


def test_watch_recordings(tmp_path):
    start = time.perf_counter()
    recordings = rec.watch_recordings(cache_dir=tmp_path)
    first = time.perf_counter() - start
    print(f"first conversion: {first:.2f} s")
    assert len(recordings) == 140
    assert sorted({r.label for r in recordings}) == sorted(
        ["PEN", "ABD", "FEL", "IR", "ER", "TRAP", "ROW"])
    assert {r.subject for r in recordings} == {str(s) for s in range(1, 11)}
    assert all(r.frames.dtype == np.float32 and r.frames.shape[1] == 6 for r in recordings)
    assert min(len(r.frames) for r in recordings) == 947
    assert max(len(r.frames) for r in recordings) == 2618
    assert recordings[0].name == "watch_dataset.npy[0]"
    (cache,) = os.listdir(tmp_path)
    assert cache.startswith("watch-seglearn") and cache.endswith(".npz")
    with np.load(tmp_path / cache) as f:  # no pickle in the cache
        assert f["frames"].shape == (sum(len(r.frames) for r in recordings), 6)
    again = rec.watch_recordings(cache_dir=tmp_path)
    assert all(a.label == b.label and a.subject == b.subject
               and np.array_equal(a.frames, b.frames) for a, b in zip(recordings, again))
    splits = rec.split_by_subject(recordings, 0.2, 0.2, seed=0)
    assert [len({r.subject for r in s}) for s in splits.values()] == [6, 2, 2]


def test_watch_without_seglearn(monkeypatch, tmp_path):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    assert raises(DataError, rec.watch_recordings, tmp_path) == (
        "seglearn: the activity pipeline needs its extra: pip install 'seqzoo[activity]'")
