"""The activity pipeline's commands: the shared small run (embedded sensors) evaluates a
sensor folder and predicts files through the export with the scores ``evaluate`` gives;
a video folder of GIFs trains, exports and predicts end to end; bad folders are one
``error:`` line."""

import json
import os

import numpy as np
import pytest

from pipelines.activity import TASK, recordings
from pipelines.common import export
from pipelines.common.cli import main


@pytest.fixture(scope="module")
def run(small_run):
    return small_run("activity")


def sensor_folder(path, picks):
    """labels.csv and a CSV or NPY per embedded recording of ``picks`` (indices)."""
    os.makedirs(path, exist_ok=True)
    found = recordings.watch_recordings()
    rows = ["file,label,subject"]
    for k, i in enumerate(picks):
        r = found[i]
        name = f"rec{i}.npy" if k % 2 else f"rec{i}.csv"
        if name.endswith(".npy"):
            np.save(os.path.join(path, name), r.frames)
        else:
            np.savetxt(os.path.join(path, name), r.frames, delimiter=",",
                       header="ax,ay,az,wx,wy,wz", comments="", fmt="%.9g")
        rows.append(f"{name},{r.label},{r.subject}")
    with open(os.path.join(path, "labels.csv"), "w") as f:
        f.write("\n".join(rows) + "\n")
    return str(path)


def test_evaluate_a_sensor_folder_agrees_with_the_export(run, tmp_path, capsys):
    folder = sensor_folder(tmp_path / "sensors", [0, 21, 50, 77])
    out = tmp_path / "eval"
    assert main(TASK, ["evaluate", "--preset", "small", "--workdir", run["workdir"], "-q",
                       "--data", folder, "--out", str(out)]) == 0
    report = json.load(open(out / "metrics.json"))
    assert report["recordings"] == 4 and os.path.exists(out / "confusion.png")
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--file", folder]) == 0
    lines = capsys.readouterr().out.splitlines()
    files = sorted(f for f in os.listdir(folder) if f != "labels.csv")
    assert [line.split()[-1] for line in lines] == files
    truth = {f"rec{i}.{e}": r.label for i, r in enumerate(recordings.watch_recordings())
             for e in ("csv", "npy")}
    right = sum(line.split()[0] == truth[line.split()[-1]] for line in lines)
    assert report["accuracy"] == pytest.approx(right / 4)


def test_an_embedded_recording_is_predicted_by_name(run, capsys):
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--text",
                       "watch_dataset.npy[3]", "--text", "watch_dataset.npy[140]"]) == 2
    assert capsys.readouterr().err == ("error: watch_dataset.npy[140]: the embedded data has "
                                       "140 recordings (0..139)\n")
    frames = recordings.watch_recordings()[3].frames
    row = export.predict(run["version_dir"], {"frames": frames[None]})[0]
    assert main(TASK, ["predict", "--export-dir", run["export_dir"], "--text",
                       "watch_dataset.npy[3]"]) == 0
    assert capsys.readouterr().out.startswith(row["label"].decode() + " ")


def test_a_nan_reading_in_a_folder_is_one_error_line(tmp_path, capsys):
    folder = sensor_folder(tmp_path / "sensors", [0, 1])
    csv = os.path.join(folder, "rec0.csv")
    lines = open(csv).read().splitlines()
    lines[5] = "nan," + lines[5].split(",", 1)[1]
    open(csv, "w").write("\n".join(lines) + "\n")
    assert main(TASK, ["train", "--preset", "small", "--data", folder, "--workdir",
                       str(tmp_path / "w"), "-q"]) == 2
    assert capsys.readouterr().err == (f"error: {csv}:6: field 'ax': a NaN reading "
                                       "(nan='interpolate' fills gaps linearly)\n")


def gif_folder(path):
    """Two classes of 6-frame GIFs (a bright square moving right / down) by subjects
    s1..s4, named <subject>_<take>.gif."""
    import imageio.v3 as iio

    rng = np.random.RandomState(0)
    for label, axis in (("right", 2), ("down", 1)):
        os.makedirs(os.path.join(path, label), exist_ok=True)
        for subject in ("s1", "s2", "s3", "s4"):
            for take in range(3):
                clip = rng.randint(0, 40, (6, 20, 20, 3)).astype(np.uint8)
                for t in range(6):
                    where = [slice(None)] * 3
                    where[axis - 1] = slice(3 * t, 3 * t + 4)
                    clip[t][tuple(where)] = 255
                iio.imwrite(os.path.join(path, label, f"{subject}_{take}.gif"), clip,
                            extension=".gif")
    return str(path)


@pytest.mark.slow  # about 60 s; the video serving graph is tested in test_model.py by default
def test_a_video_folder_trains_exports_and_predicts(tmp_path, capsys):
    folder = gif_folder(tmp_path / "clips")
    work, saved = str(tmp_path / "work"), str(tmp_path / "saved")
    args = ["--preset", "small", "--data", folder, "--workdir", work, "--export-dir", saved,
            "-q", "--set", "kind=video", "--set", "test_subjects=s4",
            "--set", "valid_subjects=s3", "--set", "conv_layers=0",
            "--set", "time_reduction=1"]
    assert main(TASK, args) == 0
    meta = json.load(open(os.path.join(work, "meta.json")))
    assert meta["kind"] == "video" and meta["frame_shape"] == [16, 16, 3]
    assert meta["subjects"] == {"train": ["s1", "s2"], "valid": ["s3"], "test": ["s4"]}
    report = json.load(open(os.path.join(work, "eval", "metrics.json")))
    assert report["recordings"] == 6
    clip = os.path.join(folder, "down", "s4_0.gif")
    capsys.readouterr()
    assert main(TASK, ["predict", "--export-dir", saved, "--file", clip]) == 0
    line = capsys.readouterr().out.strip()
    row = export.predict(os.path.join(saved, "activity", "1"),
                         {"video": [open(clip, "rb").read()]})[0]
    assert line.startswith(row["label"].decode()) and line.endswith("s4_0.gif")
