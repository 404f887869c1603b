"""zoo.decoding: logit filters against NumPy, greedy limits, seeds, and a chi-square
check that sampled frequencies follow the filtered softmax."""

import numpy as np
import pytest
import tensorflow as tf

from zoo import decoding

# Upper 0.1% points of the chi-square distribution (df -> critical value).
CHI2_999 = {1: 10.83, 2: 13.82, 3: 16.27, 4: 18.47, 5: 20.52}


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def test_top_k_keeps_the_k_largest():
    logits = np.array([[0.1, 2.0, -1.0, 3.0, 0.5]], "float32")
    kept = np.asarray(decoding.top_k_filter(logits, 2)) > decoding.NEG_INF / 2
    np.testing.assert_array_equal(kept, [[False, True, False, True, False]])
    for k in (0, 5, 9):  # off
        np.testing.assert_array_equal(np.asarray(decoding.top_k_filter(logits, k)), logits)


def test_top_p_keeps_the_smallest_set_reaching_p():
    probs = np.array([[0.5, 0.2, 0.15, 0.1, 0.05]])
    logits = np.log(probs).astype("float32")
    for p, expected in [(0.5, 1), (0.55, 2), (0.7, 2), (0.71, 3), (0.96, 5), (1.0, 5)]:
        kept = np.asarray(decoding.top_p_filter(logits, p)) > decoding.NEG_INF / 2
        assert kept.sum() == expected, (p, kept)
        assert kept[0, :expected].all()


def test_temperature_to_zero_equals_greedy():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(64, 30)).astype("float32") * 3
    greedy = np.asarray(decoding.greedy(logits))
    cold = np.asarray(decoding.sample_logits(logits, seed=1, temperature=1e-4))
    zero = np.asarray(decoding.sample_logits(logits, seed=1, temperature=0.0))
    np.testing.assert_array_equal(cold, greedy)
    np.testing.assert_array_equal(zero, greedy)
    warm = np.asarray(decoding.sample_logits(logits, seed=1, temperature=1.0))
    assert (warm != greedy).any()


def test_same_seed_same_sample_and_banned_never_drawn():
    logits = np.zeros((500, 6), "float32")
    a = np.asarray(decoding.sample_logits(logits, seed=7, banned_ids=[0, 2]))
    b = np.asarray(decoding.sample_logits(logits, seed=7, banned_ids=[0, 2]))
    c = np.asarray(decoding.sample_logits(logits, seed=8, banned_ids=[0, 2]))
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert not np.isin(a, [0, 2]).any()
    with pytest.raises(ValueError, match="banned"):
        decoding.ban_tokens(tf.constant(logits), [6])


@pytest.mark.parametrize(
    "temperature,top_k,top_p", [(1.0, 0, 1.0), (0.7, 0, 1.0), (1.0, 3, 1.0), (1.3, 0, 0.8)]
)
def test_sampler_frequencies_match_probabilities(temperature, top_k, top_p):
    """Pearson chi-square of 20,000 draws against softmax(filtered z / τ)."""
    z = np.array([1.0, 0.2, -0.5, 0.7, -1.5, 0.0], "float32")
    n = 20000
    draws = np.asarray(
        decoding.sample_logits(np.tile(z, (n, 1)), seed=3, temperature=temperature,
                               top_k=top_k, top_p=top_p)
    )
    filtered = np.asarray(decoding.filter_logits(z[None], temperature, top_k, top_p))[0]
    p = _softmax(filtered)
    support = p > 1e-9
    counts = np.bincount(draws, minlength=len(z))
    assert counts[~support].sum() == 0
    expected = n * p[support]
    chi2 = (((counts[support] - expected) ** 2) / expected).sum()
    assert chi2 < CHI2_999[support.sum() - 1], (chi2, counts, expected)


def _toy_step(table):
    """A bigram 'model': the next logits are row ``token`` of ``table``; the state counts steps."""
    table = tf.constant(table, tf.float32)

    def step_fn(token, states):
        return tf.gather(table, token), [states[0] + 1.0]

    return step_fn


def test_sample_loop_stops_at_eos_and_counts_lengths():
    # token 1 -> always 2 (EOS); token 3 -> always 3.
    table = np.full((4, 4), -50.0, "float32")
    table[0, 1] = table[1, 2] = table[2, 3] = table[3, 3] = 50.0
    first = np.array([[-50, 50, -50, -50], [-50, -50, -50, 50]], "float32")  # row 0 -> 1, row 1 -> 3
    states = [tf.zeros((2, 1))]
    tokens, lengths = decoding.sample_loop(_toy_step(table), first, states, 6, seed=0, eos_id=2)
    np.testing.assert_array_equal(np.asarray(lengths), [1, 6])
    np.testing.assert_array_equal(np.asarray(tokens), [[1, 0, 0, 0, 0, 0], [3, 3, 3, 3, 3, 3]])


def test_sample_loop_in_a_tf_function_matches_eager():
    rng = np.random.default_rng(1)
    table = rng.normal(size=(5, 5)).astype("float32")
    first = rng.normal(size=(3, 5)).astype("float32")
    step = _toy_step(table)
    eager = decoding.sample_loop(step, first, [tf.zeros((3, 1))], 8, seed=5, temperature=0.9, top_k=3)

    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.int32)])
    def graph(max_length, seed):
        return decoding.sample_loop(step, first, [tf.zeros((3, 1))], max_length, seed,
                                    temperature=0.9, top_k=3)

    compiled = graph(tf.constant(8), tf.constant(5))
    np.testing.assert_array_equal(np.asarray(eager[0]), np.asarray(compiled[0]))
    assert np.asarray(compiled[0]).shape == (3, 8)


@pytest.mark.parametrize("max_length,batch", [(0, 3), (-5, 3), (4, 0), (0, 0)])
def test_sample_loop_of_nothing_to_generate_gives_empty_rows(max_length, batch):
    """max_length <= 0 or an empty batch: (batch, 0) tokens, zero lengths, in a graph
    with unknown batch (as in the export) and eagerly."""
    table = np.random.default_rng(0).normal(size=(5, 5)).astype("float32")
    step = _toy_step(table)

    @tf.function(input_signature=[tf.TensorSpec([None, 5], tf.float32), tf.TensorSpec([], tf.int32)])
    def graph(first, max_length):
        return decoding.sample_loop(step, first, [tf.zeros((tf.shape(first)[0], 1))], max_length, 1)

    first = np.zeros((batch, 5), "float32")
    for tokens, lengths in (graph(first, tf.constant(max_length)),
                            decoding.sample_loop(step, first, [tf.zeros((batch, 1))], max_length, 1)):
        assert np.asarray(tokens).shape == (batch, 0) and np.asarray(tokens).dtype == np.int32
        np.testing.assert_array_equal(np.asarray(lengths), np.zeros(batch))


def test_extreme_temperatures_stay_finite_and_never_draw_banned_tokens():
    """τ -> 0 is greedy without overflow; a huge τ is uniform over the allowed tokens only."""
    logits = np.array([[3.0, 1.0, -2.0, 0.5, 2.9]], "float32")
    for tau in (1e-30, 1e-6):
        filtered = np.asarray(decoding.filter_logits(logits, tau, banned_ids=[0]))
        assert np.isfinite(filtered).all()
        drawn = [int(decoding.sample_logits(logits, s, tau, banned_ids=[0])[0]) for s in range(20)]
        assert set(drawn) == {4}  # the best allowed token
    drawn = np.array([int(decoding.sample_logits(logits, s, 1e30, banned_ids=[0, 2])[0])
                      for s in range(300)])
    assert set(drawn.tolist()) == {1, 3, 4}  # uniform over the three allowed


@pytest.mark.parametrize("name,args,message", [
    ("max_length", (-1, 1.0, 0, 1.0), "Expected 0 <= max_length <= 50. Received: max_length=-1"),
    ("max_length", (51, 1.0, 0, 1.0), "Expected 0 <= max_length <= 50. Received: max_length=51"),
    ("temperature", (5, -1.0, 0, 1.0), "Expected temperature >= 0 (finite; 0 = greedy). "
                                       "Received: temperature=-1"),
    ("temperature", (5, float("nan"), 0, 1.0), "Received: temperature=nan"),
    ("temperature", (5, float("inf"), 0, 1.0), "Received: temperature=inf"),
    ("top_k", (5, 1.0, -2, 1.0), "Expected top_k >= 0 (0 = all tokens). Received: top_k=-2"),
    ("top_p", (5, 1.0, 0, 0.0), "Expected 0 < top_p <= 1. Received: top_p=0"),
    ("top_p", (5, 1.0, 0, 1.5), "Expected 0 < top_p <= 1. Received: top_p=1.5"),
])
def test_sampling_checks_name_the_argument_range_and_value(name, args, message):
    @tf.function(input_signature=[tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32),
                                  tf.TensorSpec([], tf.int32), tf.TensorSpec([], tf.float32)])
    def checked(max_length, temperature, top_k, top_p):
        with tf.control_dependencies(decoding.sampling_checks(max_length, temperature, top_k, top_p,
                                                              max_allowed=50)):
            return tf.identity(max_length)

    with pytest.raises(tf.errors.InvalidArgumentError) as caught:
        checked(*args)
    assert message in caught.value.message
    for edge in ((0, 0.0, 0, 1.0), (50, 1e30, 10**6, 1e-6)):  # the range's ends are accepted
        assert int(checked(*edge)) == edge[0]
