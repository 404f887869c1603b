"""zoo.builders.speech_recognizer: the CTC loss against a brute-force sum over every
alignment, padding frames that change nothing, lengths after the front-end."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from zoo.builders import speech_recognizer as sr


def _collapse(path, blank):
    out, previous = [], None
    for p in path:
        if p != previous and p != blank:
            out.append(p)
        previous = p
    return out


def _brute_force_nll(log_probs, labels):
    """-log Σ over all alignments of the T frames that collapse to ``labels``."""
    T, K1 = log_probs.shape
    total = 0.0
    for path in itertools.product(range(K1), repeat=T):
        if _collapse(path, K1 - 1) == list(labels):
            total += np.exp(sum(log_probs[t, p] for t, p in enumerate(path)))
    return -np.log(total)


@pytest.mark.parametrize("seed", [0, 1])
def test_ctc_loss_is_the_sum_over_alignments_and_padding_frames_change_nothing(seed):
    rng = np.random.RandomState(seed)
    K, T, pad = 2, 5, 3
    logits = rng.randn(2, T + pad, K + 1).astype(np.float32)
    lengths = np.array([T, 3])
    labels = [[0, 1, 1], [1]]
    mask = np.arange(T + pad)[None] < lengths[:, None]
    log_probs = sr.CTCBlankPadding()(tf.constant(logits), tf.constant(mask)).numpy()
    y_true = np.array([[0, 1, 1], [1, -1, -1]], np.int32)
    got = sr.CTCLoss(reduction=None)(tf.constant(y_true), tf.constant(log_probs)).numpy()
    for i in range(2):
        real = log_probs[i, :lengths[i]]
        np.testing.assert_allclose(np.exp(real).sum(-1), 1.0, rtol=1e-5)
        assert got[i] == pytest.approx(_brute_force_nll(real, labels[i]), rel=1e-4)


def test_a_padded_batch_gives_the_same_log_probs_on_real_frames():
    model = sr.build_speech_recognizer(6, 4, conv_layers=2, conv_filters=8, time_reduction=2,
                                       units=5, num_layers=2, dropout=0.0)
    x = np.random.RandomState(0).randn(1, 9, 6).astype(np.float32)
    alone = model({"features": x, "length": np.array([9])}).numpy()
    padded = np.concatenate([x, np.zeros((1, 7, 6), np.float32)], axis=1)
    batch = model({"features": padded, "length": np.array([9])}).numpy()
    assert alone.shape == (1, 5, 5) and batch.shape == (1, 8, 5)
    # the last real frame's convolution window reaches into the padding (zeros either way)
    np.testing.assert_allclose(batch[0, :5], alone[0], atol=1e-5)
    np.testing.assert_allclose(batch[0, 5:, -1], 0.0)  # padding frames: blank, certainly
    assert sr.reduced_lengths(np.array([0, 1, 8, 9]), 4).numpy().tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="time_reduction=4 needs conv_layers >= 2. Received: "
                                         "conv_layers=1"):
        sr.build_speech_recognizer(6, 4, conv_layers=1, time_reduction=4)


def test_spec_augment_masks_runs_within_the_limits_and_only_in_training():
    layer = sr.SpecAugment(time_masks=1, time_mask=10, freq_masks=1, freq_mask=3, seed=1,
                           time_ratio=0.1)
    x = np.ones((64, 50, 8), np.float32)
    length = np.array([50, 20] * 32)
    assert (layer(x, length, training=False).numpy() == 1).all()
    out = layer(x, length, training=True).numpy()
    for row, n in zip(out, length):
        masked_frames = np.where((row == 0).all(axis=1))[0]
        masked_bins = np.where((row == 0).all(axis=0))[0]
        assert len(masked_frames) <= int(0.1 * n) and (masked_frames < n).all()
        assert len(masked_bins) <= 3
        if len(masked_frames):
            assert np.ptp(masked_frames) == len(masked_frames) - 1  # one run
    assert (out == 0).any()


def test_log_mean_exp_is_the_log_of_the_mean_probability_and_a_distribution():
    import keras

    import zoo.layers

    rng = np.random.RandomState(0)
    members = [tf.nn.log_softmax(rng.randn(2, 5, 4) * 4).numpy() for _ in range(3)]
    members[2][0, 0] = [0.0, -1e4, -1e4, -1e4]  # a padding frame: the blank only
    out = zoo.layers.LogMeanExp()(members).numpy()
    expected = np.log(np.mean([np.exp(m.astype(np.float64)) for m in members], axis=0))
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.exp(out).sum(-1), 1.0, rtol=1e-5)
    single = zoo.layers.LogMeanExp()(members[:1]).numpy()
    np.testing.assert_allclose(single, members[0], atol=1e-6)
    layer = keras.layers.deserialize(keras.layers.serialize(zoo.layers.LogMeanExp(name="m")))
    assert isinstance(layer, zoo.layers.LogMeanExp) and layer.name == "m"


def test_member_stack_puts_members_on_axis_one_and_round_trips():
    import keras

    import zoo.layers

    rng = np.random.RandomState(1)
    members = [rng.randn(2, 5, 4).astype(np.float32) for _ in range(3)]
    out = zoo.layers.MemberStack()(members).numpy()
    assert out.shape == (2, 3, 5, 4)
    for k, m in enumerate(members):
        np.testing.assert_array_equal(out[:, k], m)
    symbolic = [keras.Input((None, 4)) for _ in range(3)]
    assert zoo.layers.MemberStack()(symbolic).shape == (None, 3, None, 4)
    layer = keras.layers.deserialize(keras.layers.serialize(zoo.layers.MemberStack(name="s")))
    assert isinstance(layer, zoo.layers.MemberStack) and layer.name == "s"
