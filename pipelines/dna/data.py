"""DNA data: sequences -> base ids (A C G T N = 1..5, 0 padding) and targets.

per_base: an example is a window ``(bases (W,), tags (W,))`` of a labelled sequence (BIO
tags of CDS / tRNA / rRNA on either strand, ``sequences.TAGS``; -1 pads). Training
windows overlap (``window`` bases every ``stride``) and, with ``reverse_complement``, each
has its reverse complement beside it (tags mirrored, strands swapped); valid and test
windows tile their region without overlap, in order, so ``evaluate`` reads each region
back whole (per-base figures and gene spans).
per_sequence: an example is ``(bases (n,), label)``: a class id, or a value (regression
when every label is a number and there are more than 10 distinct ones).

Where sequences come from (``sequences.py`` reads them, with Biopython and gffutils):
* ``embedded`` (per_base): the C. diphtheriae chromosome in the pyrodigal wheel,
  labelled by pyrodigal's gene calls (predictions, not curated annotation);
* a GenBank file or a folder of them (CDS / tRNA / rRNA features), or a FASTA file with
  ``annotation`` (GFF3 or BED);
* per_sequence: a CSV ``sequence,label``, the UCI splice-junction layout (a header
  ``Class, Donor, Sequence``, EI / IE / N), or ``mavenn:mpsa`` / ``mavenn:sortseq``
  (``embedded``: mpsa), measured values in the mavenn wheel, with their own split.

Splits: per_base, one record: by position (the last ``test_fraction`` tests, the
``valid_fraction`` before it validates); several records: by record. per_sequence:
seeded, or the ``fold``-th of ``folds`` folds as the test split (cross-validation).
"""

import dataclasses
import os

import numpy as np

from pipelines.common.textio import DataError
from pipelines.dna import sequences

BASE_IDS = {c: i for i, c in enumerate("ACGTN", 1)}
_LOOKUP = np.full(256, 5, np.int32)
for _c, _i in BASE_IDS.items():
    _LOOKUP[ord(_c)] = _i
    _LOOKUP[ord(_c.lower())] = _i


def encode(sequence):
    """A cleaned sequence (str) -> (n,) int32 base ids."""
    return _LOOKUP[np.frombuffer(sequence.encode("ascii", "replace"), np.uint8)]


# ---------------------------------------------------------------------------- records


def read_records(config, path=None):
    """Labelled Records of the config's data (or of ``path``)."""
    path = path or config.data
    if path in ("embedded", "genome"):
        return [sequences.embedded_genome()]
    if config.annotation:
        return sequences.read_fasta_annotated(path, config.annotation, config.ambiguous,
                                              unannotated="skip")
    if os.path.isdir(path):
        files = sorted(os.path.join(root, name) for root, _, names in os.walk(path, followlinks=True)
                       for name in names if name.lower().endswith((".gb", ".gbk", ".genbank",
                                                                   ".gb.gz", ".gbk.gz")))
        if not files:
            raise DataError(path, "the folder holds no GenBank files (.gb, .gbk)")
        records = [r for f in files for r in sequences.read_genbank(f, config.ambiguous,
                                                                   unannotated="skip")]
    else:
        if not os.path.exists(path):
            raise DataError(path, "no such file")
        if path.lower().endswith((".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")):
            raise DataError(path, "a FASTA file needs its annotation: --annotation FILE.gff3|.bed")
        records = sequences.read_genbank(path, config.ambiguous, unannotated="skip")
    if not records:
        raise DataError(path, "no record has CDS/tRNA/rRNA features")
    return records


def regions(records, config):
    """{split: [(bases (n,) int32, tags (n,) int32)]} (module docstring)."""
    from pipelines.common import data as common

    if len(records) >= 3:
        cut = common.split_indices(len(records), config.seed, config.valid_fraction,
                                   config.test_fraction)
        return {name: [(encode(records[i].sequence), records[i].tags.astype(np.int32))
                       for i in idx] for name, idx in cut.items()}
    out = {"train": [], "valid": []}
    if config.test_fraction:
        out["test"] = []
    for record in records:
        bases, tags = encode(record.sequence), record.tags.astype(np.int32)
        n = len(bases)
        test_at = int(round(n * (1 - config.test_fraction)))
        valid_at = int(round(test_at - n * config.valid_fraction))
        if valid_at < config.window or test_at - valid_at < 1:
            raise DataError(record.name, f"{n} bases: too short to split into train, valid "
                            f"and test regions of windows of {config.window}")
        out["train"].append((bases[:valid_at], tags[:valid_at]))
        out["valid"].append((bases[valid_at:test_at], tags[valid_at:test_at]))
        if "test" in out:
            out["test"].append((bases[test_at:], tags[test_at:]))
    return out


def cut_windows(bases, tags, window, stride):
    """(windows (k, W) int32 zero-padded, their tags (k, W) int32 -1-padded): windows
    starting at 0, stride, ... covering the whole sequence (at least one)."""
    n = len(bases)
    starts = list(range(0, max(n - window, 0) + 1, stride))
    if starts[-1] + window < n:
        starts.append(starts[-1] + stride)
    x = np.zeros((len(starts), window), np.int32)
    y = np.full((len(starts), window), -1, np.int32)
    for k, s in enumerate(starts):
        piece = bases[s:s + window]
        x[k, :len(piece)] = piece
        y[k, :len(piece)] = tags[s:s + window]
    return x, y


def mirrored(x, y):
    """Reverse complements of windows (A<->T, C<->G, N, padding kept at the end) and
    their mirrored tags (``sequences.reverse_complement``'s convention)."""
    complement = np.array([0, 4, 3, 2, 1, 5], np.int32)
    xs, ys = [], []
    for bases, tags in zip(x, y):
        n = int((bases > 0).sum())
        rc = np.zeros_like(bases)
        rc[:n] = complement[bases[:n][::-1]]
        sequence = "".join("ACGTN"[b - 1] for b in bases[:n])
        _, rc_tags = sequences.reverse_complement(sequence, tags[:n].astype(np.int8))
        out = np.full_like(tags, -1)
        out[:n] = rc_tags
        xs.append(rc)
        ys.append(out)
    return np.array(xs, np.int32).reshape(x.shape), np.array(ys, np.int32).reshape(y.shape)


def window_dataset(parts, config, training=False):
    """(tf.data batches, windows) of regions ``parts``."""
    import tensorflow as tf

    stride = config.stride if training else config.window
    pieces = [cut_windows(b, t, config.window, stride) for b, t in parts]
    x = np.concatenate([p[0] for p in pieces]) if pieces else np.zeros((0, config.window), np.int32)
    y = np.concatenate([p[1] for p in pieces]) if pieces else np.zeros((0, config.window), np.int32)
    if training and config.max_examples:
        keep = np.sort(np.random.RandomState(config.seed).permutation(len(x))[:config.max_examples])
        x, y = x[keep], y[keep]
    elif not training and config.max_examples:
        x, y = x[:max(1, config.max_examples // 4)], y[:max(1, config.max_examples // 4)]
    if training and config.reverse_complement:
        rx, ry = mirrored(x, y)
        x, y = np.concatenate([x, rx]), np.concatenate([y, ry])
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if training:
        ds = ds.shuffle(len(x), seed=config.seed, reshuffle_each_iteration=True)
    return ds.batch(config.batch_size).prefetch(tf.data.AUTOTUNE), len(x)


# ------------------------------------------------------------------------ per sequence


def read_labelled(path, config):
    """(sequences, labels as strings, splits or None) of a CSV, the UCI splice layout,
    or ``mavenn:NAME`` (``sequences.MAVENN``: values, and mavenn's own split)."""
    if path in ("embedded", "mavenn"):
        path = "mavenn:mpsa"
    if path.startswith("mavenn:"):
        return sequences.read_mavenn(path.split(":", 1)[1], config.ambiguous)
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    with open(path, "rb") as f:
        head = f.readline().decode("utf-8", "replace")
    if [h.strip().lower() for h in head.split(",")][:1] == ["class"]:
        found, labels, _ = sequences.read_uci_splice(path, config.ambiguous)
    else:
        found, labels = sequences.read_labelled_csv(path, config.ambiguous)
    return found, [str(label).strip() for label in labels], None


def label_space(labels):
    """(classes or None, regression): regression when every label is a number and
    there are more than 10 distinct ones."""
    try:
        values = {float(v) for v in labels}
    except ValueError:
        return sorted(set(labels)), False
    if len(values) > 10:
        return None, True
    return sorted(set(labels)), False


def fixed_length(found, config):
    """The one length of every sequence for ``pooling="flatten"`` (else None)."""
    if config.pooling != "flatten":
        return None
    lengths = sorted({len(s) for s in found})
    if len(lengths) != 1 or not lengths[0]:
        raise DataError(config.data, f"pooling=flatten needs every sequence the same "
                        f"length; found lengths {lengths[0]} to {lengths[-1]} (--set pooling=mean_max "
                        f"reads any length)")
    return lengths[0]


def sequence_splits(found, labels, config, given=None):
    """{split: (sequences, labels)}: the ``fold``-th of ``folds`` seeded folds tests, or
    the data's own split (``given``: a split name per sequence), or a seeded split."""
    from pipelines.common import data as common

    n = len(found)
    if given is not None and config.fold < 0:
        given = np.array(given)
        idx = {k: np.flatnonzero(given == k) for k in ("train", "valid", "test")}
    elif config.fold >= 0:
        order = np.random.RandomState(config.seed).permutation(n)
        folds = np.array_split(order, config.folds)
        test = folds[config.fold]
        rest = np.concatenate([f for k, f in enumerate(folds) if k != config.fold])
        cut = common.split_indices(len(rest), config.seed, config.valid_fraction)
        idx = {"train": rest[cut["train"]], "valid": rest[cut["valid"]], "test": test}
    else:
        idx = common.split_indices(n, config.seed, config.valid_fraction, config.test_fraction)
    if config.max_examples:
        idx = {k: v[:max(1, config.max_examples * len(v) // n)] for k, v in idx.items()}
    return {k: ([found[i] for i in v], [labels[i] for i in v]) for k, v in idx.items()}


def sequence_dataset(found, labels, meta, config, training=False):
    import tensorflow as tf

    from pipelines.common import data as common

    if meta["regression"]:
        y = np.array([float(v) for v in labels], np.float32)
    else:
        index = {c: i for i, c in enumerate(meta["classes"])}
        y = np.array([index.get(v, -1) for v in labels], np.int32)
        if (y < 0).any():
            unknown = sorted({v for v in labels if v not in index})
            raise DataError(config.data, f"labels {unknown[:5]} were not in training "
                            f"(classes {meta['classes']})")
    encoded = [encode(s) for s in found]
    length = meta.get("length")
    for i, b in enumerate(encoded):
        if length and len(b) != length:
            raise DataError(config.data, f"sequence {i + 1} has {len(b)} bases; this model "
                            f"reads sequences of {length} (pooling=flatten)")
    ds = tf.data.Dataset.from_generator(
        lambda: ((b, t) for b, t in zip(encoded, y)),
        output_signature=(tf.TensorSpec((None,), tf.int32),
                          tf.TensorSpec((), tf.float32 if meta["regression"] else tf.int32)))
    longest = max((len(b) for b in encoded), default=1)
    return common.batches(ds, lambda b, t: tf.shape(b)[0], count=max(len(encoded), 1),
                          batch_size=config.batch_size, max_length=longest + 1,
                          seed=config.seed, training=training), len(encoded)


# ---------------------------------------------------------------------------- datasets


def make_datasets(config, meta=None):
    """``Datasets`` of the config's data (module docstring)."""
    from pipelines.common.task import Datasets

    if config.task == "per_sequence":
        if not config.data:
            raise DataError("--data", "per_sequence needs data: a CSV sequence,label, the "
                            "UCI splice layout (--data FILE), or mavenn:mpsa|sortseq")
        found, labels, given = read_labelled(config.data, config)
        splits = sequence_splits(found, labels, config, given)
        if meta is None:
            classes, regression = label_space(splits["train"][1])
            meta = {"task": "per_sequence", "classes": classes, "regression": regression,
                    "source": config.data, "examples": splits["test"][0][:3],
                    "length": fixed_length(found, config)}
        made = {k: sequence_dataset(s, y, meta, config, training=k == "train")
                for k, (s, y) in splits.items()}
    else:
        parts = regions(read_records(config), config)
        if meta is None:
            meta = {"task": "per_base", "tags": list(sequences.TAGS), "source": config.data,
                    "examples": ["".join("ACGTN"[b - 1] for b in parts["valid"][0][0][:300])]}
        made = {k: window_dataset(p, config, training=k == "train") for k, p in parts.items()}
    return Datasets(train=made["train"][0], valid=made["valid"][0],
                    test=made["test"][0] if "test" in made else None, meta=meta,
                    sizes={k: n for k, (_, n) in made.items()})


def read_split(config, meta, path):
    """``evaluate --data FILE``: every sequence (per_sequence) or every record as one
    region (per_base) of a file."""
    if meta["task"] == "per_sequence":
        found, labels, _ = read_labelled(path, config)
        return sequence_dataset(found, labels, meta, dataclasses.replace(config, data=path))[0]
    records = read_records(config, path)
    return window_dataset([(encode(r.sequence), r.tags.astype(np.int32)) for r in records],
                          config)[0]
