"""The language model builder: stepping equals the full sequence, masking in the step
model, the untrained loss, serialization, and the sampler against the model's softmax."""

import numpy as np
import pytest
import tensorflow as tf
import keras

from zoo import decoding
from zoo.builders import language_model as lm


def _model(cell="lstm", layers=2, vocab=11, seed=0):
    keras.utils.set_random_seed(seed)
    return lm.build_language_model(vocab, embedding_dim=8, cell=cell, units=12,
                                   num_layers=layers, dropout=0.2)


def _step(step_model, ids, states, mask=None):
    ids = tf.constant(ids, tf.int32)
    mask = tf.ones_like(ids, tf.bool) if mask is None else tf.constant(mask)
    out = step_model([ids, mask] + list(states))
    return np.asarray(out["logits"]), out["states"]


@pytest.mark.parametrize("cell", ["rnn", "simplified_gru", "gru", "lstm", "peephole_lstm"])
def test_one_token_at_a_time_equals_the_full_sequence(cell):
    model = _model(cell)
    step_model = lm.build_step_model(model)
    ids = np.random.default_rng(0).integers(0, 11, (3, 9)).astype("int32")
    ids[:, 0] = 0  # the start token
    full = np.asarray(model(ids))  # (3, 9, 11)
    states = lm.initial_states(model, 3)
    stepped = []
    for t in range(ids.shape[1]):
        logits, states = _step(step_model, ids[:, t : t + 1], states)
        stepped.append(logits)
    np.testing.assert_allclose(np.concatenate(stepped, axis=1), full, atol=1e-5)
    # Windows with carried state (truncated BPTT) also equal the full sequence.
    first, states = _step(step_model, ids[:, :4], lm.initial_states(model, 3))
    second, _ = _step(step_model, ids[:, 4:], states)
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), full, atol=1e-5)


def test_step_model_shares_weights_with_the_sequence_model():
    model = _model()
    step_model = lm.build_step_model(model)
    assert {id(w) for w in step_model.weights} == {id(w) for w in model.weights}
    dense = model.get_layer("logits")
    dense.bias.assign(dense.bias + 1.0)
    ids = np.array([[0, 3, 4]], "int32")
    logits, _ = _step(step_model, ids, lm.initial_states(model, 1))
    np.testing.assert_allclose(logits, np.asarray(model(ids)), atol=1e-5)


def test_masked_padding_leaves_the_state_unchanged():
    model = _model("gru")
    step_model = lm.build_step_model(model)
    short = np.array([[0, 5, 6]], "int32")
    padded = np.array([[0, 5, 6, 0, 0]], "int32")
    mask = np.array([[True, True, True, False, False]])
    _, states_short = _step(step_model, short, lm.initial_states(model, 1))
    _, states_padded = _step(step_model, padded, lm.initial_states(model, 1), mask)
    for a, b in zip(states_short, states_padded):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


def test_start_token_embeds_to_zero():
    model = _model()
    emb = np.asarray(model.get_layer("embedding")(np.array([[0, 1, 0, 2]], "int32")))
    assert np.all(emb[0, [0, 2]] == 0) and np.any(emb[0, 1] != 0)


def test_untrained_loss_is_about_log_vocabulary():
    vocab = 50
    model = _model(vocab=vocab, layers=1)
    ids = np.random.default_rng(1).integers(1, vocab, (16, 40)).astype("int32")
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)(ids, model(ids))
    assert abs(float(loss) - np.log(vocab)) < 0.05 * np.log(vocab)


def test_saved_model_reloads_and_steps(tmp_path):
    model = _model("peephole_lstm")
    path = str(tmp_path / "lm.keras")
    model.save(path)
    loaded = keras.models.load_model(path)
    ids = np.array([[0, 1, 2, 3]], "int32")
    np.testing.assert_allclose(np.asarray(loaded(ids)), np.asarray(model(ids)), atol=1e-6)
    logits, _ = _step(lm.build_step_model(loaded), ids, lm.initial_states(loaded, 1))
    np.testing.assert_allclose(logits, np.asarray(model(ids)), atol=1e-5)


def test_builder_rejects_bad_arguments():
    with pytest.raises(ValueError, match="vocab_size"):
        lm.build_language_model(1)
    with pytest.raises(ValueError, match="dropout"):
        lm.build_language_model(10, dropout=1.0)
    with pytest.raises(ValueError, match="units"):
        lm.build_language_model(10, units=[8], num_layers=2)


def test_sampled_first_tokens_follow_the_model_softmax():
    """Chi-square: 20,000 first tokens drawn by sample_loop against softmax(z<1>)."""
    vocab = 6
    model = _model(vocab=vocab, layers=1, seed=3)
    model.get_layer("logits").bias.assign(np.array([0.0, 1.0, -0.5, 0.5, 0.2, -1.0], "float32"))
    step_model = lm.build_step_model(model)
    n = 20000
    logits, states = _step(step_model, np.zeros((n, 1), "int32"), lm.initial_states(model, n))

    def step_fn(token, states):
        out = step_model([token[:, None], tf.ones_like(token[:, None], tf.bool)] + list(states))
        return out["logits"][:, -1], out["states"]

    tokens, _ = decoding.sample_loop(step_fn, logits[:, -1], states, 1, seed=11, banned_ids=[0])
    counts = np.bincount(np.asarray(tokens)[:, 0], minlength=vocab)
    p = np.exp(logits[0, -1] - logits[0, -1].max())
    p[0] = 0.0
    p /= p.sum()
    assert counts[0] == 0
    expected = n * p[1:]
    chi2 = (((counts[1:] - expected) ** 2) / expected).sum()
    assert chi2 < 18.47, (chi2, counts, expected)  # 5 tokens: df 4, upper 0.1% point


def test_carried_state_training_equals_the_concatenated_sequence(tmp_path):
    model = lm.build_language_model(11, embedding_dim=8, cell="lstm", units=12, num_layers=2)
    wrapper = lm.CarriedStateModel(model, batch_size=3)
    ids = np.random.default_rng(2).integers(1, 11, (3, 10)).astype("int32")
    ids[:, [0, 5]] = 0  # every window starts with the start token
    first = np.asarray(wrapper(ids[:, :5], training=True))
    second = np.asarray(wrapper(ids[:, 5:], training=True))
    np.testing.assert_allclose(np.concatenate([first, second], axis=1), np.asarray(model(ids)),
                               atol=1e-5)
    np.testing.assert_allclose(np.asarray(wrapper(ids)), np.asarray(model(ids)), atol=1e-6)
    path = str(tmp_path / "tbptt.keras")
    wrapper.save(path)
    loaded = keras.models.load_model(path)
    assert isinstance(loaded, lm.CarriedStateModel)
    np.testing.assert_allclose(np.asarray(loaded.carried[0]), np.asarray(wrapper.carried[0]))
    assert lm.unwrap(loaded) is loaded.language_model and lm.unwrap(model) is model
    wrapper.reset_states()
    assert not np.asarray(wrapper.carried[0]).any()


def test_streamed_cross_entropy_carries_the_state_across_windows():
    from pipelines.char_lm import data, model as model_lib

    model = _model("gru", layers=2)
    for w in model.weights:  # larger weights: predictions that depend on the history
        w.assign(w * 4.0)
    ids = np.random.default_rng(3).integers(1, 11, 2 * 23 + 1).astype("int32")  # 1 token dropped
    whole, count = model_lib.stream_cross_entropy(model, ids, window=1000, rows=2)
    assert count == 46
    for window in (1, 5, 23):  # any window: the state carries over
        nats, _ = model_lib.stream_cross_entropy(model, ids, window=window, rows=2)
        np.testing.assert_allclose(nats, whole, rtol=1e-5)
    # Reference: each row as one sequence through the sequence model, start token first.
    y = ids[:46].reshape(2, 23)
    logits = model(data.inputs_from_targets(y), training=False)
    nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
    np.testing.assert_allclose(whole, float(tf.reduce_mean(nll)), rtol=1e-5)
    # Windows that restart the states (cross_entropy) differ: the stream is not windowed.
    windows = data.make_dataset(ids[:46], window=5, batch_size=4)
    assert abs(model_lib.cross_entropy(model, windows)[0] - whole) > 1e-2
    with pytest.raises(ValueError, match="at least 50 tokens"):
        model_lib.stream_cross_entropy(model, ids, rows=50)
