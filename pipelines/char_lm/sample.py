"""Sampling novel text and scoring sentences with a trained language model.

Library functions (they return values; the CLI prints). Both run the same graph code
as the exported signatures (``model.LanguageModelServer``), compiled with tf.function.

    sample(model, meta, prompts=[""], max_length=200, temperature=0.8, top_k=0,
           top_p=1.0, seed=0) -> list of texts (prompt + continuation)
    score(model, meta, texts) -> list of (log P(text), [(token, log P(token | before))])
    rank(model, meta, texts) -> texts sorted by log P, most probable first
"""

import tensorflow as tf

from pipelines.char_lm.model import LanguageModelServer, score_table


def _server(model, meta, allow_unk=False):
    return LanguageModelServer(model, meta["vocabulary"], meta["level"], allow_unk=allow_unk)


def sample(model, meta, prompts=("",), max_length=200, temperature=0.8, top_k=0, top_p=1.0,
           seed=0, allow_unk=False):
    """Texts continuing ``prompts`` ("" = from nothing), one per prompt.

    Stops after ``max_length`` tokens or at <eos> (word level). ``temperature`` <= 0
    is greedy; ``top_k`` 0 and ``top_p`` 1 switch those filters off; the same ``seed``
    gives the same text. The word-level sampler never emits [UNK] unless ``allow_unk``.
    """
    if max_length < 1:
        raise ValueError(f"Expected max_length >= 1. Received: max_length={max_length!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"Expected 0 < top_p <= 1. Received: top_p={top_p!r}")
    server = _server(model, meta, allow_unk)
    generate = tf.function(server.generate)
    out = generate(
        tf.constant(list(prompts), tf.string), tf.constant(max_length, tf.int32),
        tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32),
        tf.constant(seed, tf.int32), tf.constant(top_p, tf.float32),
    )
    return [t.decode("utf-8", "replace") for t in out["text"].numpy()]


def score(model, meta, texts):
    """[(log P(text) in nats, [(token, log P(token | earlier tokens)), ...]), ...]."""
    out = _server(model, meta).score(tf.constant(list(texts), tf.string))
    out = {k: v.numpy() for k, v in out.items()}
    rows = [{k: v[i] for k, v in out.items()} for i in range(len(texts))]
    return score_table(rows)


def rank(model, meta, texts):
    """``[(text, log P(text))]`` most probable first (the course's "pair" vs "pear")."""
    scored = [(text, total) for text, (total, _) in zip(texts, score(model, meta, texts))]
    return sorted(scored, key=lambda pair: -pair[1])
