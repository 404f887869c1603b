"""Sentiment model: builder, keras-tuner search space and the serving model.

Training model: token ids -> embedding -> zoo recurrent stack -> pooling -> softmax
(``zoo.builders.sequence_classifier``), Adam with gradient clipping. The serving model
wraps it with the same vectorizer as the tf.data chain so Serving takes raw strings.
"""

import dataclasses

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.common import export, train
from pipelines.common.metrics import classification_report
from pipelines.sentiment import data
from zoo.builders.sequence_classifier import build_sequence_classifier


@keras.saving.register_keras_serializable(package="sentiment")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of probabilities against integer labels with label smoothing:
    the target is (1 - ε) one_hot(y) + ε / K (Keras' sparse loss has no smoothing)."""

    def __init__(self, label_smoothing=0.1, name="smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.label_smoothing = float(label_smoothing)

    def call(self, y_true, y_pred):
        k = keras.ops.shape(y_pred)[-1]
        y = keras.ops.one_hot(keras.ops.reshape(keras.ops.cast(y_true, "int32"), (-1,)), k)
        y = y * (1.0 - self.label_smoothing) + self.label_smoothing / keras.ops.cast(k, y.dtype)
        return keras.losses.categorical_crossentropy(y, y_pred)

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


def build_model(config, meta):
    """The compiled classifier for ``config`` and the vocabulary/labels in ``meta``."""
    model = build_sequence_classifier(
        vocab_size=len(meta["vocabulary"]),
        num_classes=len(meta["labels"]),
        embedding_dim=config.embedding_dim,
        cell=config.cell,
        units=config.units,
        num_layers=config.num_layers,
        bidirectional=config.bidirectional,
        dropout=config.dropout,
        embedding_dropout=config.embedding_dropout,
        pooling=config.pooling,
        ngram_buckets=config.ngram_buckets,
        ngram_dim=config.ngram_dim,
        ngram_max=config.ngram_max,
        name="sentiment",
    )
    loss = (SmoothedSparseCrossentropy(config.label_smoothing) if config.label_smoothing
            else "sparse_categorical_crossentropy")
    learning_rate = config.learning_rate
    if config.lr_decay != 1.0:
        # One epoch is about train_examples / batch_size steps (bucketing adds a few).
        steps = max(1, -(-meta.get("train_examples", config.batch_size) // config.batch_size))
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            config.learning_rate, decay_steps=steps, decay_rate=config.lr_decay)
    model.compile(
        optimizer=config_lib.adam(config, learning_rate),
        loss=loss,
        metrics=["accuracy"],
    )
    return model


def combine(members, config, meta):
    """One classifier from trained ``members``: token ids -> the mean of their
    probabilities (batch, K), compiled for evaluation (``train.mean_of_members``)."""
    return train.mean_of_members(members, "sentiment_ensemble")


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp`` (keras-tuner HyperParameters)."""
    return dataclasses.replace(
        config,
        cell=config_lib.choose_cell(hp, config),
        units=hp.Choice("units", sorted({16, 32, 64, 128, config.units}), default=config.units),
        num_layers=hp.Int("num_layers", 1, 2, default=config.num_layers),
        bidirectional=hp.Boolean("bidirectional", default=config.bidirectional),
        dropout=hp.Float("dropout", 0.0, 0.6, step=0.1, default=config.dropout),
        learning_rate=hp.Float("learning_rate", 3e-4, 1e-2, sampling="log",
                               default=config.learning_rate),
        clipnorm=hp.Choice("clipnorm", sorted({0.5, 1.0, 5.0, config.clipnorm}),
                           default=config.clipnorm),
    )


class TextClassifierServer(keras.layers.Layer):
    """Raw strings (batch,) -> {probabilities (batch, K), label (batch,) string,
    label_index (batch,) int32}; texts are vectorized and truncated in the graph."""

    def __init__(self, classifier, vocabulary, labels, max_length, **kwargs):
        super().__init__(**kwargs)
        self.classifier = classifier
        self.vectorizer = data.make_vectorizer(vocabulary)
        self.labels = list(labels)
        self.max_length = max_length

    def call(self, text):
        ids = data.encode(self.vectorizer, text, self.max_length)  # (batch, width)
        probabilities = self.classifier(ids, training=False)  # (batch, K)
        index = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
        return {
            "probabilities": probabilities,
            "label": tf.gather(tf.constant(self.labels), index),
            "label_index": index,
        }

    def endpoints(self):
        """serving_default: text (batch,) raw strings -> the outputs of ``call``."""
        return {"serving_default": export.text_endpoint(self, example=("", "a text", "x" * 5000))}


def serving_model(model, config, meta):
    return TextClassifierServer(model, meta["vocabulary"], meta["labels"], config.max_length)


def evaluate(model, dataset, config, meta):
    """Accuracy, per-class precision/recall/F1 and the confusion matrix on ``dataset``."""
    y_true, y_pred = [], []
    forward = train.inference_function(model, dataset)
    for ids, labels in dataset:
        y_pred.append(np.argmax(forward(ids).numpy(), axis=-1))
        y_true.append(labels.numpy())
    return classification_report(np.concatenate(y_true), np.concatenate(y_pred), meta["labels"])


def example_inputs(config, meta):
    return [
        "I would love to ride in a self-driving car, what a great idea!",
        "Driverless cars scare me. No way I'm getting in one.",
        "Google is testing its autonomous cars in California.",
        "this movie was a complete waste of time",
        "",
    ]


def format_prediction(row):
    label = row["label"].decode("utf-8") if isinstance(row["label"], bytes) else str(row["label"])
    return f"{label} ({float(np.max(row['probabilities'])):.2f})"
