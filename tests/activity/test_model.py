"""The activity model and its serving graph: masking by length, the windows cut inside
the graph equal to the training windows, NaN handling, GIF and frame decoding in the
graph against the file readers, and the data chain's split by subject."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from pipelines.activity import config as act_config, data, model as act_model, recordings
from pipelines.common.textio import DataError
from zoo.builders.activity import build_activity_model

CLASSES = ["A", "B", "C"]


def sensor_setup(window=20, stride=7, channels=3, seed=0):
    config = dataclasses.replace(act_config.PRESETS["small"], window=window, stride=stride,
                                 conv_filters=4, units=4, serve_batch_windows=5)
    rng = np.random.RandomState(seed)
    mean, variance = rng.randn(channels).tolist(), (rng.rand(channels) + 0.5).tolist()
    meta = {"kind": "sensor", "classes": CLASSES, "frame_shape": [channels], "window": window,
            "stride": stride, "mean": mean, "variance": variance}
    tf.keras.utils.set_random_seed(seed)
    model = act_model.build_model(config, meta)
    return config, meta, model


def window_mean(model, frames, meta):
    """The training path: recordings.windows, the model, the mean of the windows."""
    w, n = recordings.windows(frames, meta["window"], meta["stride"])
    return model({"frames": w.astype(np.float32), "length": n}, training=False).numpy().mean(0)


def test_the_normalisation_layer_uses_the_training_statistics():
    _, meta, model = sensor_setup()
    x = np.random.RandomState(1).randn(2, 9, 3).astype(np.float32)
    got = model.get_layer("normalise")(x).numpy()
    want = (x - np.array(meta["mean"])) / np.sqrt(np.array(meta["variance"]))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


def test_frames_past_the_length_change_nothing():
    _, _, model = sensor_setup()
    rng = np.random.RandomState(2)
    x = rng.randn(1, 13, 3).astype(np.float32)
    short = model({"frames": x, "length": np.array([13])}, training=False).numpy()
    padded = np.concatenate([x, 50 * rng.randn(1, 11, 3).astype(np.float32)], 1)
    long = model({"frames": padded, "length": np.array([13])}, training=False).numpy()
    np.testing.assert_allclose(short, long, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(short.sum(-1), 1.0, rtol=1e-5)


@pytest.mark.parametrize("steps", [0, 5, 20, 21, 27, 34, 61])
def test_the_serving_windows_are_the_training_windows(steps):
    """Lengths below, at and past one window, strides that fit and do not; chunks of 5
    windows in the graph."""
    config, meta, model = sensor_setup()
    server = act_model.serving_model(model, config, meta)
    frames = np.random.RandomState(steps).randn(1, steps, 3).astype(np.float32)
    out = server.classify_sensor(frames)
    if steps:
        np.testing.assert_allclose(out["probabilities"][0], window_mean(model, frames[0], meta),
                                   rtol=1e-5, atol=1e-6)
        w, _ = recordings.windows(frames[0], meta["window"], meta["stride"])
        starts = out["window_start"].numpy()[0]
        assert len(starts) == len(w)
        for s, window in zip(starts, w):
            np.testing.assert_array_equal(frames[0, s:s + meta["window"]][:len(window)],
                                          window[:max(0, min(meta["window"], steps - s))])
    else:
        assert np.isfinite(out["probabilities"].numpy()).all()
        assert out["window_start"].numpy().tolist() == [[0]]
    assert out["label"].numpy()[0].decode() == CLASSES[int(np.argmax(out["probabilities"][0]))]


def test_an_ensemble_averages_its_members_saves_and_serves(tmp_path):
    config, meta, first = sensor_setup(seed=0)
    second = sensor_setup(seed=1)[2]
    model = act_model.combine([first, second], config, meta)
    frames = np.random.RandomState(4).randn(45, 3).astype(np.float32)
    p1, p2 = window_mean(first, frames, meta), window_mean(second, frames, meta)
    assert not np.allclose(p1, p2), "the members are the same model"
    np.testing.assert_allclose(window_mean(model, frames, meta), (p1 + p2) / 2, rtol=1e-5,
                               atol=1e-6)
    path = str(tmp_path / "ensemble.keras")
    model.save(path)
    loaded = tf.keras.models.load_model(path)
    served = act_model.serving_model(loaded, config, meta).classify_sensor(frames[None])
    np.testing.assert_allclose(served["probabilities"][0], (p1 + p2) / 2, rtol=1e-5, atol=1e-6)


def test_padded_rows_with_lengths_equal_rows_alone():
    config, meta, model = sensor_setup()
    server = act_model.serving_model(model, config, meta)
    rng = np.random.RandomState(3)
    rows = [rng.randn(n, 3).astype(np.float32) for n in (45, 12, 30)]
    batch = np.zeros((3, 45, 3), np.float32)
    for i, r in enumerate(rows):
        batch[i, :len(r)] = r
    out = server.classify_sensor(batch, np.array([45, 12, 30], np.int32))
    for i, r in enumerate(rows):
        alone = server.classify_sensor(r[None])
        np.testing.assert_allclose(out["probabilities"][i], alone["probabilities"][0],
                                   rtol=1e-5, atol=1e-6)
        labels = [x.decode() for x in out["window_label"].numpy()[i] if x]
        assert labels == [x.decode() for x in alone["window_label"].numpy()[0]]
    assert out["window_start"].numpy()[1].tolist()[1:] == [-1] * (out["window_start"].shape[1] - 1)


def test_nan_and_infinite_readings_read_as_the_channel_mean():
    config, meta, model = sensor_setup()
    server = act_model.serving_model(model, config, meta)
    frames = np.random.RandomState(4).randn(1, 30, 3).astype(np.float32)
    holes = frames.copy()
    holes[0, 3, 1], holes[0, 17, 0], holes[0, 25, 2] = np.nan, np.inf, -np.inf
    filled = frames.copy()
    filled[0, 3, 1], filled[0, 17, 0], filled[0, 25, 2] = (meta["mean"][1], meta["mean"][0],
                                                            meta["mean"][2])
    np.testing.assert_allclose(server.classify_sensor(holes)["probabilities"],
                               server.classify_sensor(filled)["probabilities"], rtol=1e-6)
    huge = np.full((1, 30, 3), 3e38, np.float32)
    assert np.isfinite(server.classify_sensor(huge)["probabilities"].numpy()).all()


# ----------------------------------------------------------------------------- video


def video_setup(tmp_path, frames=4, size=16):
    config = dataclasses.replace(act_config.PRESETS["small"], kind="video", frames=frames,
                                 size=size, conv_layers=0, time_reduction=1, units=4,
                                 frame_filters=2, serve_batch_windows=3)
    meta = {"kind": "video", "classes": CLASSES, "frame_shape": [size, size, 3],
            "window": config.window, "stride": config.stride}
    tf.keras.utils.set_random_seed(5)
    return config, meta, act_model.build_model(config, meta)


def write_gif(path, count, seed):
    import imageio.v3 as iio

    clip = np.random.RandomState(seed).randint(0, 256, (count, 24, 30, 3)).astype(np.uint8)
    iio.imwrite(path, clip, extension=".gif")
    return path


@pytest.mark.parametrize("count", [1, 3, 9])
def test_gif_bytes_in_the_graph_equal_the_file_reader(tmp_path, count):
    config, meta, model = video_setup(tmp_path)
    server = act_model.serving_model(model, config, meta)
    path = write_gif(str(tmp_path / f"clip{count}.gif"), count, count)
    clip = recordings.read_clip(path, config.frames, config.size).astype(np.float32)
    want = model({"frames": clip[None], "length": np.array([config.frames])},
                 training=False).numpy()
    got = server.classify_gif(np.array([open(path, "rb").read()], object))
    np.testing.assert_allclose(got["probabilities"], want, rtol=1e-4, atol=1e-5)
    frames = tf.io.decode_gif(open(path, "rb").read()).numpy()
    by_frames = server.classify_frames(frames[None])
    np.testing.assert_allclose(by_frames["probabilities"], want, rtol=1e-4, atol=1e-5)


def test_bytes_that_are_not_a_gif_name_the_row(tmp_path):
    config, meta, model = video_setup(tmp_path)
    server = act_model.serving_model(model, config, meta)
    good = open(write_gif(str(tmp_path / "a.gif"), 2, 0), "rb").read()
    with pytest.raises(tf.errors.InvalidArgumentError,
                       match=r"Expected encoded GIF bytes \(a GIF87a or GIF89a header\) in video. "
                       r"Received: row 1 is not a GIF"):
        server.classify_gif(np.array([good, b"\x89PNG not a gif"], object))


def test_a_clip_of_no_frames_gives_a_valid_output(tmp_path):
    config, meta, model = video_setup(tmp_path)
    server = act_model.serving_model(model, config, meta)
    out = server.classify_frames(np.zeros((2, 0, 10, 10, 3), np.uint8))
    probs = out["probabilities"].numpy()
    assert probs.shape == (2, 3) and np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)


def test_the_builder_wants_one_input_kind():
    with pytest.raises(ValueError, match="exactly one of channels"):
        build_activity_model(3)


# ------------------------------------------------------------------------------ data


def test_the_embedded_splits_keep_subjects_apart():
    config = act_config.PRESETS["small"]
    datasets = data.make_datasets(config)
    subjects = datasets.meta["subjects"]
    assert subjects == {"train": ["1", "3", "4", "6", "8", "10"], "valid": ["7"],
                        "test": ["2", "5", "9"]}
    assert datasets.sizes["test_recordings"] == 42 and datasets.meta["classes"] == [
        "ABD", "ER", "FEL", "IR", "PEN", "ROW", "TRAP"]
    by_name = {r.name: r for r in recordings.watch_recordings()}
    x, y = next(iter(datasets.test))
    first = by_name[datasets.meta["examples"][0]]
    assert first.subject in ("2", "5", "9")
    w, _ = recordings.windows(first.frames, config.window, config.stride)
    np.testing.assert_array_equal(x["frames"].numpy(), w)
    assert datasets.meta["classes"][int(y)] == first.label


def test_test_subjects_without_valid_subjects_are_refused():
    config = dataclasses.replace(act_config.PRESETS["small"], valid_subjects=())
    with pytest.raises(DataError) as e:
        data.make_datasets(config)
    assert str(e.value) == ("embedded: test_subjects needs valid_subjects too "
                            "(--set valid_subjects=S1,S2)")


@pytest.mark.slow  # about 40 s (building MobileNetV3Small twice)
def test_a_backbone_loads_its_weights_from_a_local_file(tmp_path):
    """keras.applications without a download: the weights come from the given file."""
    import keras

    from zoo.builders.activity import frame_encoder

    net = keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), include_top=False,
                                              weights=None, pooling="avg")
    path = str(tmp_path / "backbone.weights.h5")
    net.save_weights(path)
    encoder = frame_encoder(32, backbone="mobilenet_v3_small", weights=path)
    image = np.random.RandomState(6).randint(0, 256, (2, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(encoder(image).numpy(), net(image, training=False).numpy(),
                               rtol=1e-5, atol=1e-5)
    assert not any(w.trainable for w in encoder.weights)
    with pytest.raises(ValueError, match="needs a local weights file"):
        frame_encoder(32, backbone="mobilenet_v3_small")


def test_rotations_are_rotations_by_the_angle_about_the_axis():
    rng = np.random.RandomState(8)
    axes = rng.randn(5, 3)
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = rng.uniform(-np.pi, np.pi, 5)
    r = data.rotation_matrices(tf.constant(angles, tf.float32),
                               tf.constant(axes, tf.float32)).numpy()
    for m, axis, angle in zip(r, axes, angles):
        np.testing.assert_allclose(m @ m.T, np.eye(3), atol=1e-5)
        assert np.linalg.det(m) == pytest.approx(1.0, abs=1e-5)
        np.testing.assert_allclose(m @ axis, axis, atol=1e-5)  # the axis stays
        assert np.trace(m) == pytest.approx(1 + 2 * np.cos(angle), abs=1e-5)


def test_augmentation_turns_each_sensor_triad_and_keeps_padding_zero():
    frames = np.random.RandomState(9).randn(10, 6).astype(np.float32)
    frames[7:] = 0  # past the window's length
    x, _ = data.augment({"frames": tf.constant(frames), "length": tf.constant(7)},
                        tf.constant(0), rotate=30.0, scale=0.0, seed=1)
    out = x["frames"].numpy()
    for g in range(2):
        triad = slice(3 * g, 3 * g + 3)
        np.testing.assert_allclose(np.linalg.norm(out[:, triad], axis=1),
                                   np.linalg.norm(frames[:, triad], axis=1), rtol=1e-5)
        cos = (out[:7, triad] * frames[:7, triad]).sum(1) / np.linalg.norm(frames[:7, triad], axis=1) ** 2
        assert (cos > np.cos(np.radians(30)) - 1e-5).all()  # turned by at most 30 degrees
    assert not out[7:].any() and not np.allclose(out, frames)
    scaled, _ = data.augment({"frames": tf.constant(frames), "length": tf.constant(7)},
                             tf.constant(0), rotate=0.0, scale=0.2, seed=2)
    ratio = scaled["frames"].numpy()[:7] / frames[:7]
    np.testing.assert_allclose(ratio, np.broadcast_to(ratio[:1], ratio.shape), rtol=1e-5)
    assert ((ratio > 0.8 - 1e-6) & (ratio < 1.2 + 1e-6)).all()
