"""Sampling novel text and scoring sentences with a trained language model.

Library functions (they return values; the CLI prints). Both run the same graph code
as the exported signatures (``model.LanguageModelServer``), compiled with tf.function.

    sample(model, meta, prompts=[""], max_length=200, temperature=0.8, top_k=0,
           top_p=1.0, seed=0) -> list of texts (prompt + continuation)
    score(model, meta, texts) -> list of (log P(text), [(token, log P(token | before))])
    rank(model, meta, texts) -> texts sorted by log P, most probable first
"""

import math

# TensorFlow and the model are imported by the functions that use them: this module's
# argument parsers are built for every `python -m pipelines.char_lm --help`.


def _server(model, meta, allow_unk=False, max_generate=1000):
    from pipelines.char_lm.model import LanguageModelServer

    return LanguageModelServer(model, meta["vocabulary"], meta["level"], allow_unk=allow_unk,
                               max_length=0, max_generate=max_generate)


def check_arguments(max_length, temperature, top_k, top_p):
    """ValueError naming the first out-of-range sampling argument (the ranges of the
    export's ``generate``, ``zoo.decoding.sampling_checks``; no upper bound here)."""
    if not max_length >= 0:
        raise ValueError(f"Expected max_length >= 0. Received: max_length={max_length!r}")
    if not (math.isfinite(temperature) and temperature >= 0):
        raise ValueError("Expected temperature >= 0 (finite; 0 = greedy). "
                         f"Received: temperature={temperature!r}")
    if not top_k >= 0:
        raise ValueError(f"Expected top_k >= 0 (0 = all tokens). Received: top_k={top_k!r}")
    if not 0.0 < top_p <= 1.0:
        raise ValueError(f"Expected 0 < top_p <= 1. Received: top_p={top_p!r}")


def sample(model, meta, prompts=("",), max_length=200, temperature=0.8, top_k=0, top_p=1.0,
           seed=0, allow_unk=False):
    """Texts continuing ``prompts`` ("" = from nothing), one per prompt.

    Stops after ``max_length`` tokens (0: the prompts come back) or at <eos> (word
    level). ``temperature`` 0 is greedy; ``top_k`` 0 and ``top_p`` 1 switch those
    filters off; the same ``seed`` gives the same text. The word-level sampler never
    emits [UNK] unless ``allow_unk``. Out-of-range values raise ValueError (see
    ``check_arguments``).
    """
    import tensorflow as tf

    check_arguments(max_length, temperature, top_k, top_p)
    server = _server(model, meta, allow_unk, max_generate=max_length)
    generate = tf.function(server.generate)
    out = generate(
        tf.constant(list(prompts), tf.string), tf.constant(max_length, tf.int32),
        tf.constant(temperature, tf.float32), tf.constant(top_k, tf.int32),
        tf.constant(seed, tf.int32), tf.constant(top_p, tf.float32),
    )
    return [t.decode("utf-8", "replace") for t in out["text"].numpy()]


def score(model, meta, texts):
    """[(log P(text) in nats, [(token, log P(token | earlier tokens)), ...]), ...]."""
    import tensorflow as tf

    from pipelines.char_lm.model import score_table

    out = _server(model, meta).score(tf.constant(list(texts), tf.string))
    out = {k: v.numpy() for k, v in out.items()}
    rows = [{k: v[i] for k, v in out.items()} for i in range(len(texts))]
    return score_table(rows)


def rank(model, meta, texts):
    """``[(text, log P(text))]`` most probable first (the course's "pair" vs "pear")."""
    scored = [(text, total) for text, (total, _) in zip(texts, score(model, meta, texts))]
    return sorted(scored, key=lambda pair: -pair[1])


# Command line: ``python -m pipelines.char_lm sample|score`` (the runners print).


def add_sample_arguments(parser):
    parser.add_argument("prompts", nargs="*", default=[""],
                        help="texts to continue (default: one sample from nothing)")
    parser.add_argument("--max-length", type=int, help="most tokens (default: config sample_length)")
    parser.add_argument("--temperature", type=float, help="τ; 0 = greedy (default: config)")
    parser.add_argument("--top-k", type=int, help="keep the k most likely tokens; 0 = all")
    parser.add_argument("--top-p", type=float, help="nucleus mass in (0, 1]; 1 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-n", "--num-samples", type=int, default=1, help="samples per prompt")
    parser.add_argument("--allow-unk", action="store_true", help="word level: may emit [UNK]")


def run_sample(task, args):
    """sample text from the trained model (from nothing or from prompts)"""
    from pipelines.common.cli import UsageError

    model, config, meta = _load(task, args)
    prompts = [p for p in args.prompts for _ in range(args.num_samples)]
    settings = {
        "max_length": config.sample_length if args.max_length is None else args.max_length,
        "temperature": config.temperature if args.temperature is None else args.temperature,
        "top_k": config.top_k if args.top_k is None else args.top_k,
        "top_p": config.top_p if args.top_p is None else args.top_p,
    }
    try:
        check_arguments(**settings)
    except ValueError as e:  # one "error:" line and exit code 2, not a traceback
        flag = "--" + str(e).split("Received: ")[-1].split("=")[0].replace("_", "-")
        raise UsageError(f"{flag}: {e}") from None
    if args.num_samples < 1:
        raise UsageError(f"--num-samples: expected >= 1. Received: {args.num_samples}")
    texts = sample(model, meta, prompts or [""], **settings, seed=args.seed,
                   allow_unk=args.allow_unk)
    for i, text in enumerate(texts):
        print(f"--- sample {i + 1}" if len(texts) > 1 else "---")
        print(text)
    return 0


def add_score_arguments(parser):
    parser.add_argument("texts", nargs="+", help="sentences to score and rank")
    parser.add_argument("--tokens", action="store_true", help="also show log P of every token")


def run_score(task, args):
    """score sentences: log P(text) and per-token log-probabilities, ranked"""
    model, _, meta = _load(task, args)
    scored = score(model, meta, args.texts)
    order = sorted(range(len(args.texts)), key=lambda i: -scored[i][0])
    print(f"{'log P (nats)':>13} {'per token':>10}  text (most probable first)")
    for i in order:
        total, tokens = scored[i]
        per = total / len(tokens) if tokens else 0.0
        print(f"{total:>13.3f} {per:>10.3f}  {args.texts[i]}")
        if args.tokens:
            print("  " + " ".join(f"{t!r}:{lp:.2f}" for t, lp in tokens))
    return 0


def _load(task, args):
    from pipelines.common import cli, train

    return train.load_trained(cli.workdir_of(task, args), task.config_class, task)
