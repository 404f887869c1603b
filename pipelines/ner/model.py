"""NER model: builder, keras-tuner search space, evaluation and the serving model.

Training model: ``zoo.builders.sequence_tagger`` (word embedding + per-word character
encoder -> bidirectional zoo RNN stack -> softmax per step or a linear-chain CRF; a
sigmoid per step for the ``person`` target), Adam with gradient clipping. The serving
model tokenizes raw sentences in the graph, tags them and returns the entity spans.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.common import export, train
from pipelines.common.task import Endpoint
from pipelines.ner import data
from pipelines.ner import tags as tag_lib
from zoo.builders.sequence_tagger import build_sequence_tagger, decode, tagger_loss


def head_of(config):
    return "sigmoid" if config.target == "person" else config.head


def build_model(config, meta):
    """The compiled tagger for ``config`` and the vocabularies/labels in ``meta``."""
    head = head_of(config)
    model = build_sequence_tagger(
        vocab_size=len(meta["vocabulary"]),
        char_vocab_size=len(meta["characters"]),
        num_tags=1 if head == "sigmoid" else len(meta["labels"]),
        head=head,
        word_dim=config.word_dim,
        char_dim=config.char_dim,
        char_features=config.char_features,
        char_encoder=config.char_encoder,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        dropout=config.dropout,
        embedding_dropout=config.embedding_dropout,
        name="ner",
    )
    model.compile(
        optimizer=config_lib.adam(config),
        loss=tagger_loss(head),
    )
    return model


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp`` (keras-tuner HyperParameters)."""
    return dataclasses.replace(
        config,
        cell=config_lib.choose_cell(hp, config),
        units=hp.Choice("units", sorted({32, 64, 100, 200, config.units}), default=config.units),
        num_layers=hp.Int("num_layers", 1, 2, default=config.num_layers),
        char_encoder=hp.Choice("char_encoder", ["cnn", "rnn", "none"], default=config.char_encoder),
        head=hp.Choice("head", ["crf", "softmax"], default=config.head),
        dropout=hp.Float("dropout", 0.0, 0.6, step=0.1, default=config.dropout),
        learning_rate=hp.Float("learning_rate", 3e-4, 1e-2, sampling="log",
                               default=config.learning_rate),
    )


# ------------------------------------------------------------------------- label maps


def label_structure(meta):
    """For each model label: (entity type index, 0 for O; starts an entity by itself),
    and the entity type names (index 0 = "O")."""
    labels = meta["labels"]
    if meta.get("target") == "person":
        return [(0, False), (1, False)], ["O", "PER"]
    names = ["O"] + sorted({label[2:] for label in labels if label != "O"})
    index = {name: i for i, name in enumerate(names)}
    out = []
    for label in labels:
        prefix, kind = tag_lib.split_tag(label)
        out.append((index[kind], prefix in ("B", "S")) if kind else (0, False))
    return out, names


def to_bio(indices, meta):
    """Model label indices of one sentence -> BIO tag strings."""
    structure, names = label_structure(meta)
    tags, previous = [], 0
    for i in indices:
        kind, begins = structure[int(i)]
        if kind == 0:
            tags.append("O")
        else:
            tags.append(("B-" if begins or previous != kind else "I-") + names[kind])
        previous = kind
    return tags


# ------------------------------------------------------------------------ evaluation


def predict_tags(model, features, config, decoder=None, forward=None):
    """Tag indices (batch, T) for one batch of features (numpy). ``decoder``: a compiled
    ``decode`` to reuse across batches (Viterbi runs step by step when eager);
    ``forward``: the model as one traced function (``train.inference_function``)."""
    outputs = forward(features) if forward is not None else model.predict_on_batch(features)
    decoder = decoder or (lambda o: decode(o, head_of(config)))
    return keras.ops.convert_to_numpy(decoder(outputs))


def evaluate(model, dataset, config, meta):
    """Entity-level (CoNLL) precision/recall/F1 per type and overall (micro), their
    macro F1 over types, and token accuracy: {"examples", "accuracy", "precision",
    "recall", "f1", "macro_f1", "per_type": {type: {precision, recall, f1, support}},
    "overall": {precision, recall, f1, support}}."""
    gold, predicted, correct, total = [], [], 0, 0
    head = head_of(config)
    decoder = tf.function(lambda outputs: decode(outputs, head), reduce_retracing=True)
    forward = train.inference_function(model, dataset)
    for features, targets in dataset:
        pred = predict_tags(model, features, config, decoder, forward)
        targets = targets.numpy()
        for p, y in zip(pred, targets):
            n = int((y >= 0).sum())
            correct += int((p[:n] == y[:n]).sum())
            total += n
            gold.append(to_bio(y[:n], meta))
            predicted.append(to_bio(p[:n], meta))
    scores = tag_lib.entity_scores(gold, predicted)
    per_type = scores["per_type"]
    return {
        "examples": len(gold),
        "accuracy": correct / total if total else 0.0,
        "macro_f1": float(np.mean([m["f1"] for m in per_type.values()])) if per_type else 0.0,
        "precision": scores["overall"]["precision"],
        "recall": scores["overall"]["recall"],
        "f1": scores["overall"]["f1"],
        "per_type": per_type,
        "overall": scores["overall"],
    }


def validation_metrics(model, dataset, config, meta):
    """Entity-level precision, recall and F1 on ``dataset`` (the validation split after
    every epoch: ``val_f1`` is the monitor, comparable between the CRF and softmax heads,
    whose losses are per sentence and per token)."""
    report = evaluate(model, dataset, config, meta)
    return {"f1": report["f1"], "precision": report["precision"], "recall": report["recall"]}


def format_report(report):
    """The entity table the CLI prints: a row per type, then the micro average."""
    rows = {**report["per_type"], "overall": report["overall"]}
    width = max(8, *(len(kind) for kind in rows))
    lines = [f"entity F1 {report['f1']:.4f}   macro F1 {report['macro_f1']:.4f}   "
             f"token accuracy {report['accuracy']:.4f}   ({report['examples']} sentences)",
             f"{'type':<{width}}  precision  recall      f1  entities"]
    for kind, m in rows.items():
        lines.append(f"{kind:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}"
                     f"  {m['support']:8d}")
    return "\n".join(lines)


def draw_report(report, out_dir, title):
    """entity_f1.png: precision, recall and F1 per entity type and overall, as bars."""
    import os

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = {**report["per_type"], "overall": report["overall"]}
    names = list(rows)
    x = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(2 + 0.7 * len(names), 4))
    for k, metric in enumerate(("precision", "recall", "f1")):
        ax.bar(x + (k - 1) * 0.27, [rows[n][metric] for n in names], width=0.27, label=metric)
    ax.set_xticks(x, [f"{n}\n({rows[n]['support']})" for n in names], rotation=45, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("entity-level score")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    path = os.path.join(out_dir, "entity_f1.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [path]




# ----------------------------------------------------------------------------- serving


class TaggerServer(keras.layers.Layer):
    """Raw sentences (batch,) -> tags and entity spans; all preprocessing in the graph.

    Outputs (B sentences, T >= 1 tokens, E >= 0 entities, padded with "" / -1):
        tokens (B, T) string, tags (B, T) BIO string, lengths (B,) int32,
        truncated (B,) bool: the sentence had more than ``serve_max_tokens`` tokens and
        only its first ``serve_max_tokens`` were tagged,
        entity_types (B, E) string, entity_starts / entity_ends (B, E) int32 (token
        indices, end exclusive), entity_texts (B, E) string (tokens joined by spaces),
        entity_counts (B,) int32.
    ``tag(tokens)`` does the same for pre-tokenized input (B, T) strings padded with "",
    the export's ``tokens`` signature (``endpoints``: serving_default and tokens). Any
    batch works: B = 0, empty or whitespace-only sentences (lengths 0, no entities),
    one-token sentences, any bytes (invalid UTF-8 is replaced by U+FFFD).
    """

    def __init__(self, tagger, meta, config, **kwargs):
        super().__init__(**kwargs)
        self.tagger = tagger
        self.lookups = data.make_lookups(meta)
        self.head = head_of(config)
        self.max_tokens = config.serve_max_tokens
        self.max_word_chars = config.max_word_chars
        structure, names = label_structure(meta)
        self.label_type = tf.constant([k for k, _ in structure], tf.int32)
        self.label_begins = tf.constant([b for _, b in structure], tf.bool)
        self.type_names = tf.constant(names)

    def call(self, text):
        # One token more than is tagged, so that ``tag`` can tell a cut sentence.
        return self.tag(data.tokenize(text, self.max_tokens + 1))

    def tag(self, tokens):
        truncated = tf.reduce_any(tf.not_equal(tokens[:, self.max_tokens:], ""), axis=1)  # (B,)
        tokens = data.pad_tokens(tokens[:, :self.max_tokens])  # (B, T), T >= 1
        real = tf.not_equal(tokens, "")  # (B, T)
        features = data.featurize(tokens, self.lookups, self.max_word_chars)
        # An empty batch loses the time axis of the ragged characters: (0, 0, C) -> (0, T, C).
        chars = features["chars"]
        features["chars"] = tf.pad(
            chars, [[0, 0], [0, tf.shape(tokens)[1] - tf.shape(chars)[1]], [0, 0]])
        outputs = self.tagger(features, training=False)
        index = tf.cast(decode(outputs, self.head), tf.int32)  # (B, T)
        kind = tf.where(real, tf.gather(self.label_type, index), 0)  # (B, T), 0 = O
        previous = tf.pad(kind[:, :-1], [[0, 0], [1, 0]])
        begins = (kind > 0) & (tf.gather(self.label_begins, index) | (previous != kind))
        tags = tf.where(kind > 0, tf.strings.join(
            [tf.where(begins, "B-", "I-"), tf.gather(self.type_names, kind)]), "O")
        tags = tf.where(real, tags, "")
        return {"tokens": tokens, "tags": tags,
                "lengths": tf.reduce_sum(tf.cast(real, tf.int32), axis=1),
                "truncated": truncated,
                **self._spans(tokens, kind, begins)}

    def _spans(self, tokens, kind, begins):
        shape = tf.shape(kind)
        batch, width = shape[0], shape[1]
        entity = tf.cumsum(tf.cast(begins, tf.int32), axis=1) * tf.cast(kind > 0, tf.int32)
        counts = tf.reduce_max(tf.pad(entity, [[0, 0], [0, 1]]), axis=1)  # (B,)
        slots = tf.reduce_max(tf.pad(counts, [[0, 1]])) + 1  # E + 1 (slot 0 = outside)
        segment = entity + tf.range(batch)[:, None] * slots  # (B, T)
        steps = tf.broadcast_to(tf.range(width)[None, :], shape)
        n = batch * slots
        starts = tf.math.unsorted_segment_min(steps, segment, n)
        ends = tf.math.unsorted_segment_max(steps, segment, n) + 1
        starts = tf.reshape(starts, (batch, slots))[:, 1:]  # (B, E)
        ends = tf.reshape(ends, (batch, slots))[:, 1:]
        valid = tf.range(slots - 1)[None, :] < counts[:, None]  # (B, E)
        starts = tf.where(valid, starts, -1)
        ends = tf.where(valid, ends, -1)
        types = tf.gather(kind, tf.maximum(starts, 0), batch_dims=1)
        inside = (steps[:, None, :] >= starts[:, :, None]) & (steps[:, None, :] < ends[:, :, None])
        words = tf.ragged.boolean_mask(
            tf.broadcast_to(tokens[:, None, :], tf.shape(inside)), inside)  # (B, E, None)
        texts = tf.strings.reduce_join(words, axis=-1, separator=" ")
        if isinstance(texts, tf.RaggedTensor):  # signatures take dense tensors only
            texts = texts.to_tensor("", shape=tf.shape(starts))
        return {
            "entity_types": tf.where(valid, tf.gather(self.type_names, types), ""),
            "entity_starts": starts,
            "entity_ends": ends,
            "entity_texts": texts,
            "entity_counts": counts,
        }

    def endpoints(self):
        """serving_default: text (batch,) raw sentences; tokens: (batch, time) tokens."""
        return {
            "serving_default": export.text_endpoint(
                self, example=["Barack Obama visited Paris .", "", "and " * 300]),
            "tokens": Endpoint(fn=lambda tokens: self.tag(tokens),
                               inputs=[tf.TensorSpec((None, None), tf.string, name="tokens")],
                               example={"tokens": [["Obama", "visited", "Paris"],
                                                   ["London", "", ""]]}),
        }


def serving_model(model, config, meta):
    return TaggerServer(model, meta, config)


def example_inputs(config, meta):
    return [
        "Barack Obama visited Google headquarters in California on Monday .",
        "Heading to New York to watch the Yankees with @john tonight !",
        "EU rejects German call to boycott British lamb .",
        "",
        "and " * 300 + "Paris",
    ]


def format_prediction(row):
    def text(value):
        return value.decode("utf-8") if isinstance(value, bytes) else str(value)

    spans = [f"[{text(k)}: {text(t)}]"
             for k, t in zip(row["entity_types"], row["entity_texts"]) if text(k)]
    return " ".join(spans) if spans else "(no entities)"
