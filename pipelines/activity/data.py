"""Activity data: recordings -> ``({"frames", "length"}, class id)`` examples.

Where recordings come from (``recordings.py``): ``embedded`` (the seglearn wheel's
smartwatch recordings: 6 sensor channels at 50 Hz), a sensor folder (``labels.csv``
beside a .csv or .npy per recording) or a video folder (a sub-folder of clips per
class). Splits are by subject (``test_subjects`` / ``valid_subjects``, or seeded
fractions of the subjects): no person's recordings in two splits.

Train and valid examples are sensor windows (``window`` frames every ``stride``, see
``recordings.windows``) or whole clips (video: one clip, ``frames`` frames); frames are
float32 (video pixels 0-255: the model scales them). The test split (and ``read_split``)
yields one element per recording, all its windows: ``({"frames": (k, window, ...),
"length": (k,)}, class id)``, so ``evaluate`` scores recordings (the mean of their
windows' probabilities), not windows.
"""

import os

import numpy as np

from pipelines.activity import recordings as rec
from pipelines.common.textio import DataError


def kind_of(config, path=None):
    """"sensor" or "video" for the config's data (``kind``, or what the folder holds)."""
    path = path or config.data
    if config.kind != "auto":
        return config.kind
    if path == "embedded":
        return "sensor"
    if os.path.isfile(path) or os.path.exists(os.path.join(path, "labels.csv")):
        return "sensor"
    return "video"


def read_recordings(config, path=None, kind=None):
    """The Recordings of the config's data (or of ``path``)."""
    path = path or config.data
    kind = kind or kind_of(config, path)
    if path == "embedded":
        return rec.watch_recordings()
    if not os.path.exists(path):
        raise DataError(path, "no such file or folder")
    if kind == "sensor":
        return rec.read_sensor_folder(path, nan=config.nan)
    return rec.read_video_folder(path, config.frames, config.size, config.sampling,
                                 config.frame_stride)


def splits(recordings, config, source):
    """{"train", "valid", "test"}: Recordings split by subject."""
    if config.test_subjects:
        if not config.valid_subjects:
            raise DataError(source, "test_subjects needs valid_subjects too "
                            "(--set valid_subjects=S1,S2)")
        return rec.leave_subjects_out(recordings, config.test_subjects, config.valid_subjects,
                                      source=source)
    return rec.split_by_subject(recordings, config.valid_fraction, config.test_fraction,
                                config.seed, source=source)


def _class_ids(found, meta, source):
    index = {c: i for i, c in enumerate(meta["classes"])}
    unknown = sorted({r.label for r in found if r.label not in index})
    if unknown:
        raise DataError(source, f"labels {unknown[:5]} were not in training "
                        f"(classes {meta['classes']})")
    return np.array([index[r.label] for r in found], np.int32)


def _check_shape(found, meta, source):
    want = tuple(meta["frame_shape"])
    for r in found:
        if tuple(r.frames.shape[1:]) != want:
            raise DataError(f"{source}: {r.name}", f"frames of shape {r.frames.shape[1:]}, "
                            f"the model's are {want}")


def recording_windows(recording, meta):
    """One recording -> (windows (k, W, ...) float32, lengths (k,) int32): sensor
    windows of ``meta["window"]`` every ``meta["stride"]`` frames; a video clip whole."""
    frames = recording.frames.astype(np.float32)
    if meta["kind"] == "video":
        return frames[None], np.array([len(frames)], np.int32)
    return rec.windows(frames, meta["window"], meta["stride"])


def rotation_matrices(angles, axes):
    """(n,) angles (radians) and (n, 3) unit axes -> (n, 3, 3) rotations (Rodrigues:
    R = I + sin θ K + (1 - cos θ) K², K the axis' cross-product matrix)."""
    import tensorflow as tf

    x, y, z = tf.unstack(axes, axis=-1)
    zero = tf.zeros_like(x)
    k = tf.reshape(tf.stack([zero, -z, y, z, zero, -x, -y, x, zero], -1), [-1, 3, 3])
    s, c = tf.sin(angles)[:, None, None], tf.cos(angles)[:, None, None]
    return tf.eye(3, batch_shape=tf.shape(angles)[:1]) + s * k + (1 - c) * (k @ k)


def augment(inputs, label, rotate, scale, seed):
    """One training window: each group of 3 channels rotated by one random rotation of
    at most ``rotate`` degrees, each channel scaled by U(1 - scale, 1 + scale); frames
    past the window's length stay 0."""
    import tensorflow as tf

    frames = inputs["frames"]
    channels = frames.shape[-1]
    if rotate and channels % 3 == 0:
        axis = tf.math.l2_normalize(tf.random.normal([1, 3], seed=seed), -1)
        angle = tf.random.uniform([1], -rotate, rotate, seed=seed) * (3.141592653589793 / 180)
        r = rotation_matrices(angle, axis)[0]
        groups = tf.reshape(frames, [-1, channels // 3, 3])
        frames = tf.reshape(tf.einsum("tgj,ij->tgi", groups, r), [-1, channels])
    if scale:
        frames *= tf.random.uniform([channels], 1 - scale, 1 + scale, seed=seed)
    return {"frames": frames, "length": inputs["length"]}, label


def window_dataset(found, meta, config, training=False):
    """Batches of single windows (train / valid); training windows shuffled and, for
    sensors, augmented (``augment``: ``rotate``, ``scale``)."""
    import tensorflow as tf

    ids = _class_ids(found, meta, config.data)
    parts = [recording_windows(r, meta) for r in found]
    x = np.concatenate([w for w, _ in parts])
    lengths = np.concatenate([n for _, n in parts])
    y = np.concatenate([np.full(len(n), i, np.int32) for (_, n), i in zip(parts, ids)])
    ds = tf.data.Dataset.from_tensor_slices(({"frames": x, "length": lengths}, y))
    if training:
        ds = ds.shuffle(len(y), seed=config.seed, reshuffle_each_iteration=True)
        if meta["kind"] == "sensor" and (config.rotate or config.scale):
            ds = ds.map(lambda x, t: augment(x, t, config.rotate, config.scale, config.seed))
    return ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE), len(y)


def recording_dataset(found, meta):
    """One element per recording: all its windows and its class id (module docstring)."""
    import tensorflow as tf

    ids = _class_ids(found, meta, "recordings")
    shape = tuple(meta["frame_shape"])
    spec = ({"frames": tf.TensorSpec((None, None) + shape, tf.float32),
             "length": tf.TensorSpec((None,), tf.int32)}, tf.TensorSpec((), tf.int32))

    def generate():
        for r, i in zip(found, ids):
            w, n = recording_windows(r, meta)
            yield {"frames": w, "length": n}, i

    return tf.data.Dataset.from_generator(generate, output_signature=spec)


def make_meta(train, config, kind, source):
    shape = tuple(int(d) for d in train[0].frames.shape[1:])
    meta = {"kind": kind, "source": source, "classes": sorted({r.label for r in train}),
            "frame_shape": list(shape), "window": config.window, "stride": config.stride}
    if kind == "sensor":
        frames = np.concatenate([r.frames for r in train]).astype(np.float64)
        meta["mean"] = frames.mean(0).tolist()
        meta["variance"] = frames.var(0).tolist()
    return meta


def make_datasets(config, meta=None):
    """``Datasets`` of the config's data (module docstring)."""
    from pipelines.common.task import Datasets

    source = config.data
    kind = kind_of(config)
    found = read_recordings(config, kind=kind)
    if not found:
        raise DataError(source, "no recordings")
    parts = splits(found, config, source)
    if meta is None:
        meta = make_meta(parts["train"], config, kind, source)
        meta["subjects"] = {k: sorted({r.subject for r in v}, key=rec.natural_key)
                            for k, v in parts.items()}
        meta["examples"] = [r.name for r in parts.get("test", parts["valid"])[:3]]
    for part in parts.values():
        _check_shape(part, meta, source)
    train, n_train = window_dataset(parts["train"], meta, config, training=True)
    valid, n_valid = window_dataset(parts["valid"], meta, config)
    test = recording_dataset(parts["test"], meta) if "test" in parts else None
    sizes = {"train_windows": n_train, "valid_windows": n_valid,
             **{f"{k}_recordings": len(v) for k, v in parts.items()}}
    return Datasets(train=train, valid=valid, test=test, meta=meta, sizes=sizes)


def read_split(config, meta, path):
    """``evaluate --data PATH``: every recording of a sensor or video folder."""
    found = read_recordings(config, path, kind=meta["kind"])
    _check_shape(found, meta, path)
    return recording_dataset(found, meta)
