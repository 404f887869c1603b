"""Translation model: builder, search space, metrics, report and the serving model.

Training model: ``zoo.builders.build_encoder_decoder`` (deep bidirectional zoo encoder,
decoder started from its final states, additive / multiplicative / no attention),
teacher-forced, loss the per-token cross-entropy averaged over the real target tokens,
optionally label-smoothed: L = (1 - ε) (-log ŷ[y]) + ε mean_v(-log ŷ[v]).

Serving model (``Translator``): raw strings in, tokenization and the whole search in the
graph: the encoder once, then ``zoo.decoding.beam_search`` over the one-step decoder
(beam 1 = greedy), up to ``length_ratio`` * source tokens + ``length_extra`` tokens.
Signatures: ``serving_default`` (translation, score) and ``attention`` (also the source
and target tokens and the attention weights α of the chosen translation).
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.common.task import Endpoint
from pipelines.translation import data
from zoo import decoding
from zoo.builders import encoder_decoder as ed


@keras.saving.register_keras_serializable(package="translation")
class SmoothedNLL(keras.losses.Loss):
    """Token cross-entropy from logits with label smoothing ε, (batch, T) per token:
    (1 - ε) (-log ŷ[y]) + ε mean_v(-log ŷ[v]); ε = 0 is the plain NLL."""

    def __init__(self, smoothing=0.0, reduction="mean_with_sample_weight", name="smoothed_nll",
                 **kwargs):
        super().__init__(reduction=reduction, name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        log_probs = tf.nn.log_softmax(y_pred, axis=-1)
        nll = -tf.gather(log_probs, tf.cast(y_true, tf.int32), axis=-1, batch_dims=2)
        return (1.0 - self.smoothing) * nll - self.smoothing * tf.reduce_mean(log_probs, -1)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


def build_model(config, meta):
    """The compiled teacher-forced model of ``config`` for the vocabularies in ``meta``."""
    model = ed.build_encoder_decoder(
        len(meta["source_vocabulary"]), len(meta["target_vocabulary"]),
        embedding_dim=config.embedding_dim, cell=config.cell, units=config.units,
        num_layers=config.num_layers, dropout=config.dropout, attention=config.attention,
        attention_units=config.attention_units, name="translation")
    model.compile(optimizer=config_lib.adam(config, global_clipnorm=True),
                  loss=SmoothedNLL(config.label_smoothing),
                  weighted_metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp``: the language-model fields
    (cell, units, depth, dropout, learning rate) and the attention."""
    return dataclasses.replace(
        config_lib.language_model_space(hp, config),
        attention=hp.Choice("attention", ["additive", "multiplicative", "none"],
                            default=config.attention))


@keras.saving.register_keras_serializable(package="translation")
class Translator(keras.layers.Layer):
    """Source strings -> translations, tokenization and search in the graph.

    Args:
        model: a ``build_model`` model (shared). meta: its vocabularies and level.
        beam_width, length_penalty, length_ratio, length_extra: the search (see the
            config); beam_width is the signatures' default, a request may ask for 1 to
            max_beam. max_source: source tokens read per sentence (the rest dropped,
            ``truncated`` true).

    Any batch of any strings works: an empty or all-unknown source is translated (to
    whatever the model says for it), a very long one is cut to ``max_source`` tokens.
    """

    def __init__(self, model, meta, beam_width=4, length_penalty=0.6, length_ratio=1.5,
                 length_extra=10, max_source=200, max_beam=16, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.encoder, self.step = ed.build_inference_models(model)
        self.level = meta["level"]
        self.source_lookup = data.make_vectorizer(meta["source_vocabulary"])
        self.source_pieces = data.make_pieces(meta["source_vocabulary"], self.level)
        self.target_vocabulary = list(meta["target_vocabulary"])
        self.beam_width, self.alpha = int(beam_width), float(length_penalty)
        self.length_ratio, self.length_extra = float(length_ratio), int(length_extra)
        self.max_source, self.max_beam = int(max_source), int(max_beam)

    def _source(self, texts):
        """(ids (batch, Tx) with at least one column, lengths, truncated, tokens)."""
        tokens = data.tokenize(tf.convert_to_tensor(texts, tf.string), self.level,
                               self.source_pieces)
        truncated = tokens.row_lengths() > self.max_source
        tokens = tokens[:, :self.max_source]
        ids = tf.cast(tf.ragged.map_flat_values(self.source_lookup, tokens), tf.int32)
        dense = ids.to_tensor()
        dense = tf.pad(dense, [[0, 0], [0, tf.maximum(1 - tf.shape(dense)[1], 0)]])
        return dense, tf.cast(ids.row_lengths(), tf.int32), truncated, tokens

    def _strings(self, ids, lengths):
        tokens = tf.gather(tf.constant(self.target_vocabulary), ids)
        return data.detokenize(tf.RaggedTensor.from_tensor(tokens, lengths=lengths), self.level)

    def translate(self, texts, beam_width=None):
        """texts (batch,), beam_width (scalar int, 1 = greedy; default the export's) ->
        {"translation": (batch,) strings, "score": (batch,) the length-normalised
        log-probability, "truncated": (batch,) bool}. A beam width outside 1..max_beam is
        an InvalidArgumentError "Expected 1 <= beam_width <= 16. Received: beam_width=0"."""
        return {k: v for k, v in self._search(texts, beam_width).items()
                if k in ("translation", "score", "truncated")}

    def _beam(self, beam_width):
        if beam_width is None:
            return self.beam_width
        beam_width = tf.cast(beam_width, tf.int32)
        ok = (beam_width >= 1) & (beam_width <= self.max_beam)
        check = tf.debugging.Assert(ok, [tf.strings.format(
            f"Expected 1 <= beam_width <= {self.max_beam}. Received: beam_width={{}}", beam_width)])
        with tf.control_dependencies([check]):
            return tf.identity(beam_width)

    def _search(self, texts, beam_width=None):
        beam_width = self._beam(beam_width)
        ids, lengths, truncated, source_tokens = self._source(texts)
        encoded = self.encoder(ids, training=False)
        # An empty source (all padding) still needs one real step to attend to.
        mask = tf.logical_or(encoded["mask"], tf.sequence_mask(tf.ones_like(lengths),
                                                               tf.shape(ids)[1]))
        start = tf.fill([tf.shape(ids)[0], 1], data.START_ID)
        first = self.step([start, encoded["encoded"], mask] + list(encoded["states"]),
                          training=False)
        # Each row may emit at most ceil(length_ratio * its source tokens) + length_extra
        # tokens: past that, only <end>.
        limits = tf.cast(tf.math.ceil(self.length_ratio * tf.cast(lengths, tf.float32)),
                         tf.int32) + self.length_extra
        emitted = tf.zeros_like(limits)

        def only_end_past(logits, emitted, limits):
            end = tf.one_hot(data.END_ID, tf.shape(logits)[1], on_value=0.0,
                             off_value=decoding.NEG_INF)
            return tf.where((emitted >= limits)[:, None], end[None], logits)

        def step_fn(tokens, states):
            encoded_rows, mask_rows, emitted, limits, *rnn_states = states
            out = self.step([tokens[:, None], encoded_rows, mask_rows] + rnn_states,
                            training=False)
            emitted = emitted + 1
            return (only_end_past(out["logits"], emitted, limits),
                    [encoded_rows, mask_rows, emitted, limits] + list(out["states"]))

        tokens, out_lengths, scores = decoding.beam_search(
            step_fn, only_end_past(first["logits"], emitted, limits),
            [encoded["encoded"], mask, emitted, limits] + list(first["states"]),
            beam_width, tf.reduce_max(tf.concat([limits, [0]], 0)) + 1, data.END_ID,
            alpha=self.alpha, banned_ids=[data.PAD_ID, data.START_ID])
        best, best_length = tokens[:, 0], out_lengths[:, 0]
        return {"translation": self._strings(best, best_length), "score": scores[:, 0],
                "truncated": truncated, "ids": ids, "source_tokens": source_tokens,
                "target_ids": best, "target_lengths": best_length}

    def attention(self, texts, beam_width=None):
        """translate's outputs and {"source_tokens": (batch, Tx) strings, "target_tokens":
        (batch, Ty) strings ("" as padding), "attention": (batch, Ty, Tx) α of each
        translation token (and of <end>) over the source tokens}."""
        found = self._search(texts, beam_width)
        decoder_ids = tf.concat([tf.fill([tf.shape(found["ids"])[0], 1], data.START_ID),
                                 found["target_ids"]], axis=1)
        alpha = self.teacher_forced_attention(found["ids"], decoder_ids)
        width = tf.shape(found["target_ids"])[1] + 1
        real = tf.sequence_mask(found["target_lengths"] + 1, width)  # the tokens and <end>
        alpha = alpha * tf.cast(real, alpha.dtype)[..., None]
        target_ids = tf.concat([found["target_ids"], tf.zeros_like(found["target_ids"][:, :1])], 1)
        target_tokens = tf.gather(tf.constant(self.target_vocabulary), tf.where(
            tf.sequence_mask(found["target_lengths"], width), target_ids, data.PAD_ID))
        target_tokens = tf.where(tf.equal(tf.range(width)[None], found["target_lengths"][:, None]),
                                 data.END, target_tokens)
        return {"translation": found["translation"], "score": found["score"],
                "truncated": found["truncated"],
                "source_tokens": found["source_tokens"].to_tensor(default_value=""),
                "target_tokens": target_tokens, "attention": alpha}

    def teacher_forced_attention(self, source_ids, decoder_ids):
        """α (batch, Ty, Tx) of the decoder fed ``decoder_ids`` (one step at a time)."""
        encoded = self.encoder(source_ids, training=False)

        def body(states, token):
            out = self.step([token[:, None], encoded["encoded"], encoded["mask"]] + list(states),
                            training=False)
            return list(out["states"]), out["attention"]

        first = (list(encoded["states"]), tf.zeros_like(tf.cast(encoded["mask"], tf.float32)))
        alphas = tf.scan(lambda carry, token: body(carry[0], token),
                         tf.transpose(decoder_ids), initializer=first)[1]  # (Ty, batch, Tx)
        return tf.transpose(alphas, [1, 0, 2])

    def input_ranges(self):
        """{scalar input: (lowest, highest)} the signatures accept (inclusive)."""
        return {"beam_width": (1, self.max_beam)}

    def endpoints(self):
        inputs = [tf.TensorSpec([None], tf.string, name="source"),
                  tf.TensorSpec([], tf.int32, name="beam_width")]
        example = {"source": ["", "3 mars 1998"], "beam_width": 2}
        defaults = {"beam_width": self.beam_width}
        translate = Endpoint(fn=self.translate, inputs=inputs, example=example, defaults=defaults)
        attention = Endpoint(fn=self.attention, inputs=inputs, example=example, defaults=defaults)
        return {"serving_default": translate, "attention": attention}


def serving_model(model, config, meta):
    return Translator(model, meta, beam_width=config.beam_width,
                      length_penalty=config.length_penalty, length_ratio=config.length_ratio,
                      length_extra=config.length_extra, max_source=config.serve_max_source,
                      max_beam=config.serve_max_beam)


def _texts(ids, vocabulary, level, end_at_end=False):
    """Strings of id rows (padding and, for targets, <end> and after dropped)."""
    out = []
    for row in np.asarray(ids):
        tokens = []
        for i in row:
            if i == data.END_ID and end_at_end:
                break
            if i not in (data.PAD_ID, data.START_ID, data.END_ID):
                tokens.append(vocabulary[i])
        out.append(tokens)
    tokens = tf.RaggedTensor.from_row_lengths(
        tf.constant([t for row in out for t in row], tf.string), [len(row) for row in out])
    return [t.decode("utf-8") for t in data.detokenize(tokens, level).numpy()]


def evaluate(model, dataset, config, meta, examples=3):
    """Exact match, BLEU and chrF (sacrebleu, with their signatures) of the beam-search
    translations, and the teacher-forced token accuracy; the attention of the first
    ``examples`` sources. Sources and references are read back from the batches' ids
    (a token outside the vocabularies reads as [UNK])."""
    sacrebleu = data._require("sacrebleu")
    translator = serving_model(model, config, meta)
    translate = tf.function(translator.attention)
    sources, references, hypotheses, shown = [], [], [], []
    correct = total = 0.0
    for (source_ids, decoder_ids), target_ids, weights in dataset:
        logits = model([source_ids, decoder_ids], training=False)
        hit = tf.cast(tf.equal(tf.argmax(logits, -1, output_type=tf.int32), target_ids), tf.float32)
        correct += float(tf.reduce_sum(hit * weights))
        total += float(tf.reduce_sum(weights))
        batch_sources = _texts(source_ids, meta["source_vocabulary"], meta["level"])
        out = translate(tf.constant(batch_sources))
        sources += batch_sources
        references += _texts(target_ids, meta["target_vocabulary"], meta["level"], True)
        hypotheses += [t.decode("utf-8") for t in out["translation"].numpy()]
        for i in range(min(examples - len(shown), len(batch_sources))):
            n_source = int(tf.reduce_sum(tf.cast(out["source_tokens"][i] != "", tf.int32)))
            n_target = int(tf.reduce_sum(tf.cast(out["target_tokens"][i] != "", tf.int32)))
            shown.append({"source": [t.decode() for t in out["source_tokens"][i, :n_source].numpy()],
                          "target": [t.decode() for t in out["target_tokens"][i, :n_target].numpy()],
                          "attention": np.round(out["attention"][i, :n_target, :n_source].numpy(),
                                                4).tolist()})
    if not references:
        raise ValueError("The dataset holds no pairs to evaluate.")
    bleu = sacrebleu.metrics.BLEU()
    chrf = sacrebleu.metrics.CHRF()
    bleu_score = bleu.corpus_score(hypotheses, [references])
    chrf_score = chrf.corpus_score(hypotheses, [references])
    return {
        "exact_match": float(np.mean([h == r for h, r in zip(hypotheses, references)])),
        "bleu": bleu_score.score, "chrf": chrf_score.score,
        "token_accuracy": correct / total, "pairs": len(references),
        "bleu_signature": str(bleu.get_signature()), "chrf_signature": str(chrf.get_signature()),
        "translations": [{"source": s, "reference": r, "translation": h}
                         for s, r, h in list(zip(sources, references, hypotheses))[:5]],
        "attention_examples": shown,
    }


def format_report(report):
    lines = [f"exact match {report['exact_match']:.4f}  BLEU {report['bleu']:.2f}  "
             f"chrF {report['chrf']:.2f}  token accuracy {report['token_accuracy']:.4f}  "
             f"pairs {report['pairs']}",
             f"  BLEU {report['bleu_signature']}", f"  chrF {report['chrf_signature']}"]
    lines += [f"  {t['source']!r} -> {t['translation']!r} (reference {t['reference']!r})"
              for t in report["translations"]]
    return "\n".join(lines)


def draw_report(report, out_dir, title):
    """attention_<k>.png: α as a heat map, source tokens across, target tokens down."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for k, example in enumerate(report.get("attention_examples", []), 1):
        alpha = np.asarray(example["attention"])
        if not alpha.size:
            continue
        fig, ax = plt.subplots(figsize=(2 + 0.3 * alpha.shape[1], 1.5 + 0.3 * alpha.shape[0]))
        ax.imshow(alpha, cmap="viridis", vmin=0, vmax=1, aspect="auto")
        ax.set_xticks(range(alpha.shape[1]), example["source"], rotation=90)
        ax.set_yticks(range(alpha.shape[0]), example["target"])
        ax.set_title(f"{title}: attention")
        fig.tight_layout()
        path = os.path.join(out_dir, f"attention_{k}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def example_inputs(config, meta):
    """Sources the main job translates: a few held-out ones and two made up."""
    made_up = ["", "3 mars 1998"] if meta["source"] in ("dates", "embedded") else [""]
    return list(meta.get("examples") or [])[:3] + made_up


def format_prediction(row):
    """The translation, and its score."""
    text = row["translation"]
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return f"{text}   (log P {float(row['score']):.2f})   <-"
