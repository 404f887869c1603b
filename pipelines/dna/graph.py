"""DNA tagging in the graph: request strings -> base ids -> windows -> per-base tags -> spans.

Pure TensorFlow ops (no py_function, no NumPy) for the serving signature, plus the NumPy
and Python scores the metrics use. No string makes the graph functions raise: empty,
one base, a megabase, garbage or non-ASCII bytes all give valid outputs.

Bases: one id per *byte* of the request string, A=1 C=2 G=3 T=4 (either case), every
other byte (N, IUPAC codes, punctuation, each byte of a UTF-8 character) N=5; 0 is
padding. Tags (``TAGS``): BIO over gene type x strand; B marks a feature's lowest
coordinate whatever its strand. Tag t >= 1 has class c = (t - 1) // 2 (type
``TYPES[c // 2]``, strand ``STRANDS[c % 2]``) and is a B tag when (t - 1) is even.

Windows and stitching (``windows``, ``stitch``, ``tag_sequences``): a sequence of n bases
is cut into num_windows = 1 + max(0, ceil((n - W) / S)) windows of W bases starting at
0, S, 2S... (the last one zero-padded), so every base is covered (S <= W). Base j takes
its scores from the window where it is most central: the window i minimising
|j - (i S + (W - 1) / 2)|, ties to the earlier window, i.e.

    i(j) = clip(ceil((2 j - W + 1 - S) / (2 S)), 0, num_windows - 1)

which always covers j. Every base keeps at least floor((W - 1 - S) / 2) bases of window
context on both sides (or the sequence's start / its zero padding), so a
translation-equivariant model whose output at a base depends only on the ids within that
radius gives the same scores as on the whole sequence, provided it treats padding ids
like its own edge padding (e.g. convolutions masked at padding; otherwise only the last
radius bases can differ). With S == W this is plain concatenation. Because a base's scores
come from one window, stitching scores then taking argmax equals taking argmax (or any
per-window decode, e.g. CRF Viterbi) per window then stitching tags, which is what
``tag_sequences`` does to keep only (windows, W) int32 tags in memory.

Spans: a span begins at B-X, or at I-X not preceded by B-X / I-X of the same X, and
continues over I-X; ``start`` is 0-based inclusive, ``end`` exclusive. Tag values outside
1..len(TAGS)-1 (padding -1, garbage) and positions past ``length`` count as O.
"""

import bisect
import collections

import numpy as np
import tensorflow as tf

TAGS = ("O", "B-CDS+", "I-CDS+", "B-CDS-", "I-CDS-", "B-tRNA+", "I-tRNA+", "B-tRNA-",
        "I-tRNA-", "B-rRNA+", "I-rRNA+", "B-rRNA-", "I-rRNA-")
TYPES = ("CDS", "tRNA", "rRNA")
STRANDS = ("+", "-")
PAD, N = 0, 5
DEFAULT_MAX_BASES_PER_CALL = 2 ** 16  # 128 windows of 512 bases per predict_fn call


def _base_table():
    """(256,) int32: byte -> base id."""
    table = np.full(256, N, np.int32)
    for base, i in zip(b"ACGT", range(1, 5)):
        table[base] = table[base + 32] = i  # upper and lower case
    return table


_BASE_TABLE = _base_table()


# ------------------------------------------------------------------------------- bases


def encode_bases(texts):
    """Strings -> base ids (see the module docstring), one per byte.

    Args:
        texts: (batch,) string; a scalar string is also accepted.
    Returns:
        (batch, None) int32 ragged ids in 1..5 (row b has len(texts[b]) bytes), or
        (n,) int32 for a scalar.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    table = tf.constant(_BASE_TABLE)
    if texts.shape.rank == 0:
        return tf.gather(table, tf.cast(tf.io.decode_raw(texts, tf.uint8), tf.int32))
    lengths = tf.strings.length(texts)  # (batch,) bytes
    joined = tf.strings.reduce_join(texts)  # one string: no padding to the longest row
    values = tf.gather(table, tf.cast(tf.io.decode_raw(joined, tf.uint8), tf.int32))
    return tf.RaggedTensor.from_row_lengths(values, tf.cast(lengths, tf.int64), validate=False)


# ----------------------------------------------------------------------------- windows


def _check_window(window, stride):
    if not isinstance(window, int) or window < 1:
        raise ValueError(f"Expected window >= 1. Received: window={window!r}")
    if not isinstance(stride, int) or not 1 <= stride <= window:
        raise ValueError(f"Expected 1 <= stride <= window ({window}). Received: stride={stride!r}")


def _num_windows(n, window, stride):
    """int32 windows for n bases: 1 + max(0, ceil((n - W) / S))."""
    return 1 + tf.maximum(0, -((window - n) // stride))


def _owner(j, num_windows, window, stride):
    """The window where base j is most central (module docstring), int32 like j."""
    i = -((window - 1 + stride - 2 * j) // (2 * stride))  # ceil((2j - W + 1 - S) / 2S)
    return tf.clip_by_value(i, 0, num_windows - 1)


def windows(ids, window, stride):
    """One sequence -> zero-padded windows covering it.

    Args:
        ids: (n,) int32 base ids.
        window, stride: W >= 1 and 1 <= S <= W (Python ints).
    Returns:
        (num_windows, W) int32 windows, window i = ids[i S : i S + W] zero-padded, and
        (num_windows,) int32 starts i S; num_windows = 1 + max(0, ceil((n - W) / S)).
    """
    _check_window(window, stride)
    ids = tf.convert_to_tensor(ids, tf.int32)
    num = _num_windows(tf.size(ids), window, stride)
    starts = tf.range(num) * stride
    padded = tf.pad(ids, [[0, (num - 1) * stride + window - tf.size(ids)]])
    return tf.signal.frame(padded, window, stride), starts  # (num, W)


def stitch(window_scores, starts, n, window, stride):
    """Windows' per-base values -> the sequence's, each base from its most central window.

    Args:
        window_scores: (num_windows, W, ...) values (scores, or decoded tags).
        starts: (num_windows,) int32 window starts (from ``windows``).
        n: scalar int, the sequence length.
        window, stride: as given to ``windows``.
    Returns:
        (n, ...) values: out[j] = window_scores[i(j), j - starts[i(j)]].
    """
    _check_window(window, stride)
    window_scores = tf.convert_to_tensor(window_scores)
    starts = tf.convert_to_tensor(starts, tf.int32)
    j = tf.range(tf.cast(n, tf.int32))
    i = _owner(j, tf.size(starts), window, stride)
    return tf.gather_nd(window_scores, tf.stack([i, j - tf.gather(starts, i)], axis=1))


def _argmax(scores):
    return tf.argmax(scores, axis=-1, output_type=tf.int32)


def tag_sequences(texts, predict_fn, window, stride,
                  max_bases_per_call=DEFAULT_MAX_BASES_PER_CALL, decode_fn=None):
    """Request strings -> per-base tags, every window of the batch through ``predict_fn``.

    The windows of all sequences are run in chunks of max(1, max_bases_per_call // W)
    windows per call (a tf.while_loop, one chunk at a time), each chunk decoded to tags
    at once, then every base takes the tag of its most central window.

    Args:
        texts: (batch,) string.
        predict_fn: (c, W) int32 ids -> (c, W, K) per-base scores (e.g. a Keras model).
        window, stride: W and S, 1 <= S <= W.
        max_bases_per_call: bounds c * W per call (memory).
        decode_fn: (c, W, K) scores -> (c, W) int32 tags; default argmax over K.
    Returns:
        {"tags": (batch, n_max) int32, -1 past each length;
         "length": (batch,) int32 bases per sequence}.
    """
    _check_window(window, stride)
    if not isinstance(max_bases_per_call, int) or max_bases_per_call < 1:
        raise ValueError("Expected max_bases_per_call >= 1. "
                         f"Received: max_bases_per_call={max_bases_per_call!r}")
    decode_fn = decode_fn or _argmax
    chunk = max(1, max_bases_per_call // window)  # windows per call

    ids = encode_bases(texts)  # (batch, None)
    values = ids.flat_values  # (total,)
    total = tf.size(values)
    lengths = tf.cast(ids.row_lengths(), tf.int32)  # (batch,)
    base_offsets = tf.cast(ids.row_starts(), tf.int32)  # (batch,)
    values = tf.concat([values, [PAD]], axis=0)  # index `total` reads padding
    num = _num_windows(lengths, window, stride)  # (batch,) windows per sequence
    window_offsets = tf.cumsum(num, exclusive=True)  # (batch,) first window of each
    num_total = tf.reduce_sum(num)
    window_seq = tf.repeat(tf.range(tf.size(num)), num)  # (num_total,) sequence of each window
    num_chunks = -(-num_total // chunk)

    def run_chunk(c, out):
        k = tf.range(c * chunk, tf.minimum((c + 1) * chunk, num_total))  # (c,) window ids
        b = tf.gather(window_seq, k)
        start = (k - tf.gather(window_offsets, b)) * stride  # (c,) in its sequence
        pos = start[:, None] + tf.range(window)[None, :]  # (c, W)
        inside = pos < tf.gather(lengths, b)[:, None]
        flat = tf.where(inside, tf.gather(base_offsets, b)[:, None] + pos, total)
        tags = tf.cast(decode_fn(predict_fn(tf.gather(values, flat))), tf.int32)  # (c, W)
        return c + 1, out.write(c, tf.reshape(tags, [-1, window]))

    out = tf.TensorArray(tf.int32, size=num_chunks, infer_shape=False,
                         element_shape=tf.TensorShape([None, window]))
    _, out = tf.while_loop(lambda c, out: c < num_chunks, run_chunk, (0, out),
                           parallel_iterations=1)
    window_tags = tf.reshape(out.concat(), [-1])  # (num_total * W,)

    seq = tf.cast(ids.value_rowids(), tf.int32)  # (total,) sequence of each base
    j = tf.range(total) - tf.gather(base_offsets, seq)  # position in its sequence
    i = _owner(j, tf.gather(num, seq), window, stride)  # its window in the sequence
    tags = tf.gather(window_tags, (tf.gather(window_offsets, seq) + i) * window + j - i * stride)
    tags = tf.RaggedTensor.from_row_lengths(tags, ids.row_lengths(), validate=False)
    return {"tags": tags.to_tensor(default_value=-1), "length": lengths}


# ------------------------------------------------------------------------------- spans


def spans_from_tags(tags, length):
    """Per-base tags -> spans (module docstring), boundary masks and tf.where only.

    Args:
        tags: (batch, n) int tags; length: (batch,) int bases per row.
    Returns:
        {"span_start": (batch, S) int32 inclusive, "span_end": (batch, S) int32
         exclusive, "span_strand": (batch, S) string "+"/"-", "span_type": (batch, S)
         string "CDS"/"tRNA"/"rRNA", "num_spans": (batch,) int32}; S = the most spans in
        a row, padding -1 / "".
    """
    tags = tf.cast(tf.convert_to_tensor(tags), tf.int32)
    length = tf.cast(tf.convert_to_tensor(length), tf.int32)
    batch = tf.shape(tags)[0]
    pos = tf.range(tf.shape(tags)[1])[None, :]
    valid = (tags >= 1) & (tags < len(TAGS)) & (pos < length[:, None])
    cls = tf.where(valid, (tags - 1) // 2, -1)  # (batch, n) class, -1 for O
    is_b = valid & tf.equal((tags - 1) % 2, 0)
    padded = tf.pad(cls, [[0, 0], [1, 1]], constant_values=-1)  # (batch, n + 2)
    before, after = padded[:, :-2], padded[:, 2:]  # the neighbours' classes
    b_after = tf.pad(is_b[:, 1:], [[0, 0], [0, 1]])
    inside = cls >= 0
    first = tf.where(inside & (is_b | tf.not_equal(cls, before)))  # (m, 2) int64 [row, pos]
    last = tf.where(inside & (b_after | tf.not_equal(cls, after)))  # (m, 2), same order
    span_cls = tf.gather_nd(cls, first)  # (m,)
    rows = first[:, 0]
    nrows = tf.cast(batch, tf.int64)

    def pad(v, default):
        ragged = tf.RaggedTensor.from_value_rowids(v, rows, nrows=nrows, validate=False)
        return ragged.to_tensor(default_value=default)

    return {"span_start": pad(tf.cast(first[:, 1], tf.int32), -1),
            "span_end": pad(tf.cast(last[:, 1], tf.int32) + 1, -1),
            "span_strand": pad(tf.gather(tf.constant(STRANDS), span_cls % 2), ""),
            "span_type": pad(tf.gather(tf.constant(TYPES), span_cls // 2), ""),
            "num_spans": tf.math.bincount(tf.cast(rows, tf.int32), minlength=batch,
                                          maxlength=batch, dtype=tf.int32)}


def spans_from_tags_np(tags):
    """(n,) int tags of one sequence -> [(start, end, strand, type)], as ``spans_from_tags``."""
    tags = np.asarray(tags, np.int64).reshape(-1)
    valid = (tags >= 1) & (tags < len(TAGS))
    cls = np.where(valid, (tags - 1) // 2, -1)
    is_b = valid & ((tags - 1) % 2 == 0)
    padded = np.pad(cls, 1, constant_values=-1)
    before, after = padded[:-2], padded[2:]
    b_after = np.pad(is_b[1:], (0, 1))
    first = np.flatnonzero((cls >= 0) & (is_b | (cls != before)))
    last = np.flatnonzero((cls >= 0) & (b_after | (cls != after)))
    return [(int(s), int(e) + 1, STRANDS[cls[s] % 2], TYPES[cls[s] // 2])
            for s, e in zip(first, last)]


# ----------------------------------------------------------------------------- metrics


_COUNTS = ("true", "pred", "exact", "found")


def _ratio(a, b):
    return a / b if b else 0.0


def span_metrics(true_spans, pred_spans):
    """Span scores over a corpus.

    Args:
        true_spans, pred_spans: one list of (start, end, strand, type) per sequence.
    Returns:
        {"precision", "recall", "f1": exact match (start, end, strand and type equal),
         "overlap_recall": share of true spans overlapped by >= 1 base by a predicted
         span of the same strand and type, "true", "pred", "exact", "found": counts,
         "per_type": {type: {"true", "pred", "exact", "found"}}}.
    """
    if len(true_spans) != len(pred_spans):
        raise ValueError("Expected as many predicted as true sequences. Received: "
                         f"{len(true_spans)} true, {len(pred_spans)} predicted")
    per_type = collections.defaultdict(lambda: dict.fromkeys(_COUNTS, 0))
    for kind in TYPES:  # always reported, other types when they occur
        per_type[kind]
    for true, pred in zip(true_spans, pred_spans):
        true = [tuple(s) for s in true]
        pred = [tuple(s) for s in pred]
        exact = collections.Counter(true) & collections.Counter(pred)
        groups = collections.defaultdict(list)  # (strand, type) -> [(start, end)] predicted
        for start, end, strand, kind in pred:
            per_type[kind]["pred"] += 1
            groups[strand, kind].append((start, end))
        reach = {}  # (strand, type) -> (sorted starts, running max of ends)
        for key, spans in groups.items():
            spans.sort()
            reach[key] = ([s for s, _ in spans], np.maximum.accumulate([e for _, e in spans]))
        for start, end, strand, kind in true:
            counts = per_type[kind]
            counts["true"] += 1
            starts, max_end = reach.get((strand, kind), ((), ()))
            k = bisect.bisect_left(starts, end)  # predicted spans starting before `end`
            counts["found"] += int(k > 0 and max_end[k - 1] > start)
        for (_, _, _, kind), count in exact.items():
            per_type[kind]["exact"] += count
    totals = {key: sum(c[key] for c in per_type.values()) for key in _COUNTS}
    precision, recall = _ratio(totals["exact"], totals["pred"]), _ratio(totals["exact"], totals["true"])
    return {"precision": precision, "recall": recall,
            "f1": _ratio(2 * precision * recall, precision + recall),
            "overlap_recall": _ratio(totals["found"], totals["true"]), **totals,
            "per_type": dict(per_type)}


def _flat(tags):
    """An array or a list of 1-D arrays -> (total,) int64."""
    if isinstance(tags, (list, tuple)):
        return np.concatenate([np.asarray(r, np.int64).reshape(-1) for r in tags] or [np.zeros(0, np.int64)])
    return np.asarray(tags, np.int64).reshape(-1)


def per_base_report(true_tags, pred_tags):
    """Per-base scores, positions where the true tag is < 0 (padding) left out.

    Args:
        true_tags, pred_tags: int arrays of equal shape, or lists of equal-length 1-D
        arrays (one per sequence).
    Returns:
        {"accuracy", "per_class_f1": {tag: F1} for every tag in TAGS (0 for a tag absent
         from both), "macro_f1": mean F1 over the tags present in true or predicted}, as
        sklearn.metrics f1_score(average=None / "macro", zero_division=0).
    """
    true, pred = _flat(true_tags), _flat(pred_tags)
    if true.shape != pred.shape:
        raise ValueError(f"Expected tags of equal size. Received: {true.size} true, {pred.size} predicted")
    keep = true >= 0
    true, pred = true[keep], pred[keep]
    per_class, present = {}, []
    for t, name in enumerate(TAGS):
        tp = np.sum((true == t) & (pred == t))
        support = np.sum(true == t) + np.sum(pred == t)  # 2 tp + fp + fn
        per_class[name] = _ratio(2.0 * tp, support)
        if support:
            present.append(per_class[name])
    # predicted ids outside TAGS are errors (and a class sklearn would count in macro)
    present += [0.0] * np.unique(pred[(pred < 0) | (pred >= len(TAGS))]).size
    return {"accuracy": float(np.mean(true == pred)) if true.size else 0.0,
            "per_class_f1": {k: float(v) for k, v in per_class.items()},
            "macro_f1": float(np.mean(present)) if present else 0.0}
