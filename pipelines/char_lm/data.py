"""Text -> token ids -> training windows for the language model (the tf.data chain).

One example is a window of T tokens cut from the corpus as one long token stream:

    y = (y<1>, ..., y<T>)   int32 (T,), the targets
    x = (0, y<1>, ..., y<T-1>)  int32 (T,), the inputs: x<1> = 0 is the start token
                                (a zero input) and x<t> = y<t-1>, except that an
                                <EOS> input is replaced by the start token 0, so
                                every sentence starts like a scored sentence.

Batches are (x, y) of shape (batch, T). With ``carry_state`` the batches are laid out
for truncated backpropagation through time: row b of batch k+1 continues row b of
batch k in the corpus, so the recurrent state can be carried from one to the next.

Levels:
- ``char``: one token per Unicode character, case kept; the vocabulary is every
  character of the training text (no <UNK> in training; a character never seen in
  training maps to the <UNK> id when scoring, which the model gives ~0 probability).
- ``word``: lowercased words, numbers and punctuation marks; <EOS> after every
  sentence ([.!?] followed by white space) and at blank lines; the most frequent
  ``vocab_size`` tokens are kept and the rest become <UNK>.

Vocabulary layout (both levels): id 0 "" (start token and padding), id 1 "[UNK]",
id 2 "<eos>", then tokens by decreasing training frequency.

Data: by default the Python documentation prose that ships with every Python
installation (``pydoc_data.topics``, about 465,000 characters of English). Bring your
own: one or more plain-text UTF-8 files (e.g. tiny-shakespeare); they are
concatenated, and the first ``1 - valid_fraction`` of the characters train, the rest
validate (the nanoGPT convention). A missing, empty or undecodable file, or a text too
short for one window, raises ``DataError`` naming the file.
"""

import collections
import re

import numpy as np
import tensorflow as tf

from pipelines.common import data as common
from pipelines.common import textio
from pipelines.common.data import PAD, PAD_ID, UNK, UNK_ID  # PAD_ID: model.py reads data.PAD_ID
from pipelines.common.textio import DataError

EOS = "<eos>"
RESERVED = (PAD, UNK, EOS)  # ids 0, 1, 2
EOS_ID = 2
LEVELS = ("char", "word")
_EOS_MARK = "\x1e"  # record separator: survives punctuation splitting as its own token


def load_corpus(paths=()):
    """The corpus as one string: the given UTF-8 files concatenated, or pydoc_data.topics.
    Raises DataError for a missing, empty or undecodable file."""
    if not paths:
        from pydoc_data.topics import topics

        return "\n\n".join(topics[key].strip() for key in sorted(topics)) + "\n"
    texts = [textio.read_text(path) for path in paths]
    return "\n\n".join(t.rstrip("\n") for t in texts) + "\n"


def split_corpus(text, valid_fraction=0.1):
    """(train, valid): the first ``1 - valid_fraction`` of the characters and the rest."""
    if not 0.0 < valid_fraction < 1.0:
        raise ValueError(f"Expected 0 < valid_fraction < 1. Received: valid_fraction={valid_fraction!r}")
    cut = int(len(text) * (1.0 - valid_fraction))
    return text[:cut], text[cut:]


def tokenize(texts, level):
    """String tensor (n,) -> RaggedTensor (n, None) of string tokens (graph-safe).

    ``char``: Unicode characters. ``word``: see the module docstring.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8")
    if level != "word":
        raise ValueError(f"Expected level in {LEVELS}. Received: level={level!r}")
    t = tf.strings.lower(texts, encoding="utf-8")
    t = tf.strings.regex_replace(t, r"\n[ \t]*\n", " " + _EOS_MARK + " \n")  # blank line
    t = tf.strings.regex_replace(t, r"([.!?])(\s|$)", r"\1 " + _EOS_MARK + r"\2")  # sentence end
    t = tf.strings.regex_replace(t, r"([^\pL\pN\s'])", r" \1 ")  # punctuation as tokens
    t = tf.strings.regex_replace(t, _EOS_MARK + r"(\s+" + _EOS_MARK + ")+", _EOS_MARK)  # one <EOS>
    t = tf.strings.regex_replace(t, _EOS_MARK, EOS)
    return tf.strings.split(t)


def sentence_tokens(texts, level):
    """Tokens of texts scored or prompted as sentences: word level ends each with one
    <EOS> (added when the text does not already end a sentence); char level is as is."""
    tokens = tokenize(texts, level)
    if level == "char":
        return tokens
    last = tokens[:, -1:].to_tensor(default_value="")
    needs_eos = tf.not_equal(last[:, 0], EOS)  # (n,)
    eos = tf.RaggedTensor.from_row_lengths(
        tf.fill([tf.reduce_sum(tf.cast(needs_eos, tf.int64))], EOS), tf.cast(needs_eos, tf.int64)
    )
    return tf.concat([tokens, eos], axis=1)


def prompt_tokens(texts, level):
    """Tokens of prompts: word level drops a trailing <EOS> (a prompt is continued)."""
    tokens = tokenize(texts, level)
    if level == "char":
        return tokens
    keep = tf.not_equal(tokens.flat_values, EOS) | _not_last(tokens)
    return tf.ragged.boolean_mask(tokens, tokens.with_flat_values(keep))


def _not_last(ragged):
    """Flat bool: True except at each row's last position."""
    row_lengths = ragged.row_lengths()
    positions = tf.ragged.range(row_lengths).flat_values
    return positions < tf.repeat(row_lengths - 1, row_lengths)


def build_vocabulary(text, level, max_size=10_000):
    """Token list for ``text``: RESERVED, then the most frequent tokens (ties
    alphabetical). ``max_size`` (None: no limit) counts the whole list including RESERVED."""
    if max_size is not None and max_size <= len(RESERVED):
        raise ValueError(f"Expected max_size > {len(RESERVED)}. Received: max_size={max_size!r}")
    counts = collections.Counter()
    for chunk in _token_batches(text, level, lambda tokens: tokens):
        counts.update(chunk.tolist())
    counts = {t.decode("utf-8"): n for t, n in counts.items()}
    max_tokens = len(counts) if max_size is None else max_size - len(RESERVED)
    return common.build_vocabulary(counts, max_tokens, reserved=RESERVED)


def make_vectorizer(vocabulary):
    """A ``keras.layers.StringLookup`` token -> id for a ``build_vocabulary`` list
    (unknown tokens -> UNK_ID); it runs in tf.data maps and in exported graphs."""
    import keras

    if list(vocabulary[: len(RESERVED)]) != list(RESERVED):
        raise ValueError(f"Expected the vocabulary to start with {RESERVED}. Received: {vocabulary[:3]}")
    return keras.layers.StringLookup(
        vocabulary=list(vocabulary[2:]), mask_token=PAD, oov_token=UNK, num_oov_indices=1,
        output_mode="int", name="vectorizer",
    )


def _pieces(text):
    """The text cut after blank lines (paragraphs), so no sentence rule spans two pieces."""
    return [p for p in re.split(r"(?<=\n\n)", text) if p]


def _token_batches(text, level, fn):
    """``fn`` applied to the flat tokens of every 256 paragraphs, as NumPy arrays."""
    ds = tf.data.Dataset.from_tensor_slices(_pieces(text))
    ds = ds.batch(256).map(lambda t: fn(tokenize(t, level).flat_values))
    return [chunk.numpy() for chunk in ds]


def token_stream(text, level, vectorizer):
    """All token ids of ``text`` in order, int32 (n,), through tf.data (paragraph-wise)."""
    chunks = _token_batches(text, level, lambda tokens: tf.cast(vectorizer(tokens), tf.int32))
    return np.concatenate(chunks).astype("int32") if chunks else np.zeros((0,), "int32")


def inputs_from_targets(y):
    """x = (0, y<1..T-1>) with <EOS> inputs replaced by the start token 0; y (..., T)."""
    y = tf.convert_to_tensor(y)
    x = tf.concat([tf.zeros_like(y[..., :1]), y[..., :-1]], axis=-1)
    return tf.where(tf.equal(x, EOS_ID), tf.zeros_like(x), x)


def make_dataset(ids, window, batch_size, shuffle=False, seed=0, carry_state=False):
    """(x, y) batches (batch, window) int32 from a token stream ``ids`` (n,).

    ``carry_state``: the stream is cut into ``batch_size`` contiguous rows and batch k
    holds columns [k*window, (k+1)*window) of every row (for truncated BPTT; no
    shuffling). Otherwise non-overlapping windows, shuffled if asked.
    """
    if window < 1 or batch_size < 1:
        raise ValueError(f"Expected window, batch_size >= 1. Received: {window=}, {batch_size=}")
    ids = np.asarray(ids, "int32")
    if carry_state:
        per_row = (len(ids) // batch_size) // window * window
        if per_row == 0:
            raise ValueError(
                f"Corpus too short: {len(ids)} tokens for {batch_size} rows of {window}."
            )
        rows = ids[: per_row * batch_size].reshape(batch_size, per_row)
        # x from whole rows: window k+1 starts with the last target of window k (only
        # the first window of a row starts from the start token).
        x_rows = inputs_from_targets(rows).numpy()

        def columns(a):  # (batch, per_row) -> (per_row // window, batch, window)
            return np.transpose(a.reshape(batch_size, per_row // window, window), (1, 0, 2))

        ds = tf.data.Dataset.from_tensor_slices((columns(x_rows), columns(rows)))
        return ds.prefetch(tf.data.AUTOTUNE)
    if len(ids) < window:
        raise ValueError(f"Corpus too short: {len(ids)} tokens for a window of {window}.")
    ds = tf.data.Dataset.from_tensor_slices(ids).batch(window, drop_remainder=True)
    ds = ds.map(lambda y: (inputs_from_targets(y), y)).cache()
    if shuffle:
        ds = ds.shuffle(len(ids) // window, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def detokenize(tokens, level):
    """Token strings (n, None) ragged -> text (n,): characters joined; words joined by
    spaces with no space before punctuation."""
    if level == "char":
        return tf.strings.reduce_join(tokens, axis=-1)
    text = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    return tf.strings.regex_replace(text, r" ([^\pL\pN\s'(\[{\"])", r"\1")


def read_text(config, spec):
    """The text of a data spec: "embedded" or comma-separated UTF-8 file paths
    (DataError for a missing, empty or undecodable file)."""
    paths = () if spec == "embedded" else [p for p in spec.split(",") if p.strip()]
    text = load_corpus(paths)
    return text[: config.max_chars] if config.max_chars else text


def make_datasets(config, meta=None):
    """``Datasets`` of (x, y) windows for ``config`` (see the module docstring).

    ``meta`` (from an earlier run) fixes the vocabulary; otherwise it is built from the
    training text and returned in ``meta`` with the level.
    """
    from pipelines.common.task import Datasets

    if config.train_file or config.valid_file:
        if not (config.train_file and config.valid_file):
            raise DataError(config.train_file or config.valid_file,
                            "--train needs --valid too (or --data FILE to split one file)")
        train_text, valid_text = read_text(config, config.train_file), read_text(config, config.valid_file)
        train_source, valid_source = config.train_file, config.valid_file
    else:
        train_text, valid_text = split_corpus(read_text(config, config.data), config.valid_fraction)
        train_source = valid_source = config.data
    if meta is None:
        vocabulary = build_vocabulary(train_text, config.level, config.vocab_size)
        meta = {"level": config.level, "vocabulary": vocabulary}
    vectorizer = make_vectorizer(meta["vocabulary"])
    train_ids = token_stream(train_text, config.level, vectorizer)
    valid_ids = token_stream(valid_text, config.level, vectorizer)
    _check_length(train_ids, train_source, "training", config, config.carry_state)
    _check_length(valid_ids, valid_source, "validation", config)
    train = make_dataset(train_ids, config.window, config.batch_size, shuffle=True,
                         seed=config.seed, carry_state=config.carry_state)
    if config.steps_per_epoch:
        train = train.repeat().take(config.steps_per_epoch)
    valid = make_dataset(valid_ids, config.window, config.batch_size)
    test = None
    if config.test_file:
        test_ids = token_stream(read_text(config, config.test_file), config.level, vectorizer)
        _check_length(test_ids, config.test_file, "test", config)
        test = make_dataset(test_ids, config.window, config.batch_size)
    unk = float(np.mean(train_ids == UNK_ID)) if len(train_ids) else 0.0
    sizes = {"train tokens": len(train_ids), "valid tokens": len(valid_ids),
             "vocabulary": len(meta["vocabulary"]), "train [UNK] %": round(100 * unk, 2)}
    return Datasets(train=train, valid=valid, test=test, meta=meta, sizes=sizes)


def read_split(config, meta, path):
    """(x, y) windows of the text file(s) ``path``, with the trained vocabulary."""
    ids = token_stream(read_text(config, path), meta["level"], make_vectorizer(meta["vocabulary"]))
    _check_length(ids, path, "evaluation", config)
    return make_dataset(ids, config.window, config.batch_size)


def _check_length(ids, source, part, config, carry_state=False):
    """DataError naming ``source`` when ``ids`` fill no window (with ``carry_state``: no
    ``batch_size`` rows of one window each)."""
    need = config.window * (config.batch_size if carry_state else 1)
    if len(ids) < need:
        what = (f"{config.batch_size} rows of one window (carry_state)" if carry_state
                else "one window")
        raise DataError(source, f"corpus too short: the {part} text has {len(ids)} "
                        f"{config.level} tokens, fewer than the {need} of {what} "
                        "(lower --set window=... or bring more text)")
