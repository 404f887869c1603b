"""Activity recordings: sensor or video frames with an activity label and a subject.

A ``Recording`` is one recording of one activity by one person: ``frames`` (T, C) float32
sensor readings or (T, H, W, 3) uint8 video frames, its ``label``, its ``subject`` and a
``name`` that points back to where it came from (a file, or the embedded file and index).

Where recordings come from:
* ``watch_recordings()``: the embedded real data, ``seglearn/data/watch_dataset.npy``
  from the ``seglearn`` wheel (BSD; Burns et al. 2018, arXiv:1802.01489): 140
  recordings of 7 shoulder-rehabilitation exercises (PEN pendulum, ABD abduction, FEL
  forward elevation, IR internal rotation, ER external rotation, TRAP trapezius
  extension, ROW upright row), 20 each, by 10 subjects ("1".."10", 14 each), 6
  channels (ax, ay, az accelerometer; wx, wy, wz gyroscope) at 50 Hz, 947-2,618
  frames. The file is a pickle: it is read once (``allow_pickle`` for that file only;
  seglearn itself is never imported) and converted into a plain ``.npz`` in the user
  cache.
* ``read_sensor_folder(path)``: a ``labels.csv`` (``file,label,subject``) beside one
  ``.csv`` (a header line naming the channels, then one row of numbers per frame) or
  ``.npy`` ((T, C) or (T,)) per recording. Every recording has the first one's channel
  count. NaN readings (an empty cell or "nan") are refused with their position, or filled
  linearly with ``nan="interpolate"``.
* ``read_video_folder(path, frames, size)``: a folder per class (the class is the folder
  name) of video files (.gif through ``tf.io.decode_gif``; .mp4, .avi, .webm, .mov, .mkv
  through imageio's FFMPEG plugin, the binary of the ``imageio-ffmpeg`` wheel) or of
  sub-folders of frame images (.png, .jpg, .jpeg, .bmp, in natural name order: frame2
  before frame10). Each clip gives ``frames`` frames (uniformly over the clip, or every
  ``stride``-th from the start) resized to ``size`` x ``size`` (aspect ratio not kept),
  uint8: scaling to [0, 1] is the tf.data chain's job. Subjects: see
  ``read_video_folder``.

Splits never put one subject's recordings in two splits (``split_by_subject``,
``leave_subjects_out``). Long recordings are cut into fixed-length ``windows`` for
training; a recording's prediction combines its windows' predictions.
"""

import dataclasses
import importlib
import io
import math
import os
import re

import numpy as np

from pipelines.common import cache
from pipelines.common.textio import DataError

INSTALL = "the activity pipeline needs its extra: pip install 'seqzoo[activity]'"
WATCH_FILE = "seglearn/data/watch_dataset.npy"
VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mov", ".mkv")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")
SAMPLINGS = ("uniform", "stride")
NAN_POLICIES = ("refuse", "interpolate")
# UCF101 names clips v_<Class>_g<group>_c<clip>; a group is one person (or setting).
UCF101_NAME = re.compile(r"^v_[A-Za-z0-9]+_g(\d+)_c\d+$")


@dataclasses.dataclass(frozen=True, eq=False)
class Recording:
    """One recording: ``frames`` (T, C) float32 sensor readings or (T, H, W, 3) uint8
    video frames, its activity ``label``, its ``subject`` and its ``name`` (the file, or
    the embedded file and index)."""

    frames: np.ndarray
    label: str
    subject: str
    name: str


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module.split(".")[0], INSTALL) from None


def default_cache_dir():
    """The user cache's activity folder (``pipelines.common.cache``)."""
    return cache.user_cache_dir("activity")


# ------------------------------------------------------------------------ watch data


def watch_path():
    """(path of ``watch_dataset.npy`` in the installed seglearn wheel, wheel version).
    Found through the distribution's files: seglearn is not imported (its imports fail
    with current numpy, scikit-learn and without pandas)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("seglearn")
    except metadata.PackageNotFoundError:
        raise DataError("seglearn", INSTALL) from None
    path = os.fspath(dist.locate_file(WATCH_FILE))
    if not os.path.isfile(path):
        raise DataError(path, f"seglearn {dist.version} does not ship {WATCH_FILE}; {INSTALL}")
    return path, dist.version


def _read_watch_pickle(path):
    """The seglearn pickle -> arrays for the cache. ``allow_pickle`` only here, for this
    one file of an installed wheel."""
    data = np.load(path, allow_pickle=True)
    data = data.item() if data.dtype == object and data.shape == () else data
    keys = ("X", "y", "subject", "X_labels", "y_labels")
    if not isinstance(data, dict) or any(k not in data for k in keys):
        raise DataError(path, f"expected a dict with keys {list(keys)}; {INSTALL}")
    xs = [np.asarray(x, np.float32) for x in data["X"]]
    if len(xs) != len(data["y"]) or len(xs) != len(data["subject"]):
        raise DataError(path, f"{len(xs)} recordings but {len(data['y'])} labels and "
                        f"{len(data['subject'])} subjects")
    label_names = [str(name) for name in data["y_labels"]]
    return dict(
        frames=np.concatenate(xs), lengths=np.array([len(x) for x in xs], np.int64),
        labels=np.array([label_names[int(y)] for y in data["y"]], dtype=str),
        subjects=np.array([str(int(s)) for s in data["subject"]], dtype=str),
        label_names=np.array(label_names, dtype=str),
        channels=np.array([str(c) for c in data["X_labels"]], dtype=str))


def watch_recordings(cache_dir=None):
    """The 140 smartwatch recordings (see the module docstring) as Recordings, in the
    file's order, named ``watch_dataset.npy[i]``.

    The first call converts the pickled file into ``watch-seglearn<version>.npz`` in
    ``cache_dir`` (default ``default_cache_dir()``; written atomically, under a second);
    later calls read that file without pickle. DataError when seglearn is not installed.
    """
    source, version = watch_path()
    folder = os.fspath(cache_dir) if cache_dir is not None else default_cache_dir()
    cache = os.path.join(folder, f"watch-seglearn{version}.npz")
    arrays = None
    if os.path.exists(cache):
        try:
            with np.load(cache) as f:
                arrays = {key: f[key] for key in f.files}
        except (OSError, ValueError, EOFError):  # unreadable: convert it again
            arrays = None
    if arrays is None:
        arrays = _read_watch_pickle(source)
        os.makedirs(folder, exist_ok=True)
        tmp = f"{cache}.tmp{os.getpid()}.npz"
        try:
            np.savez_compressed(tmp, **arrays)
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    frames = np.split(arrays["frames"], np.cumsum(arrays["lengths"])[:-1])
    return [Recording(x, str(label), str(subject), f"watch_dataset.npy[{i}]")
            for i, (x, label, subject) in enumerate(zip(frames, arrays["labels"],
                                                        arrays["subjects"]))]


# ------------------------------------------------------------------- sensor folders


def read_sensor_folder(path, nan="refuse"):
    """Recordings listed in ``labels.csv`` (``file,label,subject``; files relative to
    it). ``path`` is the folder or its ``labels.csv``.

    A ``.csv`` recording has a header line naming its channels (the same names in every
    CSV) and one row of numbers per frame; a ``.npy`` recording is (T, C) (or (T,): one
    channel), numeric. All recordings have the first one's channel count. NaN readings
    (an empty cell, "nan"): ``nan="refuse"`` raises naming the file and position,
    ``nan="interpolate"`` fills them linearly along time (the nearest reading at either
    end). Other problems raise DataError naming the file, and the line and channel when
    known: a cell that is not a number, a row with the wrong number of values, an
    infinite reading, a recording of 0 frames, a channel with no reading at all.
    """
    from pipelines.common import textio

    if nan not in NAN_POLICIES:
        raise ValueError(f"Expected nan in {NAN_POLICIES}. Received: nan={nan!r}")
    labels_path = path if os.path.isfile(path) else os.path.join(path, "labels.csv")
    if not os.path.exists(path):
        raise DataError(path, "no such file or folder")
    if not os.path.exists(labels_path):
        raise DataError(path, "no labels.csv (file,label,subject) in the folder")
    base = os.path.dirname(os.path.abspath(labels_path))
    recordings, seen, first = [], {}, None
    for row in textio.read_table(labels_path, ("file", "label", "subject"), fmt="csv"):
        name = row.fields["file"].strip()
        for field in ("label", "subject"):
            if not row.fields[field].strip():
                raise DataError(labels_path, f"the {field} is empty", line=row.line, field=field)
        if name in seen:
            raise DataError(labels_path, f"{name!r} is listed twice (first on line "
                            f"{seen[name]})", line=row.line, field="file")
        seen[name] = row.line
        file = os.path.join(base, name)
        ext = os.path.splitext(name)[1].lower()
        if ext not in (".csv", ".npy"):
            raise DataError(labels_path, f"{name!r}: expected a .csv or .npy recording",
                            line=row.line, field="file")
        if not os.path.isfile(file):
            raise DataError(labels_path, f"no such recording file {name!r}", line=row.line,
                            field="file")
        frames, channels, lines = (_read_sensor_csv(file) if ext == ".csv"
                                   else _read_sensor_npy(file))
        if first is None:
            first = (name, frames.shape[1], channels)
        elif frames.shape[1] != first[1]:
            raise DataError(file, f"{frames.shape[1]} channels, the first recording "
                            f"{first[0]!r} has {first[1]}")
        elif channels is not None and first[2] is not None and channels != first[2]:
            raise DataError(file, f"channels {channels} differ from the first recording "
                            f"{first[0]!r}'s {first[2]}", line=1)
        frames = _check_readings(file, frames, channels, lines, nan)
        recordings.append(Recording(frames, row.fields["label"].strip(),
                                    row.fields["subject"].strip(), name))
    return recordings


def read_sensor_file(path, nan="refuse"):
    """One recording file (.csv with a header line, or .npy) -> (T, C) float32 frames,
    checked as in ``read_sensor_folder``."""
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".npy"):
        raise DataError(path, "expected a .csv or .npy recording")
    if not os.path.isfile(path):
        raise DataError(path, "no such file")
    frames, channels, lines = _read_sensor_csv(path) if ext == ".csv" else _read_sensor_npy(path)
    return _check_readings(path, frames, channels, lines, nan)


def _read_sensor_csv(path):
    """(frames (T, C) float32 with NaN for empty cells, channel names, line numbers)."""
    import csv

    from pipelines.common import textio

    reader = csv.reader(io.StringIO(textio.read_text(path), newline=""))
    header = [h.strip().lstrip("\ufeff") for h in next(reader)]
    if all(_is_number(h) for h in header):
        raise DataError(path, "the first line should name the channels (a header line), "
                        "found numbers", line=1)
    rows, lines = [], []
    for values in reader:
        if not values or not any(v.strip() for v in values):
            continue
        line = reader.line_num
        if len(values) != len(header):
            raise DataError(path, f"{len(values)} values, the header names {len(header)} "
                            "channels", line=line)
        try:
            rows.append([float(v) if v.strip() else math.nan for v in values])
        except ValueError:
            column = next(i for i, v in enumerate(values) if v.strip() and not _is_number(v))
            raise DataError(path, f"{values[column]!r} is not a number", line=line,
                            field=header[column]) from None
        lines.append(line)
    if not rows:
        raise DataError(path, "the recording has no frames (no rows after the header)")
    return np.array(rows, np.float32), header, lines


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _read_sensor_npy(path):
    try:
        frames = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as e:
        raise DataError(path, f"not a readable numeric .npy array ({e})") from None
    if not isinstance(frames, np.ndarray) or not (np.issubdtype(frames.dtype, np.number)
                                                   or frames.dtype == bool):
        raise DataError(path, f"expected a numeric array, got {getattr(frames, 'dtype', frames)}")
    if frames.ndim == 1:
        frames = frames[:, None]
    if frames.ndim != 2:
        raise DataError(path, f"expected shape (frames, channels), got {frames.shape}")
    if not len(frames):
        raise DataError(path, "the recording has no frames")
    return frames.astype(np.float32), None, None


def _check_readings(path, frames, channels, lines, nan):
    """Infinite readings refused; NaN readings refused or interpolated."""
    checks = [(np.isinf(frames), "an infinite reading")]
    if nan == "refuse":
        checks.append((np.isnan(frames),
                       "a NaN reading (nan='interpolate' fills gaps linearly)"))
    for bad, what in checks:
        if bad.any():
            t, c = (int(i) for i in np.argwhere(bad)[0])
            if lines is not None:
                raise DataError(path, what, line=lines[t], field=channels[c])
            raise DataError(path, f"frame {t} channel {c}: {what}")
    missing = np.isnan(frames)
    if not missing.any():
        return frames
    frames = frames.copy()
    time = np.arange(len(frames))
    for c in np.flatnonzero(missing.any(axis=0)):
        known = ~missing[:, c]
        if not known.any():
            channel = repr(channels[c]) if channels else str(c)
            raise DataError(path, f"channel {channel} has no reading (all NaN)")
        frames[:, c] = np.interp(time, time[known], frames[known, c])
    return frames


# --------------------------------------------------------------------- video folders


def read_video_folder(path, frames, size, sampling="uniform", stride=1, progress=None):
    """Clips of a folder with one sub-folder per class (class = its name) holding video
    files or sub-folders of frame images (see the module docstring), sorted by class
    then name, each ``frames`` frames of ``size`` x ``size`` x 3 uint8.

    ``sampling="uniform"``: frame ``floor((2i + 1) T / (2 frames))`` of a T-frame clip
    (the middle of each of ``frames`` equal segments; frames repeat when T < frames).
    ``sampling="stride"``: frames 0, ``stride``, 2 ``stride``... from the start, the last
    one repeated when the clip is too short.

    Subject of a clip, the first rule that applies to the whole folder:
    1. ``subjects.csv`` (``file,subject``) in ``path``: ``file`` is the clip's path
       relative to ``path`` (``jump/p01_take1.mp4``, or ``jump/p01_take1`` for a folder
       of frames); every clip must be listed.
    2. UCF101 names ``v_<Class>_g<NN>_c<NN>``: the group ``gNN`` (one person or setting).
    3. ``<subject>_<anything>`` names, when every clip has one and they give at least
       two subjects.
    4. Otherwise each clip is its own subject (its path relative to ``path``): splits
       then separate clips, not people.

    ``name`` is the clip's path relative to ``path``; ``progress(done, total)`` is called
    after each clip. DataError names an unreadable file, a clip with no frames, and
    files that are neither videos nor clip folders.
    """
    if sampling not in SAMPLINGS:
        raise ValueError(f"Expected sampling in {SAMPLINGS}. Received: sampling={sampling!r}")
    for arg, value in (("frames", frames), ("size", size), ("stride", stride)):
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value!r}")
    clips = list_video_clips(path)
    subjects = _video_subjects(path, [rel for _, rel, _ in clips])
    recordings = []
    for i, (label, rel, _) in enumerate(clips):
        clip = read_clip(os.path.join(path, rel), frames, size, sampling, stride)
        recordings.append(Recording(clip, label, subjects[rel], rel))
        if progress:
            progress(i + 1, len(clips))
    return recordings


def list_video_clips(path):
    """[(class, clip path relative to ``path``, base name)] of a video folder."""
    if not os.path.isdir(path):
        raise DataError(path, "no such folder" if not os.path.exists(path) else
                        "expected a folder with one sub-folder of clips per class")
    classes = sorted(d for d in os.listdir(path)
                     if not d.startswith(".") and os.path.isdir(os.path.join(path, d)))
    if not classes:
        raise DataError(path, "expected one sub-folder of clips per class (the folder "
                        "name is the class); found none")
    clips = []
    for label in classes:
        found = []
        for entry in sorted(os.listdir(os.path.join(path, label)), key=natural_key):
            full = os.path.join(path, label, entry)
            ext = os.path.splitext(entry)[1].lower()
            if entry.startswith("."):
                continue
            if os.path.isdir(full):
                found.append((label, f"{label}/{entry}", entry))
            elif ext in VIDEO_EXTENSIONS or ext == ".gif":
                found.append((label, f"{label}/{entry}", os.path.splitext(entry)[0]))
            elif ext in IMAGE_EXTENSIONS:
                raise DataError(full, "a frame image directly in a class folder: put each "
                                "clip's frames in a sub-folder of its own")
        if not found:
            raise DataError(os.path.join(path, label), "no clips (video files "
                            f"{('.gif',) + VIDEO_EXTENSIONS} or folders of frame images)")
        clips.extend(found)
    return clips


def natural_key(name):
    """Sort key that orders digit runs by value: frame2 before frame10."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part.lower())
            for part in re.split(r"(\d+)", name) if part]


def _video_subjects(path, rels):
    """{clip path relative to ``path``: subject} (the rules of ``read_video_folder``)."""
    listing = os.path.join(path, "subjects.csv")
    if os.path.isfile(listing):
        from pipelines.common import textio

        subjects, known = {}, set(rels)
        for row in textio.read_table(listing, ("file", "subject"), fmt="csv"):
            rel = row.fields["file"].strip().replace("\\", "/").removeprefix("./")
            if rel not in known:
                raise DataError(listing, f"no clip {rel!r} (expected <class>/<file or "
                                "frame folder>)", line=row.line, field="file")
            if not row.fields["subject"].strip():
                raise DataError(listing, "the subject is empty", line=row.line,
                                field="subject")
            subjects[rel] = row.fields["subject"].strip()
        missing = [rel for rel in rels if rel not in subjects]
        if missing:
            raise DataError(listing, f"no subject for {len(missing)} clip(s): {missing[:3]} "
                            "(list every clip)")
        return subjects
    stems = [_stem(rel) for rel in rels]
    groups = [UCF101_NAME.match(stem) for stem in stems]
    if groups and all(groups):
        return {rel: f"g{g.group(1)}" for rel, g in zip(rels, groups)}
    prefixes = [stem.split("_", 1)[0] if "_" in stem.strip("_") else "" for stem in stems]
    if all(prefixes) and len(set(prefixes)) >= 2:
        return dict(zip(rels, prefixes))
    return {rel: rel for rel in rels}


def _stem(rel):
    base = rel.rsplit("/", 1)[-1]
    ext = os.path.splitext(base)[1].lower()
    return base[: -len(ext)] if ext in VIDEO_EXTENSIONS + (".gif",) else base


def sample_indices(count, frames, sampling="uniform", stride=1):
    """Indices of the ``frames`` frames taken from a clip of ``count`` frames."""
    if sampling == "uniform":
        return [(2 * i + 1) * count // (2 * frames) for i in range(frames)]
    available = (count - 1) // stride + 1
    return [min(i, available - 1) * stride for i in range(frames)]


def read_clip(path, frames, size, sampling="uniform", stride=1):
    """One clip (a .gif, a video file or a folder of frame images) -> (frames, size,
    size, 3) uint8."""
    if os.path.isdir(path):
        return _resize(_image_folder_frames(path, frames, sampling, stride), size)
    if path.lower().endswith(".gif"):
        return _resize(_gif_frames(path, frames, sampling, stride), size)
    return _resize(_video_frames(path, frames, sampling, stride), size)


def _gif_frames(path, frames, sampling, stride):
    import tensorflow as tf

    with open(path, "rb") as f:
        data = f.read()
    try:
        clip = tf.io.decode_gif(data).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
        raise DataError(path, f"cannot read the GIF ({e.message.splitlines()[0]})") from None
    if not len(clip):
        raise DataError(path, "the clip has no frames")
    return clip[sample_indices(len(clip), frames, sampling, stride)]


def _image_folder_frames(path, frames, sampling, stride):
    import tensorflow as tf

    names = sorted((n for n in os.listdir(path) if not n.startswith(".")
                    and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS), key=natural_key)
    if not names:
        raise DataError(path, f"the clip has no frames (no {IMAGE_EXTENSIONS} images)")
    chosen = sample_indices(len(names), frames, sampling, stride)
    decoded = {}
    for i in sorted(set(chosen)):
        file = os.path.join(path, names[i])
        with open(file, "rb") as f:
            data = f.read()
        try:
            decoded[i] = tf.io.decode_image(data, channels=3, expand_animations=False).numpy()
        except (tf.errors.InvalidArgumentError, tf.errors.UnknownError) as e:
            raise DataError(file, "cannot read the image "
                            f"({e.message.splitlines()[0]})") from None
    return [decoded[i] for i in chosen]


def _video_frames(path, frames, sampling, stride):
    """Decodes the clip once (twice when ffmpeg's frame count was too high), keeping
    only the sampled frames."""
    ffmpeg = _require("imageio_ffmpeg")
    if sampling == "stride":
        kept, _ = _decode(path, {i * stride for i in range(frames)})
        if not kept:
            raise DataError(path, "the clip has no frames")
        return [kept[i] for i in sample_indices(max(kept) + 1, frames, sampling, stride)]
    try:
        count, _ = ffmpeg.count_frames_and_secs(path)
    except (RuntimeError, OSError) as e:
        raise DataError(path, f"cannot read the video ({_ffmpeg_reason(e)})") from None
    if not count:
        raise DataError(path, "the clip has no frames")
    chosen = sample_indices(count, frames, sampling, stride)
    kept, decoded = _decode(path, set(chosen))
    if len(kept) < len(set(chosen)):  # fewer frames decode than the container counts
        if not decoded:
            raise DataError(path, "the clip has no frames")
        chosen = sample_indices(decoded, frames, sampling, stride)
        kept, _ = _decode(path, set(chosen))
    return [kept[i] for i in chosen]


def _decode(path, wanted):
    """({index: frame} for the ``wanted`` indices present, frames decoded), stopping
    after the last wanted one."""
    iio = _require("imageio.v3")
    kept, decoded, last = {}, 0, max(wanted)
    try:
        for i, frame in enumerate(iio.imiter(path, plugin="FFMPEG")):
            decoded = i + 1
            if i in wanted:
                kept[i] = np.asarray(frame)[..., :3]
            if i >= last:
                break
    except (RuntimeError, OSError, ValueError, StopIteration) as e:
        raise DataError(path, f"cannot read the video ({_ffmpeg_reason(e)})") from None
    return kept, decoded


def _ffmpeg_reason(error):
    """The last line of ffmpeg's complaint, not its banner."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    useful = [line for line in lines if "rror" in line or "nvalid" in line]
    return (useful or lines or [type(error).__name__])[-1][:200]


def _resize(clip, size):
    """Frames (each H, W, 3, sizes may differ) -> (n, size, size, 3) uint8, bilinear
    with antialiasing."""
    import tensorflow as tf

    def resize(x):
        x = tf.image.resize(x, (size, size), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(x), 0, 255), tf.uint8).numpy()

    if len({np.shape(frame) for frame in clip}) == 1:
        return resize(np.stack(clip))
    return np.stack([resize(frame) for frame in clip])


# ---------------------------------------------------------------------------- splits


def split_by_subject(recordings, valid_fraction=0.2, test_fraction=0.2, seed=0,
                     source="recordings"):
    """{"train", "valid", "test"}: lists of Recordings (kept in their order) with no
    subject in two splits. Subjects (sorted) are permuted with ``seed``
    (``np.random.RandomState``, as ``common.data.split_indices``): the first
    max(1, round(n * test_fraction)) are tested (no "test" key when ``test_fraction`` is
    0), the next max(1, round(n * valid_fraction)) validate, the rest train. DataError
    (naming ``source``) when there are too few subjects for one in each split."""
    if not 0 < valid_fraction < 1 or not 0 <= test_fraction < 1:
        raise ValueError("Expected 0 < valid_fraction < 1 and 0 <= test_fraction < 1. "
                         f"Received: valid_fraction={valid_fraction}, "
                         f"test_fraction={test_fraction}")
    subjects = sorted({r.subject for r in recordings})
    n = len(subjects)
    n_test = max(1, math.floor(n * test_fraction + 0.5)) if test_fraction else 0
    n_valid = max(1, math.floor(n * valid_fraction + 0.5))
    names = ["train", "valid"] + (["test"] if n_test else [])
    if n - n_test - n_valid < 1:
        raise DataError(source, f"{n} subject(s) cannot make {', '.join(names)} splits with "
                        f"no subject in two (valid_fraction={valid_fraction}, "
                        f"test_fraction={test_fraction} need at least {n_test + n_valid + 1})")
    order = [subjects[i] for i in np.random.RandomState(seed).permutation(n)]
    where = {s: "test" for s in order[:n_test]}
    where.update({s: "valid" for s in order[n_test:n_test + n_valid]})
    return {name: [r for r in recordings if where.get(r.subject, "train") == name]
            for name in names}


def leave_subjects_out(recordings, test_subjects, valid_subjects=(), source="recordings"):
    """{"train", "test"} (and "valid" when ``valid_subjects`` are given): the named
    subjects' recordings are tested (validate), the others train. DataError for a
    subject that is not among the recordings' or is named twice, or when no subject is
    left to train on."""
    subjects = {r.subject for r in recordings}
    test, valid = [str(s) for s in test_subjects], [str(s) for s in valid_subjects]
    unknown = [s for s in test + valid if s not in subjects]
    if unknown:
        raise DataError(source, f"subject(s) {unknown} are not among the subjects "
                        f"{sorted(subjects, key=natural_key)}")
    if not test:
        raise DataError(source, "no test subject given")
    if set(test) & set(valid):
        raise DataError(source, f"subject(s) {sorted(set(test) & set(valid))} are both "
                        "test and valid subjects")
    if not subjects - set(test) - set(valid):
        raise DataError(source, "no subject is left to train on")
    where = {s: "test" for s in test} | {s: "valid" for s in valid}
    names = ["train"] + (["valid"] if valid else []) + ["test"]
    return {name: [r for r in recordings if where.get(r.subject, "train") == name]
            for name in names}


# --------------------------------------------------------------------------- windows


def windows(frames, length, stride):
    """Fixed-length windows covering a recording: ``(windows (k, length, ...), lengths
    (k,) int32)``.

    Windows start at 0, ``stride``, 2 ``stride``...; when the last of them stops short of
    the end, one more ends exactly at the last frame, so every frame is in a window and
    every window is full. A recording shorter than ``length`` gives one window padded
    with zeros, its length the recording's.
    """
    frames = np.asarray(frames)
    for arg, value in (("length", length), ("stride", stride)):
        if value < 1:
            raise ValueError(f"Expected {arg} >= 1. Received: {arg}={value}")
    count = len(frames)
    if not count:
        raise ValueError("Expected a recording of at least one frame. Received: 0 frames")
    if count <= length:
        out = np.zeros((1, length) + frames.shape[1:], frames.dtype)
        out[0, :count] = frames
        return out, np.array([count], np.int32)
    starts = list(range(0, count - length + 1, stride))
    if starts[-1] + length < count:
        starts.append(count - length)
    return (np.stack([frames[s:s + length] for s in starts]),
            np.full(len(starts), length, np.int32))
