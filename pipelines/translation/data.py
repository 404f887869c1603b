"""Translation data: (source, target) sentence pairs -> token ids -> tf.data batches.

One example is a pair of token id sequences (characters, or words with punctuation
split off, chosen by ``level``), each side with its own vocabulary (id 0 padding, 1
[UNK], 2 <start>, 3 <end>). Batches are ``((source_ids (Tx,), decoder_ids (Ty,)),
target_ids (Ty,), weights (Ty,))`` with decoder_ids = <start> y<1..n> and target_ids =
y<1..n> <end> (teacher forcing), bucketed by source length.

Where pairs come from:
* ``dates`` (default): random dates rendered by babel from CLDR formats (full, long,
  medium, short and skeletons) in English, French, Spanish and German -> ISO
  YYYY-MM-DD. Years 1950-2049 (two-digit years are unambiguous in that range); the
  years ``test_years`` and the format ``test_format`` appear only in the test split;
  formats that put the day and the month in locale-dependent order as bare numbers are
  used only in locales that agree (so no source string has two targets). Generated from
  locale data, not human translations.
* ``numbers``: integers written out by num2words (cardinal, and year form for
  1100-2099) in the same languages -> digits.
* a tab-separated pairs file (``source<TAB>target``, an optional third column ignored:
  Tatoeba / manythings Anki files), plain or inside its ``.zip``; or two aligned
  files (``source_file``, ``target_file``). Split 90/5/5 by source sentence, so no
  source sentence is in two splits; ``reverse`` swaps the sides.
"""

import datetime
import os
import zipfile

import numpy as np

from pipelines.common.textio import DataError

PAD, UNK, START, END = "", "[UNK]", "<start>", "<end>"
RESERVED = (PAD, UNK, START, END)
PAD_ID, UNK_ID, START_ID, END_ID = 0, 1, 2, 3
LOCALES = ("en", "fr", "es", "de")
# babel's standard formats and skeletons; numeric day/month orders differ by locale, so
# those go only to the day-first locales.
TEXT_FORMATS = ("full", "long", "medium", "yMMMEd", "yMMMMd", "yMMMd", "yMMMMEEEEd")
NUMERIC_FORMATS = ("short", "yMd", "yMMdd")
DAY_FIRST = ("fr", "es", "de")
YEARS = (1950, 2049)
INSTALL = "the translation pipeline needs its extra: pip install 'seqzoo[translation]'"
# tensorflow-text pins the `tensorflow` distribution; installed beside tensorflow-cpu it
# would bring a second TensorFlow, so it is installed without its requirements.
SUBWORD_INSTALL = ("level=subword needs tensorflow-text, installed without its requirements "
                   "(they name the full tensorflow package): pip install --no-deps "
                   "'tensorflow-text==2.21.*'")


def _require(module, install=INSTALL):
    """``module`` imported, or a DataError naming its package and what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module.split(".")[0], install) from None


# --------------------------------------------------------------------------- generated


def render_date(date, fmt, locale):
    """``date`` in babel's format or skeleton ``fmt`` for ``locale`` (years as yyyy, never
    the week-based YYYY)."""
    dates = _require("babel.dates")
    if fmt in ("full", "long", "medium", "short"):
        return dates.format_date(date, fmt, locale=locale)
    return dates.format_skeleton(fmt, date, locale=locale)


def date_formats(locale):
    return TEXT_FORMATS + (NUMERIC_FORMATS if locale in DAY_FIRST else ())


def generate_dates(config):
    """{"train", "valid", "test"}: lists of (human date, ISO date) pairs."""
    rng = np.random.RandomState(config.seed)
    first, last = datetime.date(YEARS[0], 1, 1).toordinal(), datetime.date(YEARS[1], 12, 31).toordinal()
    held_years = range(config.test_years[0], config.test_years[-1] + 1) if config.test_years else ()

    def draw(n, test):
        pairs, seen = [], set()
        while len(pairs) < n:
            date = datetime.date.fromordinal(int(rng.randint(first, last + 1)))
            if (date.year in held_years) != test:
                continue
            locale = LOCALES[rng.randint(len(LOCALES))]
            formats = [f for f in date_formats(locale) if test or f != config.test_format]
            if test and config.test_format in date_formats(locale) and rng.rand() < 0.5:
                fmt = config.test_format  # half of the test pairs in the held-out format
            else:
                fmt = formats[rng.randint(len(formats))]
            source = render_date(date, fmt, locale)
            if source not in seen:
                seen.add(source)
                pairs.append((source, date.isoformat()))
        return pairs

    train = draw(config.num_examples, test=False)
    n_valid = max(1, int(round(config.num_examples * config.valid_fraction)))
    train_sources = {s for s, _ in train}
    valid = [p for p in draw(n_valid * 3, test=False) if p[0] not in train_sources][:n_valid]
    test = draw(max(1, int(round(config.num_examples * config.test_fraction))), test=True)
    return {"train": train, "valid": valid, "test": test}


def generate_numbers(config):
    """Number words -> digits: integers below a million (cardinal) and years 1100-2099
    (year form), in the four languages; split by number (no number in two splits)."""
    num2words = _require("num2words").num2words
    rng = np.random.RandomState(config.seed)
    total = int(config.num_examples * (1 + config.valid_fraction + config.test_fraction))
    numbers = rng.choice(1_000_000, size=total, replace=False)
    n_test = int(round(total * config.test_fraction))
    n_valid = max(1, int(round(total * config.valid_fraction)))
    splits = {"test": numbers[:n_test], "valid": numbers[n_test:n_test + n_valid],
              "train": numbers[n_test + n_valid:]}
    out = {}
    for name, values in splits.items():
        pairs = []
        for n in values:
            n = int(n)
            lang = LOCALES[rng.randint(len(LOCALES))]
            year = 1100 <= n < 2100 and rng.rand() < 0.5
            pairs.append((num2words(n, lang=lang, to="year" if year else "cardinal"), str(n)))
        out[name] = pairs
    return out


# ------------------------------------------------------------------------------ files


def _decode(raw, path):
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise DataError(path, f"bytes {raw[e.start:e.end]!r} are not valid UTF-8", line=line) from None


def read_pairs(path, on_error="stop"):
    """(pairs, skipped lines) of a tab-separated file or the .txt inside a .zip."""
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    if path.lower().endswith(".zip"):
        try:
            with zipfile.ZipFile(path) as archive:
                members = [n for n in archive.namelist() if n.endswith(".txt")
                           and not os.path.basename(n).startswith("_")]
                if not members:
                    raise DataError(path, "no .txt file of pairs in this archive")
                name = max(members, key=lambda n: archive.getinfo(n).file_size)
                raw, where = archive.read(name), f"{path}:{name}"
        except zipfile.BadZipFile:
            raise DataError(path, "not a zip archive") from None
    else:
        with open(path, "rb") as f:
            raw, where = f.read(), path
    if not raw.strip():
        raise DataError(where, "the file is empty")
    pairs, skipped = [], 0
    for number, line in enumerate(_decode(raw, where).splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split("\t")
        problem = ("expected source<TAB>target" if len(fields) < 2 else
                   "an empty side" if not fields[0].strip() or not fields[1].strip() else None)
        if problem:
            if on_error == "skip":
                skipped += 1
                continue
            raise DataError(where, f"{problem} (--set on_error=skip skips such lines)", line=number)
        pairs.append((fields[0].strip(), fields[1].strip()))
    if not pairs:
        raise DataError(where, "no pairs")
    return pairs, skipped


def read_aligned(source_file, target_file):
    """Pairs of two files aligned by line."""
    sides = []
    for path in (source_file, target_file):
        if not os.path.exists(path):
            raise DataError(path, "no such file")
        with open(path, "rb") as f:
            sides.append(_decode(f.read(), path).splitlines())
    if len(sides[0]) != len(sides[1]):
        raise DataError(target_file, f"{len(sides[1])} lines, but {source_file} has "
                        f"{len(sides[0])}: the files must be aligned line by line")
    for number, (s, t) in enumerate(zip(*sides), 1):
        if not s.strip() or not t.strip():
            raise DataError(source_file if not s.strip() else target_file, "an empty line", line=number)
    return [(s.strip(), t.strip()) for s, t in zip(*sides)]


def split_by_source(pairs, config):
    """{"train", "valid", "test"} with every pair of one source sentence in one split."""
    from pipelines.common import data as common

    sources = sorted({s for s, _ in pairs})
    cut = common.split_indices(len(sources), config.seed, config.valid_fraction,
                               config.test_fraction)
    where = {sources[i]: name for name, idx in cut.items() for i in idx}
    splits = {name: [] for name in cut}
    for pair in pairs:
        splits[where[pair[0]]].append(pair)
    return splits


def load_pairs(config):
    """({split: [(source, target)]}, notes)."""
    notes = []
    if config.source_file or config.target_file:
        if not (config.source_file and config.target_file):
            raise DataError(config.source_file or config.target_file,
                            "--source-file needs --target-file too")
        splits = split_by_source(read_aligned(config.source_file, config.target_file), config)
    elif config.data in ("dates", "embedded"):
        splits = generate_dates(config)
    elif config.data == "numbers":
        splits = generate_numbers(config)
    else:
        pairs, skipped = read_pairs(config.data, config.on_error)
        if skipped:
            notes.append(f"skipped {skipped} bad lines of {config.data}")
        if config.reverse:
            pairs = [(t, s) for s, t in pairs]
        splits = split_by_source(pairs, config)
    if config.max_examples:
        from pipelines.common import data as common

        splits = common.subset(splits, config.max_examples, config.seed,
                               take=lambda pairs, idx: [pairs[i] for i in idx])
    if not splits.get("train"):
        raise DataError(config.data, "no training pairs")
    return splits, notes


# ------------------------------------------------------------------------ tokens, ids


def tokenize(texts, level, pieces=None):
    """(n,) strings -> ragged (n, None) string tokens, in the graph: characters (invalid
    UTF-8 replaced), words (runs of Unicode letters, marks, digits and _) with every
    other character a token of its own, or subwords: those words cut into WordPiece
    pieces (``pieces``, a ``make_pieces`` tokenizer; a continuation starts with ##, a
    word with no cut into known pieces is [UNK]). Any Unicode space separates (French
    puts U+202F before ! and ?); RE2's ``\\w`` and ``\\s`` are ASCII-only, hence the classes."""
    import tensorflow as tf

    texts = tf.convert_to_tensor(texts, tf.string)
    if level == "char":
        return tf.strings.unicode_split(texts, "UTF-8", errors="replace")
    spaced = tf.strings.regex_replace(texts, r"[\p{Z}\t\n\r\f\v]+", " ")
    spaced = tf.strings.regex_replace(spaced, r"([^\p{L}\p{M}\p{N}_ ])", r" \1 ")
    words = tf.strings.split(tf.strings.strip(spaced))
    if level != "subword":
        return words
    if pieces is None:
        raise ValueError("level='subword' needs the WordPiece tokenizer (make_pieces)")
    return pieces.tokenize(words).merge_dims(-2, -1)


def detokenize(tokens, level):
    """Ragged tokens -> strings: words joined by spaces (subword pieces ##x glued to the
    piece before), no space before . , ! ? ; : and none around an apostrophe or hyphen
    inside a word ("l'élève", "peut-être")."""
    import tensorflow as tf

    if level == "char":
        return tf.strings.reduce_join(tokens, axis=-1)
    joined = tf.strings.reduce_join(tokens, axis=-1, separator=" ")
    if level == "subword":
        joined = tf.strings.regex_replace(joined, r"(^| )##", "")
    joined = tf.strings.regex_replace(joined, r"([\p{L}\p{N}]) ([-'’]) ([\p{L}\p{N}])", r"\1\2\3")
    return tf.strings.regex_replace(joined, r" ([.,!?;:])", r"\1")


def make_pieces(vocabulary, level):
    """The WordPiece tokenizer (``tensorflow_text.WordpieceTokenizer``, string pieces)
    of a subword vocabulary; None for other levels."""
    if level != "subword":
        return None
    import tensorflow as tf

    text = _require("tensorflow_text", SUBWORD_INSTALL)
    keys = [t for t in vocabulary if t]
    table = tf.lookup.StaticVocabularyTable(
        tf.lookup.KeyValueTensorInitializer(keys, tf.range(len(keys), dtype=tf.int64)), 1)
    return text.WordpieceTokenizer(table, suffix_indicator="##", unknown_token=UNK,
                                   token_out_type=tf.string, max_bytes_per_word=100)


def build_vocabulary(texts, level, size):
    """RESERVED + the most frequent tokens of ``texts`` (at most ``size`` in all); for
    subwords, a WordPiece vocabulary of about ``size`` pieces learned from the word counts
    by tensorflow-text's learner (every character of the words kept, as a piece)."""
    from collections import Counter

    from pipelines.common import data as common

    counts = Counter()
    for start in range(0, len(texts), 4096):
        for row in tokenize(texts[start:start + 4096], "word" if level == "subword" else level).to_list():
            counts.update(t.decode("utf-8") for t in row)
    if level == "subword":
        learner = _require("tensorflow_text.tools.wordpiece_vocab.wordpiece_tokenizer_learner_lib",
                           SUBWORD_INSTALL)
        learned = learner.learn(dict(counts), size, list(RESERVED[1:]), lower_thresh=2,
                                max_unique_chars=1000)
        counts = {t: len(learned) - i for i, t in enumerate(learned)}  # keep the learner's order
    return common.build_vocabulary(counts, size - len(RESERVED), reserved=RESERVED)


def make_vectorizer(vocabulary):
    """``keras.layers.StringLookup`` token -> id (unknown -> UNK_ID), in tf.data and graphs."""
    import keras

    return keras.layers.StringLookup(vocabulary=list(vocabulary[2:]), mask_token=PAD,
                                     oov_token=UNK, num_oov_indices=1, output_mode="int")


def encode(texts, level, vectorizer, pieces=None):
    """Lists of ids (no start/end) of ``texts``."""
    import tensorflow as tf

    out = []
    for start in range(0, len(texts), 4096):
        tokens = tokenize(texts[start:start + 4096], level, pieces)
        out += tf.cast(tf.ragged.map_flat_values(vectorizer, tokens), tf.int32).to_list()
    return out


def make_dataset(pairs, config, meta, training=False):
    """Batches of ((source_ids, decoder_ids), target_ids, weights) of ``pairs`` (those
    longer than the config's maxima dropped)."""
    import tensorflow as tf

    from pipelines.common import data as common

    level = meta["level"]
    sources, targets = ([[s, t][side] for s, t in pairs] for side in (0, 1))
    sources, targets = (encode(texts, level, make_vectorizer(meta[f"{side}_vocabulary"]),
                               make_pieces(meta[f"{side}_vocabulary"], level))
                        for texts, side in ((sources, "source"), (targets, "target")))
    examples = [(np.array(s, np.int32), np.array([START_ID] + t, np.int32),
                 np.array(t + [END_ID], np.int32), np.ones(len(t) + 1, np.float32))
                for s, t in zip(sources, targets)
                if 0 < len(s) <= config.max_source_length and len(t) + 1 <= config.max_target_length]
    ids = tf.TensorSpec((None,), tf.int32)
    ds = tf.data.Dataset.from_generator(
        lambda: (((s, d), y, w) for s, d, y, w in examples),
        output_signature=((ids, ids), ids, tf.TensorSpec((None,), tf.float32)))
    return common.batches(ds, lambda x, y, w: tf.shape(x[0])[0], count=max(len(examples), 1),
                          batch_size=config.batch_size, max_length=config.max_source_length,
                          seed=config.seed, training=training), len(examples)


def make_datasets(config, meta=None):
    """``Datasets`` of the config's pairs (see the module docstring)."""
    from pipelines.common.task import Datasets

    splits, notes = load_pairs(config)
    if meta is None:
        train = splits["train"]
        meta = {
            "level": config.level,
            "source_vocabulary": build_vocabulary([s for s, _ in train], config.level, config.vocab_size),
            "target_vocabulary": build_vocabulary([t for _, t in train], config.level, config.vocab_size),
            "source": config.source_file or config.data,
            "examples": [s for s, _ in (splits.get("test") or splits["valid"])[:3]],
        }
    made = {name: make_dataset(pairs, config, meta, training=name == "train")
            for name, pairs in splits.items()}
    dropped = {name: len(splits[name]) - n for name, (_, n) in made.items() if len(splits[name]) - n}
    if dropped:
        notes.append("left out (longer than max_source_length/max_target_length, or an empty "
                     f"source): {dropped}")
    return Datasets(train=made["train"][0], valid=made["valid"][0],
                    test=made["test"][0] if "test" in made else None, meta=meta,
                    sizes={name: n for name, (_, n) in made.items()}, notes=notes)


def read_split(config, meta, path):
    """``evaluate --data FILE``: every pair of a pairs file (or .zip)."""
    pairs, _ = read_pairs(path, config.on_error)
    if config.reverse:
        pairs = [(t, s) for s, t in pairs]
    return make_dataset(pairs, config, meta)[0]
