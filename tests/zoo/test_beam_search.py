"""zoo.decoding.beam_search: width 1 is greedy, a wide beam finds the best-scoring
sequence of a small model where every sequence can be enumerated, in eager code and
inside a tf.function, with batches, length penalties and banned tokens."""

import itertools

import numpy as np
import pytest
import tensorflow as tf

from zoo import decoding

V, EOS = 4, 3  # tokens 0, 1, 2 and <EOS>


def _table(seed):
    """A fixed "model": logits of the next token given the previous token and the step,
    (steps, V + 1 previous tokens (V = the start), V), rows scaled to be decisive."""
    return np.random.default_rng(seed).normal(size=(6, V + 1, V)).astype("float32") * 2.0


def _step_fn(table):
    """step_fn over states [previous token, step] held as floats (n, 2)."""
    table = tf.constant(table)

    def step(tokens, states):
        (state,) = states
        step_index = tf.cast(state[:, 1], tf.int32) + 1
        logits = tf.gather_nd(table, tf.stack([step_index, tokens], axis=1))
        return logits, [tf.stack([tf.cast(tokens, tf.float32), tf.cast(step_index, tf.float32)], 1)]

    return step


def _first(table, batch):
    return (np.repeat(table[0, V][None], batch, 0),
            [tf.constant(np.tile([[V, 0.0]], (batch, 1)), tf.float32)])


def _log_softmax(z):
    z = z - z.max()
    return z - np.log(np.exp(z).sum())


def _enumerate(table, max_length, alpha, banned=()):
    """Every sequence (ending in <EOS> or at max_length) with its normalised score."""
    best = []
    for n in range(1, max_length + 1):
        for seq in itertools.product(range(V), repeat=n):
            if EOS in seq[:-1] or any(t in banned for t in seq):
                continue
            score, previous = 0.0, V
            for step, token in enumerate(seq):
                logits = table[step, previous].copy()
                logits[list(banned)] = -np.inf
                score += _log_softmax(logits)[token]
                previous = token
            ended = seq[-1] == EOS
            if not ended and n < max_length:
                continue
            length = n  # the <EOS> counts in the penalty's length
            kept = seq[:-1] if ended else seq
            best.append((score / ((5 + length) / 6) ** alpha, list(kept)))
    return sorted(best, key=lambda x: -x[0])


@pytest.mark.parametrize("alpha", [0.0, 1.0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_wide_beam_finds_the_best_sequence_of_all(seed, alpha):
    table, max_length = _table(seed), 4
    logits, states = _first(table, 2)
    tokens, lengths, scores = decoding.beam_search(_step_fn(table), logits, states,
                                                   beam_width=V ** max_length,
                                                   max_length=max_length, eos_id=EOS, alpha=alpha)
    want_score, want_tokens = _enumerate(table, max_length, alpha)[0]
    for row in range(2):  # two identical rows, decoded side by side
        n = int(lengths[row, 0])
        assert tokens[row, 0, :n].numpy().tolist() == want_tokens
        assert float(scores[row, 0]) == pytest.approx(want_score, rel=1e-5)


def test_width_1_is_greedy_decoding():
    table = _table(3)
    logits, states = _first(table, 1)
    tokens, lengths, _ = decoding.beam_search(_step_fn(table), logits, states, beam_width=1,
                                              max_length=5, eos_id=EOS)
    greedy, previous = [], V
    for step in range(5):
        token = int(np.argmax(table[step, previous]))
        if token == EOS:
            break
        greedy.append(token)
        previous = token
    assert tokens[0, 0, :int(lengths[0, 0])].numpy().tolist() == greedy


def test_in_a_graph_with_banned_tokens_and_sorted_beams():
    table = _table(4)
    run = tf.function(lambda logits, state, max_length: decoding.beam_search(
        _step_fn(table), logits, [state], beam_width=3, max_length=max_length, eos_id=EOS,
        banned_ids=[1]))
    logits, states = _first(table, 2)
    tokens, lengths, scores = run(tf.constant(logits), states[0], tf.constant(4))
    assert tokens.shape[:2] == (2, 3) and not np.isin(tokens.numpy(), [1]).any()
    assert (np.diff(scores.numpy(), axis=1) <= 0).all()  # best first
    enumerated = _enumerate(table, 4, 0.0, banned=(1,))
    assert float(scores[0, 0]) <= enumerated[0][0] + 1e-5  # no beam beats the true best
    empty = run(tf.zeros((0, V)), tf.zeros((0, 2)), tf.constant(4))
    assert empty[0].shape[:2] == (0, 3)
    none = run(tf.constant(logits), states[0], tf.constant(0))
    assert none[0].shape == (2, 3, 0) and none[1].numpy().tolist() == [[0, 0, 0]] * 2


def test_beam_width_must_be_a_positive_int():
    with pytest.raises(ValueError, match="Expected beam_width >= 1. Received: beam_width=0"):
        decoding.beam_search(None, tf.zeros((1, V)), [], 0, 3, EOS)


def test_a_beam_width_tensor_gives_what_the_int_gives_in_one_traced_graph():
    table = _table(5)
    logits, states = _first(table, 2)
    run = tf.function(lambda width: decoding.beam_search(
        _step_fn(table), logits, states, beam_width=width, max_length=4, eos_id=EOS, alpha=0.6),
        input_signature=[tf.TensorSpec([], tf.int32)])
    for width in (1, 2, 5):
        want = tf.function(lambda: decoding.beam_search(  # noqa: B023 -- called at once
            _step_fn(table), logits, states, beam_width=width, max_length=4, eos_id=EOS,
            alpha=0.6))()
        got = run(tf.constant(width))
        assert got[0].shape[1] == width
        for a, b in zip(got, want):
            np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)
    assert run.experimental_get_tracing_count() == 1
