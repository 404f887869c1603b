"""Decoding for generative models: shaping next-token logits and sampling loops.

A language model gives the next-token distribution ŷ<t> = softmax(z<t>) over a
vocabulary of V tokens; decoding turns those logits z<t> (batch, V) into tokens:

- ``greedy``: y<t> = argmax z<t>.
- temperature τ: sample from softmax(z<t> / τ); τ -> 0 is greedy, τ = 1 the model's
  own distribution, τ > 1 flatter.
- top-k: keep the k largest logits, the rest get probability 0.
- top-p (nucleus): keep the smallest set of most likely tokens whose probability sums
  to at least p.
- banned tokens (e.g. <UNK>, padding) get probability 0.

Sampling uses TensorFlow's stateless random ops with a seed (an int, or a tensor in a
graph): the same seed gives the same sample, in eager code and inside a
``tf.function`` (an exported Serving signature). ``sample_loop`` runs the whole
generation as one ``tf.while_loop``, so a Serving request returns a complete sample;
``frame_loop`` does the same for multi-hot frames (a piano roll), one Bernoulli per
component (``sample_bernoulli``).
"""

import keras
import numpy as np
import tensorflow as tf
from keras import ops

NEG_INF = -1e9  # finite stand-in for -inf: keeps softmax and argmax free of NaNs


def apply_temperature(logits, temperature):
    """(z - max z) / τ for (batch, V) logits, at least NEG_INF; τ <= 0 leaves them
    unchanged (greedy handles it). Logits already removed (<= NEG_INF: banned,
    filtered) stay NEG_INF, so a huge τ cannot bring them back.

    Shifting by the row's maximum changes no probability and keeps a tiny τ from
    overflowing: the best token gets 0, the others a finite value <= 0."""
    temperature = ops.cast(temperature, logits.dtype)
    positive = temperature > 0
    safe = ops.where(positive, temperature, ops.ones_like(temperature))
    removed = logits <= NEG_INF
    shifted = logits - ops.max(logits, axis=-1, keepdims=True, initial=NEG_INF)
    scaled = ops.maximum(shifted / safe, ops.cast(NEG_INF, logits.dtype))
    scaled = ops.where(removed, ops.full_like(logits, NEG_INF), scaled)
    return ops.where(positive, scaled, logits)


def top_k_filter(logits, k):
    """Logits outside the k largest of each row set to NEG_INF; k <= 0 or k >= V: no-op.

    Args:
        logits: (batch, V). k: int or scalar int tensor.
    Ties with the k-th largest value are all kept.
    """
    vocab = ops.shape(logits)[-1]
    k = ops.cast(k, "int32")
    k = ops.where((k <= 0) | (k > vocab), vocab, k)
    descending = -ops.sort(-logits, axis=-1)  # (batch, V), largest first
    kth = ops.take(descending, ops.reshape(k - 1, (1,)), axis=-1)  # (batch, 1)
    return ops.where(logits < kth, ops.full_like(logits, NEG_INF), logits)


def top_p_filter(logits, p):
    """Keeps the smallest most-likely set of tokens whose probabilities sum to >= p.

    Args:
        logits: (batch, V). p: float or scalar tensor in (0, 1]; p >= 1 is a no-op.
    The most likely token is always kept; ties with the last kept logit are kept too.
    """
    p = ops.cast(p, logits.dtype)
    descending = -ops.sort(-logits, axis=-1)  # (batch, V)
    probs = ops.softmax(descending, axis=-1)
    mass_before = ops.cumsum(probs, axis=-1) - probs  # probability of strictly more likely tokens
    keep = (mass_before < p) | (p >= 1.0)  # (batch, V), a prefix of each row
    threshold = ops.min(ops.where(keep, descending, ops.full_like(descending, -NEG_INF)), axis=-1)
    return ops.where(logits < threshold[:, None], ops.full_like(logits, NEG_INF), logits)


def ban_tokens(logits, banned_ids):
    """Logits of ``banned_ids`` (a list of ints, may be empty) set to NEG_INF."""
    if not banned_ids:
        return logits
    vocab = logits.shape[-1]
    if vocab is None:
        raise ValueError("ban_tokens needs a static vocabulary size (logits.shape[-1]).")
    bad = [i for i in banned_ids if not 0 <= i < vocab]
    if bad:
        raise ValueError(f"Expected banned ids in [0, {vocab}). Received: banned_ids={banned_ids}")
    banned = ops.sum(ops.one_hot(ops.convert_to_tensor(list(banned_ids)), vocab), axis=0) > 0
    return ops.where(banned[None, :], ops.full_like(logits, NEG_INF), logits)


def greedy(logits):
    """argmax over the vocabulary: (batch, V) -> (batch,) int32."""
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def filter_logits(logits, temperature=1.0, top_k=0, top_p=1.0, banned_ids=()):
    """The logits sampling draws from: banned removed, then temperature, top-k, top-p."""
    logits = ban_tokens(ops.cast(logits, "float32"), banned_ids)
    logits = apply_temperature(logits, temperature)
    logits = top_k_filter(logits, top_k)
    return top_p_filter(logits, top_p)


def sample_logits(logits, seed, temperature=1.0, top_k=0, top_p=1.0, banned_ids=()):
    """One token per row from (batch, V) logits -> (batch,) int32.

    Args:
        seed: int, (2,) int tensor, or scalar int tensor: stateless and reproducible.
        temperature: τ; τ <= 0 means greedy.
        top_k, top_p, banned_ids: see ``filter_logits``.
    """
    filtered = filter_logits(logits, temperature, top_k, top_p, banned_ids)
    drawn = tf.random.stateless_categorical(filtered, 1, seed=_seed_pair(seed), dtype=tf.int32)[:, 0]
    return tf.where(tf.cast(temperature, tf.float32) > 0, drawn, greedy(filtered))


def sample_bernoulli(logits, seed, temperature=1.0):
    """Multi-hot frames from (batch, P) logits, each component on its own:
    y[p] ~ Bernoulli(σ(z[p] / τ)) -> (batch, P) float32 of 0/1.

    τ -> 0 gives y[p] = [z[p] > 0] (the most likely value of every component, which
    τ <= 0 takes exactly); τ = 1 is the model's own distribution. ``seed`` as in
    ``sample_logits``; NaN logits give 0."""
    logits = tf.cast(logits, tf.float32)
    temperature = tf.cast(temperature, tf.float32)
    safe = tf.where(temperature > 0, temperature, tf.ones_like(temperature))
    probs = tf.sigmoid(logits / safe)
    uniform = tf.random.stateless_uniform(tf.shape(logits), seed=_seed_pair(seed))
    drawn = uniform < probs
    return tf.cast(tf.where(temperature > 0, drawn, logits > 0), tf.float32)


def sample_loop(
    step_fn,
    logits,
    states,
    max_length,
    seed,
    temperature=1.0,
    top_k=0,
    top_p=1.0,
    eos_id=None,
    banned_ids=(),
):
    """Autoregressive sampling of tokens as one ``tf.while_loop`` (usable inside a
    tf.function).

    y<t> ~ filtered softmax(z<t>), then z<t+1>, states = step_fn(y<t>, states), for
    t = 1..max_length or until every row has produced ``eos_id``.

    Args:
        step_fn: ``(tokens (batch,) int32, states list) -> (logits (batch, V), states)``.
        logits: (batch, V) logits of the first token to sample (after the prompt).
        states: list of (batch, d) tensors, the model state after the prompt.
        max_length: int or scalar int tensor, the most tokens to generate.
        seed: int or scalar int tensor; step t uses the stateless seed (seed, t).
        temperature, top_k, top_p, banned_ids: see ``sample_logits``.
        eos_id: a row stops after sampling it (the <EOS> itself is not kept).

    Returns:
        tokens (batch, n) int32 with n <= max_length, 0 after a row's end;
        lengths (batch,) int32, the number of tokens before <EOS> (or n).
    """

    def draw(logits, seed_pair):
        return sample_logits(logits, seed_pair, temperature, top_k, top_p, banned_ids)

    return _autoregressive(step_fn, logits, states, max_length, seed, draw, [], tf.int32,
                           eos_id)


def frame_loop(step_fn, logits, states, max_length, seed, temperature=1.0):
    """Autoregressive sampling of multi-hot frames (a piano roll) as one
    ``tf.while_loop``: y<t> ~ ``sample_bernoulli(z<t>, (seed, t), temperature)``, then
    z<t+1>, states = step_fn(y<t>, states), for t = 1..max_length.

    Args:
        step_fn: ``(frames (batch, P) float32, states list) -> (logits (batch, P), states)``.
        logits: (batch, P) logits of the first frame (after the primer).
        states, max_length, seed: as in ``sample_loop``.

    Returns frames (batch, max_length, P) float32 of 0/1.
    """
    size = logits.shape[-1]

    def draw(logits, seed_pair):
        return sample_bernoulli(logits, seed_pair, temperature)

    frames, _ = _autoregressive(step_fn, logits, states, max_length, seed, draw, [size],
                                tf.float32)
    return frames


def _autoregressive(step_fn, logits, states, max_length, seed, draw, item_shape, dtype,
                    eos_id=None):
    """The loop of ``sample_loop`` and ``frame_loop``: ``draw(logits, (seed, t))`` gives
    step t's output (batch, *item_shape) of ``dtype``, fed back through ``step_fn``.
    Returns (outputs (batch, n, *item_shape), lengths (batch,))."""
    logits = tf.convert_to_tensor(logits)
    batch = tf.shape(logits)[0]
    max_length = tf.cast(max_length, tf.int32)
    seed = tf.cast(seed, tf.int32)
    # Slot 0 holds zeros (dropped at the end): stacking never meets an empty list, so
    # max_length <= 0 and an empty batch give (batch, 0, ...) outputs.
    zeros = tf.zeros(tf.concat([[batch], tf.constant(item_shape, tf.int32)], 0), dtype)
    outputs_ta = tf.TensorArray(dtype, size=1, dynamic_size=True,
                                element_shape=[None] + list(item_shape))
    outputs_ta = outputs_ta.write(0, zeros)
    done = tf.zeros((batch,), tf.bool)
    lengths = tf.zeros((batch,), tf.int32)

    def cond(t, logits, states, done, lengths, outputs_ta):
        return (t < max_length) & ~tf.reduce_all(done)

    def body(t, logits, states, done, lengths, outputs_ta):
        output = draw(logits, tf.stack([seed, t]))  # (batch, *item_shape)
        ended = done
        if eos_id is not None:
            ended = done | tf.equal(output, eos_id)
            output = tf.where(ended, tf.zeros_like(output), output)
        lengths = lengths + tf.cast(~ended, tf.int32)
        logits, states = step_fn(output, states)
        return (t + 1, tf.cast(logits, tf.float32), list(states), ended, lengths,
                outputs_ta.write(t + 1, output))

    steps, _, _, _, lengths, outputs_ta = tf.while_loop(
        cond,
        body,
        (tf.constant(0), tf.cast(logits, tf.float32), list(states), done, lengths, outputs_ta),
    )
    rank = 2 + len(item_shape)
    outputs = tf.transpose(outputs_ta.stack()[1:], [1, 0] + list(range(2, rank)))
    # static rank, even for batch 0: (batch, n, *item_shape)
    outputs = tf.reshape(outputs, tf.concat([[batch, steps], tf.constant(item_shape, tf.int32)], 0))
    return outputs, lengths


def length_penalty(lengths, alpha):
    """GNMT's length normalisation lp(|Y|) = ((5 + |Y|) / 6)^alpha; alpha = 0 gives 1."""
    return tf.pow((5.0 + tf.cast(lengths, tf.float32)) / 6.0, tf.cast(alpha, tf.float32))


def beam_search(step_fn, logits, states, beam_width, max_length, eos_id, alpha=0.0,
                banned_ids=()):
    """Beam search as one ``tf.while_loop`` (usable inside a tf.function).

    Keeps the ``beam_width`` best partial sequences of each row by their log-probability
    log P(y<1..t>) = Σ log ŷ<τ>[y<τ>]; a sequence ends when it emits ``eos_id`` (which
    is counted in its score but not kept in its tokens) or after ``max_length`` tokens.
    The finished sequences are ranked by log P / lp(length) (``length_penalty``, alpha 0
    = raw log P); beam width 1 is greedy decoding.

    Args:
        step_fn: ``(tokens (n,) int32, states list of (n, d)) -> (logits (n, V), states)``,
            called with n = batch * beam_width rows (row b * beam_width + k is beam k of
            row b).
        logits: (batch, V) logits of the first token; states: list of (batch, d).
        beam_width: int >= 1, or a scalar int tensor (>= 1; then the beam axis of the
            outputs has no static size); max_length: int or scalar int tensor; alpha:
            float or scalar tensor; banned_ids: never emitted.

    Returns:
        tokens (batch, beam_width, n) int32 (0 after a sequence's end), lengths (batch,
        beam_width) int32 (tokens before <EOS>), scores (batch, beam_width) float32 (the
        normalised log-probabilities), best first.
    """
    if isinstance(beam_width, int):
        if beam_width < 1:
            raise ValueError(f"Expected beam_width >= 1. Received: beam_width={beam_width!r}")
        k, static_k = beam_width, beam_width
    elif tf.is_tensor(beam_width) and beam_width.shape.rank == 0 and beam_width.dtype.is_integer:
        k, static_k = tf.cast(beam_width, tf.int32), None
    else:
        raise ValueError(f"Expected beam_width >= 1. Received: beam_width={beam_width!r}")
    logits = ban_tokens(tf.cast(tf.convert_to_tensor(logits), tf.float32), banned_ids)
    batch, vocab = tf.shape(logits)[0], logits.shape[-1]
    max_length = tf.cast(max_length, tf.int32)
    tile = lambda x: tf.repeat(x, k, axis=0)  # noqa: E731 -- (batch, ...) -> (batch * k, ...)
    # Beam 0 starts alive, the others at -inf: the first step picks k distinct tokens.
    scores = tf.tile(tf.concat([[0.0], tf.fill([k - 1], -np.inf)], 0)[None], [batch, 1])
    eos_only = tf.where(tf.range(vocab) == eos_id, 0.0, -np.inf)  # (V,): log P of a finished beam
    carry = (tf.constant(0), tile(logits), [tile(s) for s in states], scores,
             tf.zeros([batch, k, 0], tf.int32), tf.zeros([batch, k], tf.bool),
             tf.zeros([batch, k], tf.int32))

    def cond(t, logits, states, scores, tokens, finished, lengths):
        return (t < max_length) & ~tf.reduce_all(finished)

    def body(t, logits, states, scores, tokens, finished, lengths):
        log_probs = tf.reshape(tf.nn.log_softmax(logits), [batch, k, vocab])
        # A finished beam continues only with <EOS> at no cost: its score stays.
        log_probs = tf.where(finished[..., None], eos_only[None, None], log_probs)
        candidates = tf.reshape(scores[..., None] + log_probs, [batch, k * vocab])
        scores, index = tf.math.top_k(candidates, k)  # (batch, k)
        parent, token = index // vocab, index % vocab
        tokens = tf.gather(tokens, parent, batch_dims=1)
        was_finished = tf.gather(finished, parent, batch_dims=1)
        lengths = tf.gather(lengths, parent, batch_dims=1) + tf.cast(
            ~was_finished & (token != eos_id), tf.int32)
        finished = was_finished | (token == eos_id)
        kept = tf.where(finished, tf.zeros_like(token), token)
        tokens = tf.concat([tokens, kept[..., None]], axis=2)
        flat_parent = tf.reshape(parent + tf.range(batch)[:, None] * k, [-1])
        states = [tf.gather(s, flat_parent) for s in states]
        logits, states = step_fn(tf.reshape(kept, [-1]), states)
        logits = ban_tokens(tf.cast(logits, tf.float32), banned_ids)
        return t + 1, logits, list(states), scores, tokens, finished, lengths

    _, _, _, scores, tokens, finished, lengths = tf.while_loop(
        cond, body, carry,
        shape_invariants=(tf.TensorShape([]), tf.TensorShape([None, vocab]),
                          [tf.TensorShape([None] + s.shape[1:]) for s in carry[2]],
                          tf.TensorShape([None, static_k]), tf.TensorShape([None, static_k, None]),
                          tf.TensorShape([None, static_k]), tf.TensorShape([None, static_k])))
    normalised = scores / length_penalty(lengths + tf.cast(finished, tf.int32), alpha)
    normalised = tf.where(tf.math.is_finite(normalised), normalised, -np.inf)
    order = tf.argsort(normalised, axis=1, direction="DESCENDING", stable=True)
    return (tf.gather(tokens, order, batch_dims=1), tf.gather(lengths, order, batch_dims=1),
            tf.gather(normalised, order, batch_dims=1))


def sampling_checks(max_length, temperature, top_k=0, top_p=1.0, max_allowed=None,
                    length_name="max_length"):
    """Assertions of the sampling scalars, for ``tf.control_dependencies``: each fails
    with an InvalidArgumentError whose message names the argument, its accepted range
    and the value received ("Expected temperature >= 0 (finite). Received: temperature=-1").

    Accepted: 0 <= max_length (<= max_allowed when given); temperature finite and >= 0
    (0 = greedy); top_k >= 0 (0 = all, k > V = all); 0 < top_p <= 1 (1 = all).
    ``length_name``: the name the length input has in the messages ("steps")."""
    max_length = tf.cast(max_length, tf.int32)
    temperature = tf.cast(temperature, tf.float32)
    top_k = tf.cast(top_k, tf.int32)
    top_p = tf.cast(top_p, tf.float32)
    if max_allowed is None:
        length_ok, length_range = max_length >= 0, f"0 <= {length_name}"
    else:
        length_ok = (max_length >= 0) & (max_length <= max_allowed)
        length_range = f"0 <= {length_name} <= {int(max_allowed)}"
    rules = [
        (length_ok, f"Expected {length_range}. Received: {length_name}={{}}", max_length),
        (tf.math.is_finite(temperature) & (temperature >= 0.0),
         "Expected temperature >= 0 (finite; 0 = greedy). Received: temperature={}", temperature),
        (top_k >= 0, "Expected top_k >= 0 (0 = all tokens). Received: top_k={}", top_k),
        ((top_p > 0.0) & (top_p <= 1.0), "Expected 0 < top_p <= 1. Received: top_p={}", top_p),
    ]
    return [tf.debugging.Assert(ok, [tf.strings.format(message, value)])
            for ok, message, value in rules]


def _seed_pair(seed):
    """A (2,) int32 stateless seed from an int, a scalar tensor or a pair."""
    seed = tf.convert_to_tensor(seed)
    seed = tf.cast(seed, tf.int32)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.zeros_like(seed)])
    return seed


def log_softmax(logits):
    """log ŷ = z - logsumexp(z) over the last axis."""
    return keras.ops.log_softmax(logits, axis=-1)
