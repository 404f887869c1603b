"""DNA model: builder, search space, metrics, report and the serving model.

Training model: ``zoo.builders.build_base_model`` (one-hot or embedded bases, a
convolutional front-end, a deep bidirectional zoo RNN), with a softmax or CRF per base
(loss ``zoo.builders.sequence_tagger.tagger_loss``) or a pooled many-to-one head
(cross-entropy, or mean squared error for values).

Serving model (``DNAServer``): raw sequence strings of any length in; per base, the
windows are cut, tagged and stitched back inside the graph (``graph.tag_sequences``), so
a 1 Mbp sequence is one request, and the predicted genes come back as spans (start, end,
strand, type); per sequence, class probabilities and the label, or the value.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib, metrics
from pipelines.common.task import Endpoint
from pipelines.dna import graph, sequences
from zoo.builders import dna as dna_builder
from zoo.builders import sequence_tagger


def build_model(config, meta):
    """The compiled model of ``config`` for the task in ``meta``."""
    per_base = meta["task"] == "per_base"
    outputs = len(meta["tags"]) if per_base else len(meta["classes"] or [0, 1])
    model = dna_builder.build_base_model(
        outputs, per_base=per_base, head=config.head, encoding=config.encoding,
        embedding_dim=config.embedding_dim, conv_layers=config.conv_layers,
        conv_filters=config.conv_filters, conv_kernel=config.conv_kernel,
        conv_dilation=config.conv_dilation, cell=config.cell,
        units=config.units, num_layers=config.num_layers, dropout=config.dropout,
        pooling=config.pooling, regression=bool(meta.get("regression")),
        length=meta.get("length"), name="dna")
    loss, metrics = _loss(config, meta)
    model.compile(optimizer=config_lib.adam(config, global_clipnorm=True), loss=loss,
                  metrics=list(metrics))
    return model


def _loss(config, meta):
    """(loss, metrics) of the task in ``meta``."""
    if meta["task"] == "per_base":
        return sequence_tagger.tagger_loss(config.head), ()
    if meta.get("regression"):
        return "mse", ()
    return "sparse_categorical_crossentropy", ("accuracy",)


def combine(members, config, meta):
    """An ensemble's model: bases -> the mean of the members' outputs (per-base or
    per-sequence probabilities, values, or CRF potentials: a product of the members'
    chain distributions), compiled for evaluation (``train.mean_of_members``)."""
    from pipelines.common import train

    loss, metrics = _loss(config, meta)
    return train.mean_of_members(members, "dna_ensemble", loss=loss, metrics=metrics)


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp``: cell, units, depth, dropout,
    learning rate, and the convolutional front-end's width."""
    return dataclasses.replace(
        config_lib.language_model_space(hp, config),
        conv_filters=hp.Choice("conv_filters", sorted({32, 64, 128, config.conv_filters}),
                               default=config.conv_filters))


def predict_tags(model, bases, config):
    outputs = model(bases, training=False)
    return sequence_tagger.decode(outputs, config.head)


# ------------------------------------------------------------------------ evaluation


def tiled_regions(dataset):
    """The regions of an evaluation dataset (windows tiling each region in order,
    ``data.window_dataset``) read back whole: [(ids (n,), tags (n,))]. A region ends
    at a window with padding, so a region whose length is a multiple of the window is
    read together with the next one."""
    regions, ids, tags = [], [], []
    for bases, labels in dataset:
        for row_ids, row_tags in zip(bases.numpy(), labels.numpy()):
            real = row_tags >= 0
            ids.append(row_ids[real])
            tags.append(row_tags[real])
            if not real.all():
                regions.append((np.concatenate(ids), np.concatenate(tags)))
                ids, tags = [], []
    if ids:
        regions.append((np.concatenate(ids), np.concatenate(tags)))
    return [r for r in regions if len(r[0])]


def evaluate(model, dataset, config, meta):
    """per_base: each region read back whole and tagged as the export tags it
    (``DNAServer.tag``: overlapping windows, every base from its most central window);
    per-base accuracy and per-class F1, gene spans: exact precision / recall / F1 (both
    ends, strand and type) and overlap recall. per_sequence: accuracy and per-class
    error, or Pearson / Spearman."""
    if meta["task"] == "per_base":
        server = DNAServer(model, config, meta)
        tagger = tf.function(lambda texts: server.tag(texts)["tags"])
        letters = np.frombuffer(b"ACGTN", np.uint8)
        true, pred = [], []
        for ids, tags in tiled_regions(dataset):
            text = letters[ids - 1].tobytes()
            true.append(tags)
            pred.append(tagger(tf.constant([text]))[0, :len(ids)].numpy())
        true_all, pred_all = np.concatenate(true), np.concatenate(pred)
        report = graph.per_base_report(true_all, pred_all)
        spans = graph.span_metrics([graph.spans_from_tags_np(t) for t in true],
                                   [graph.spans_from_tags_np(p) for p in pred])
        return {"per_base_accuracy": report["accuracy"], "macro_f1": report["macro_f1"],
                "per_class_f1": report["per_class_f1"], "span_precision": spans["precision"],
                "span_recall": spans["recall"], "span_f1": spans["f1"],
                "span_overlap_recall": spans["overlap_recall"], "true_spans": spans["true"],
                "predicted_spans": spans["pred"], "bases": int(len(true_all))}
    step = tf.function(lambda b: model(b, training=False), reduce_retracing=True)
    truth, predicted = [], []
    for bases, labels in dataset:
        truth.append(labels.numpy())
        predicted.append(step(bases).numpy())
    truth, predicted = np.concatenate(truth), np.concatenate(predicted)
    if meta.get("regression"):
        from scipy import stats

        return {"pearson": float(stats.pearsonr(truth, predicted)[0]),
                "spearman": float(stats.spearmanr(truth, predicted)[0]),
                "mse": float(np.mean((truth - predicted) ** 2)), "sequences": int(len(truth))}
    report = metrics.classification_report(truth, predicted.argmax(-1), meta["classes"])
    report["per_class_error"] = {c: 1.0 - m["recall"] if m["support"] else None
                                 for c, m in report["per_class"].items()}
    return {**report, "sequences": report["examples"]}


def format_report(report):
    if "per_base_accuracy" in report:
        f1 = "  ".join(f"{t} {v:.3f}" for t, v in report["per_class_f1"].items() if v)
        return (f"per-base accuracy {report['per_base_accuracy']:.4f}  macro F1 "
                f"{report['macro_f1']:.4f}  bases {report['bases']}\n"
                f"genes (CDS spans): precision {report['span_precision']:.4f}  recall "
                f"{report['span_recall']:.4f}  F1 {report['span_f1']:.4f}  overlap recall "
                f"{report['span_overlap_recall']:.4f}  ({report['true_spans']} true, "
                f"{report['predicted_spans']} predicted)\n  per-tag F1: {f1}")
    if "pearson" in report:
        return (f"Pearson {report['pearson']:.4f}  Spearman {report['spearman']:.4f}  "
                f"MSE {report['mse']:.4f}  sequences {report['sequences']}")
    errors = "  ".join(f"{c} {100 * e:.2f}%" for c, e in report["per_class_error"].items()
                       if e is not None)
    return (f"accuracy {report['accuracy']:.4f}  sequences {report['sequences']}\n"
            f"  error per class: {errors}")


def draw_report(report, out_dir, title):
    """confusion.png for per-sequence classification."""
    if "confusion" not in report:
        return []
    return [metrics.plot_confusion(report, os.path.join(out_dir, "confusion.png"),
                                   f"{title}: confusion")]


# --------------------------------------------------------------------------- serving


class DNAServer(keras.layers.Layer):
    """Raw sequences -> per-base tags and gene spans, or per-sequence outputs.

    Any string works: letters other than A C G T (either case) read as N; an empty
    sequence gives no tags and no spans."""

    def __init__(self, model, config, meta, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.per_base = meta["task"] == "per_base"
        self.head, self.window, self.stride = config.head, config.window, config.stride
        self.max_bases = config.serve_batch_windows * config.window
        self.classes = list(meta.get("classes") or [])
        self.regression = bool(meta.get("regression"))
        self.length = meta.get("length")  # a "flatten" model reads this length only
        self.examples = list(meta.get("examples") or [])

    def tag(self, texts):
        """texts (batch,) -> {"tags": (batch, n) int32 tag ids (-1 past a sequence),
        "tag_names": (batch, n) strings, "length": (batch,), "span_start", "span_end"
        (0-based, end exclusive), "span_strand", "span_type": (batch, S), "num_spans"}."""
        found = graph.tag_sequences(
            tf.convert_to_tensor(texts, tf.string), lambda ids: self.model(ids, training=False),
            self.window, self.stride, max_bases_per_call=self.max_bases,
            decode_fn=lambda scores: sequence_tagger.decode(scores, self.head))
        names = tf.gather(tf.constant([""] + list(sequences.TAGS)), found["tags"] + 1)
        spans = graph.spans_from_tags(found["tags"], found["length"])
        return {"tags": found["tags"], "tag_names": names, "length": found["length"], **spans}

    def classify(self, texts):
        """texts (batch,) -> {"probabilities": (batch, K), "label": (batch,) string} or
        {"value": (batch,)}. An empty sequence is all padding (pooled to zeros). A
        "flatten" model (meta ``length`` L) takes sequences of L bases only: any other
        length is an InvalidArgumentError "every sequence must have L bases"."""
        ragged = graph.encode_bases(tf.convert_to_tensor(texts, tf.string))
        if self.length:
            lengths = ragged.row_lengths()
            with tf.control_dependencies([tf.debugging.Assert(
                    tf.reduce_all(tf.equal(lengths, self.length)),
                    [f"every sequence must have {self.length} bases (pooling=flatten); "
                     "lengths:", lengths], summarize=8)]):
                ragged = tf.identity(ragged)
            ids = ragged.to_tensor(shape=[None, self.length])
        else:
            ids = ragged.to_tensor()
        ids = tf.pad(ids, [[0, 0], [0, tf.maximum(1 - tf.shape(ids)[1], 0)]])
        n = tf.shape(ids)[0]
        # An empty batch runs one padding row (layers refuse batch 0), then drops it.
        padded = tf.concat([ids, tf.zeros_like(ids[:1])], 0)[:tf.maximum(n, 1)]
        out = self.model(padded, training=False)[:n]
        if self.regression:
            return {"value": out}
        return {"probabilities": out,
                "label": tf.gather(tf.constant(self.classes), tf.argmax(out, -1))}

    def endpoints(self):
        sequence = [tf.TensorSpec([None], tf.string, name="sequence")]
        if self.per_base:
            return {"serving_default": Endpoint(fn=self.tag, inputs=sequence,
                                                example={"sequence": ["", "ATGAAACGCATTAGCACC"]})}
        example = (self.examples[:2] or ["A" * self.length]) if self.length else ["", "ACGTNacgt"]
        return {"serving_default": Endpoint(fn=self.classify, inputs=sequence,
                                            example={"sequence": example})}


def serving_model(model, config, meta):
    return DNAServer(model, config, meta)


def example_inputs(config, meta):
    return list(meta.get("examples") or [])[:3] + [""]


def format_prediction(row):
    if "tags" in row:
        n = int(row["num_spans"])
        genes = ", ".join(f"{row['span_type'][i].decode()}{row['span_strand'][i].decode()} "
                          f"{int(row['span_start'][i]) + 1}..{int(row['span_end'][i])}"
                          for i in range(min(n, 5)))
        more = f" (+{n - 5} more)" if n > 5 else ""
        return f"{int(row['length'])} bases, {n} genes: {genes or '-'}{more}"
    if "value" in row:
        return f"{float(row['value']):.4f}"
    return f"{row['label'].decode()} ({float(np.max(row['probabilities'])):.3f})"
