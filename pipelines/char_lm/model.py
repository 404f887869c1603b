"""Language model: builder, keras-tuner search space, metrics and the serving model.

Training model: ``zoo.builders.build_language_model`` (token ids -> embedding -> zoo
recurrent layers -> logits at every step), trained with the per-step softmax
cross-entropy L = -(1/T) Σ_t log ŷ<t>[y<t>] averaged over the batch (the course sums
over t; the mean differs by the constant T and reads directly as nats per token),
Adam with global gradient-norm clipping. With ``carry_state`` the model is wrapped
in ``CarriedStateModel`` (truncated BPTT across consecutive windows).

Serving model (``LanguageModelServer``): the same weights behind two graph functions
that take raw strings:
    generate(prompts, max_length, temperature, top_k, seed) -> generated text
        the prompt runs through the stepping model, then the whole sampling loop
        (``zoo.decoding.sample_loop``) runs in the graph: one request, one sample.
    score(texts) -> log P(text) and the per-token log-probabilities
        log P(y<1..T>) = Σ_t log P(y<t> | y<1..t-1>), word level with <eos> at the end.
"""

import math

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.char_lm import data
from pipelines.common.task import Endpoint
from zoo import decoding
from zoo.builders import language_model as lm

LOG2 = math.log(2.0)


def build_model(config, meta):
    """The compiled language model for ``config`` and ``meta["vocabulary"]``."""
    model = lm.build_language_model(
        vocab_size=len(meta["vocabulary"]),
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        dropout=config.dropout,
        name="char_lm",
    )
    if config.carry_state:  # truncated BPTT: the state of batch k starts batch k+1
        model = lm.CarriedStateModel(model, config.batch_size, name="char_lm_tbptt")
    model.compile(
        optimizer=config_lib.adam(config, global_clipnorm=True),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp`` (keras-tuner HyperParameters):
    ``config_lib.language_model_space``."""
    return config_lib.language_model_space(hp, config)


def cross_entropy(model, dataset):
    """Mean nats per token of ``model`` on ``dataset`` (x, y) batches; padding (y = 0)
    is skipped. Returns (nats per token, number of tokens)."""
    total, count = 0.0, 0
    for x, y in dataset:
        logits = model(x, training=False)  # (batch, T, V)
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
        real = tf.cast(tf.not_equal(y, data.PAD_ID), tf.float32)
        total += float(tf.reduce_sum(nll * real))
        count += int(tf.reduce_sum(real))
    if count == 0:
        raise ValueError("The dataset holds no tokens to evaluate.")
    return total / count, count


def stream_cross_entropy(model, ids, window=100, rows=16):
    """Mean nats per token of a token stream read the way an RNN reads text: in order,
    the states carried from each window to the next.

    ``ids`` (n,) is cut into ``rows`` contiguous rows of n // rows tokens (the last
    n % rows are dropped); each row starts from the start token and zero states, then
    every token is predicted from ALL preceding tokens of its row, not only from those
    of its window (``cross_entropy`` restarts the states at every window). The windows
    only bound the work per call: any ``window`` gives the same value.

    Returns (nats per token, number of tokens).
    """
    ids = np.asarray(ids, "int32")
    length = len(ids) // rows
    if rows < 1 or window < 1 or length == 0:
        raise ValueError(f"Expected rows, window >= 1 and at least {rows} tokens. Received: "
                         f"{len(ids)} tokens, {rows=}, {window=}")
    y = ids[: rows * length].reshape(rows, length)
    x = data.inputs_from_targets(y).numpy()  # x<t> = y<t-1> across window boundaries
    language_model = lm.unwrap(model)
    step_model = lm.build_step_model(language_model)
    run = tf.function(lambda inputs: step_model(inputs, training=False), reduce_retracing=True)
    states = lm.initial_states(language_model, rows)
    total, count = 0.0, 0
    for start in range(0, length, window):
        xs, ys = x[:, start : start + window], y[:, start : start + window]
        out = run([tf.constant(xs), tf.ones(xs.shape, tf.bool)] + list(states))
        states = out["states"]
        nll = tf.nn.sparse_softmax_cross_entropy_with_logits(labels=ys, logits=out["logits"])
        real = tf.cast(tf.not_equal(ys, data.PAD_ID), tf.float32)
        total += float(tf.reduce_sum(nll * real))
        count += int(tf.reduce_sum(real))
    return total / count, count


def evaluate(model, dataset, config, meta):
    """Cross-entropy in nats per token; bits per character (char level) or perplexity
    (word level, per token including punctuation and <eos>)."""
    nats, count = cross_entropy(model, dataset)
    report = {"nats_per_token": nats, "bits_per_token": nats / LOG2, "tokens": count}
    if meta["level"] == "char":
        report["bits_per_char"] = nats / LOG2
    else:
        report["perplexity"] = math.exp(nats)
    return report


@keras.saving.register_keras_serializable(package="char_lm")
class LanguageModelServer(keras.layers.Layer):
    """Raw strings in, text or log-probabilities out, all in the graph.

    Args:
        model: a ``build_language_model`` model (shared, not copied), or a
            ``CarriedStateModel`` around one.
        vocabulary: the ``data.build_vocabulary`` list.
        level: "char" or "word".
        allow_unk: let the sampler emit [UNK] (word level); off by default.
        max_length, temperature, top_k, seed: what ``call`` (one input) generates with.
        max_generate: the largest ``max_length`` a request may ask for (the config's
            ``serve_max_length``): one request cannot hold a server for long.
        max_prompt: ``generate`` conditions on at most the last ``max_prompt`` tokens of
            each prompt (``text`` still starts with the whole prompt); ``score`` reads
            every token.

    ``generate`` refuses out-of-range scalars with an InvalidArgumentError naming the
    argument, its range and the value (``zoo.decoding.sampling_checks``): 0 <= max_length
    <= max_generate (0 gives the prompt back), temperature finite and >= 0 (0 = greedy),
    top_k >= 0 (0 or more than the vocabulary = all), 0 < top_p <= 1; any int32 seed.
    Any batch of any strings works, the empty batch too (invalid UTF-8 is replaced).
    """

    def __init__(self, model, vocabulary, level, allow_unk=False, max_length=100,
                 temperature=1.0, top_k=0, seed=0, max_generate=1000, max_prompt=2000,
                 **kwargs):
        super().__init__(**kwargs)
        if level not in data.LEVELS:
            raise ValueError(f"Expected level in {data.LEVELS}. Received: level={level!r}")
        if max_generate < 0 or max_prompt < 1:
            raise ValueError("Expected max_generate >= 0 and max_prompt >= 1. Received: "
                             f"max_generate={max_generate}, max_prompt={max_prompt}")
        if not 0 <= max_length <= max_generate:
            raise ValueError(f"Expected 0 <= max_length <= max_generate={max_generate}. "
                             f"Received: max_length={max_length}")
        self.max_generate, self.max_prompt = int(max_generate), int(max_prompt)
        model = lm.unwrap(model)
        self.model = model
        self.step_model = lm.build_step_model(model)
        self.vectorizer = data.make_vectorizer(vocabulary)
        self.vocabulary = list(vocabulary)
        self.level = level
        self.defaults = (max_length, temperature, top_k, seed)
        self.banned = [data.PAD_ID] + ([] if allow_unk and level == "word" else [data.UNK_ID])
        if level == "char":
            self.banned.append(data.EOS_ID)  # never a character target

    def _ids(self, tokens):
        """Ragged string tokens -> ragged int32 ids."""
        return tf.cast(tf.ragged.map_flat_values(self.vectorizer, tokens), tf.int32)

    def _strings(self, ids):
        return tf.gather(tf.constant(self.vocabulary), ids)

    def _step(self, ids, mask, states):
        out = self.step_model([ids, mask] + list(states), training=False)
        return out["logits"], out["states"]

    def call(self, prompts):
        """``generate`` with the default max_length, temperature, top_k and seed."""
        return self.generate(prompts, *self.defaults)

    def generate(self, prompts, max_length, temperature, top_k, seed, top_p=1.0):
        """prompts (batch,) strings -> {"text": prompt + sample, "generated": sample,
        "length": tokens sampled (batch,)}; scalars for the rest (see zoo.decoding),
        checked as the class docstring says."""
        checks = decoding.sampling_checks(max_length, temperature, top_k, top_p,
                                          max_allowed=self.max_generate)
        with tf.control_dependencies(checks):
            prompts = tf.identity(tf.convert_to_tensor(prompts, tf.string))
        ids = self._ids(data.prompt_tokens(prompts, self.level))  # (batch, None)
        ids = ids[:, -self.max_prompt:]  # the last max_prompt tokens
        start = tf.zeros([ids.nrows(), 1], tf.int32)
        inputs = tf.concat([start, ids], axis=1)  # x<1> = 0, then the prompt
        inputs = tf.ragged.map_flat_values(
            lambda v: tf.where(tf.equal(v, data.EOS_ID), tf.zeros_like(v), v), inputs
        )
        lengths = tf.cast(inputs.row_lengths(), tf.int32)  # >= 1
        dense = inputs.to_tensor()  # (batch, P + 1), padded after the end
        mask = tf.sequence_mask(lengths, tf.shape(dense)[1])
        batch = tf.shape(dense)[0]
        states = [tf.zeros([batch, n]) for n in lm.state_shapes(self.model)]
        logits, states = self._step(dense, mask, states)  # logits (batch, P + 1, V)
        last = tf.gather(logits, lengths - 1, axis=1, batch_dims=1)  # (batch, V)

        def step_fn(token, states):
            logits, states = self._step(token[:, None], tf.ones_like(token[:, None], tf.bool), states)
            return logits[:, -1], states

        tokens, n = decoding.sample_loop(
            step_fn, last, states, max_length, seed,
            temperature=temperature, top_k=top_k, top_p=top_p,
            eos_id=data.EOS_ID if self.level == "word" else None,
            banned_ids=self.banned,
        )
        generated = data.detokenize(
            tf.RaggedTensor.from_tensor(self._strings(tokens), lengths=n), self.level
        )
        sep = "" if self.level == "char" else " "
        joiner = tf.where(
            (tf.strings.length(prompts) > 0) & (tf.strings.length(generated) > 0), sep, ""
        )
        return {
            "text": tf.strings.join([prompts, joiner, generated]),
            "generated": generated,
            "length": n,
        }

    def score(self, texts):
        """texts (batch,) -> {"log_prob": log P(text) (batch,) in nats,
        "token_log_probs": (batch, T) per token (0 after the end), "tokens": (batch, T)
        strings ("" after the end), "num_tokens": (batch,)}."""
        texts = tf.convert_to_tensor(texts, tf.string)
        tokens = data.sentence_tokens(texts, self.level)
        tokens_dense = tokens.to_tensor(default_value="")  # (batch, T)
        width = tf.shape(tokens_dense)[1]
        y = self._ids(tokens).to_tensor()  # (batch, T), 0 = padding
        y = tf.pad(y, [[0, 0], [0, 1]])  # one padding step more: T = 0 still runs
        x = data.inputs_from_targets(y)
        log_probs = tf.nn.log_softmax(self.model(x, training=False), axis=-1)  # (batch, T+1, V)
        picked = tf.gather(log_probs, y, axis=2, batch_dims=2)[:, :width]  # (batch, T)
        y = y[:, :width]
        real = tf.not_equal(y, data.PAD_ID)
        picked = tf.where(real, picked, tf.zeros_like(picked))
        return {
            "log_prob": tf.reduce_sum(picked, axis=1),
            "token_log_probs": picked,
            "tokens": tokens_dense,
            "num_tokens": tf.reduce_sum(tf.cast(real, tf.int32), axis=1),
        }

    def input_ranges(self):
        """{scalar input: (lowest, highest)} accepted by ``generate`` (inclusive, None =
        unbounded; float inputs must also be finite); outside: InvalidArgumentError.
        ``seed`` takes any int32."""
        return {"max_length": (0, self.max_generate), "temperature": (0.0, None),
                "top_k": (0, None)}

    def endpoints(self):
        """generate (= serving_default): prompts (batch,) strings and the scalars
        max_length, temperature, top_k, seed (their defaults: the config's);
        score: texts (batch,) strings."""
        max_length, temperature, top_k, seed = self.defaults
        generate = Endpoint(
            fn=lambda prompts, max_length, temperature, top_k, seed: self.generate(
                prompts, max_length, temperature, top_k, seed),
            inputs=[
                tf.TensorSpec([None], tf.string, name="prompts"),
                tf.TensorSpec([], tf.int32, name="max_length"),
                tf.TensorSpec([], tf.float32, name="temperature"),
                tf.TensorSpec([], tf.int32, name="top_k"),
                tf.TensorSpec([], tf.int32, name="seed"),
            ],
            example={"prompts": ["", "The "], "max_length": 3, "temperature": 1.0, "top_k": 0,
                     "seed": 1},
            defaults={"max_length": int(max_length), "temperature": float(temperature),
                      "top_k": int(top_k), "seed": int(seed)},
        )
        score = Endpoint(fn=self.score, inputs=[tf.TensorSpec([None], tf.string, name="texts")],
                         example={"texts": ["", "The end."]})
        return {"serving_default": generate, "generate": generate, "score": score}


def serving_model(model, config, meta):
    return LanguageModelServer(model, meta["vocabulary"], meta["level"],
                               max_length=config.sample_length, temperature=config.temperature,
                               top_k=config.top_k, seed=config.seed,
                               max_generate=config.serve_max_length,
                               max_prompt=config.serve_max_prompt)


def example_inputs(config, meta):
    """Prompts for the samples shown after training ("" = from nothing)."""
    if meta["level"] == "word":
        return ["", "the", "if the"]
    return ["", "The ", "def "]


def format_prediction(row):
    """The prompt and its continuation on one line (newlines shown as \\n), then a
    marker: ``predict`` prints the prompt after it ("The cat sat.   <- prompt: The ")."""
    text = row.get("text", row.get("generated", b""))
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return text.replace("\n", "\\n") + "   <- prompt:"


def score_table(rows):
    """Plain numbers from ``score`` outputs: [(log_prob, [(token, log_prob), ...])]."""
    out = []
    for row in rows:
        n = int(row["num_tokens"])
        tokens = [t.decode("utf-8", "replace") if isinstance(t, bytes) else t for t in row["tokens"][:n]]
        out.append((float(row["log_prob"]), list(zip(tokens, np.asarray(row["token_log_probs"][:n]).tolist()))))
    return out
