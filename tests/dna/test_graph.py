"""pipelines.dna.graph: base encoding, windows and stitching, batched tagging, spans (graph
== NumPy == a plain loop), span and per-base metrics (scikit-learn as the oracle), and a
SavedModel serving signature that takes any string."""

import numpy as np
import pytest
import tensorflow as tf
from hypothesis import given, settings, strategies as st
from sklearn import metrics as skm

import keras
from pipelines.dna import graph

K = len(graph.TAGS)
FEW = settings(max_examples=40, deadline=None)


def loop_spans(tags):
    """Reference: the span rule read literally, one base at a time."""
    spans, current = [], None  # current = [start, end, class]
    for j, t in enumerate(tags):
        t = int(t)
        if not 1 <= t < K:
            current = None
            continue
        name = graph.TAGS[t]
        prefix, cls = name[0], name[2:]
        if prefix == "I" and current is not None and current[2] == cls and current[1] == j:
            current[1] = j + 1
        else:
            current = [j, j + 1, cls]
            spans.append(current)
    return [(s, e, c[-1], c[:-1]) for s, e, c in spans]


RADIUS = 5  # conv_model's output at a base sees the ids 4 + 1 bases either side


def conv_model(seed, sizes=(9, 3)):
    """A translation-equivariant float64 model: one-hot bases, SAME convolutions of these
    kernel sizes, a ReLU between, every layer zero at padding ids (as its own edge
    padding); its output at a base sees sum(size // 2) ids either side."""
    rng = np.random.default_rng(seed)
    kernels, channels = [], 5
    for i, size in enumerate(sizes):
        out = K if i == len(sizes) - 1 else 8
        kernels.append(tf.constant(rng.normal(size=(size, channels, out))))
        channels = out

    def predict(ids):
        x = tf.one_hot(ids, 6, dtype=tf.float64)[..., 1:]  # (b, W, 5), padding -> 0
        mask = tf.cast(ids > 0, tf.float64)[..., None]  # (b, W, 1)
        for i, kernel in enumerate(kernels):
            x = tf.nn.conv1d(x, kernel, 1, "SAME") * mask
            x = tf.nn.relu(x) if i < len(kernels) - 1 else x
        return x  # (b, W, K)

    return predict


def test_conv_model_sees_radius_bases():
    ids = np.full((1, 41), 1, np.int32)
    changed = ids.copy()
    changed[0, 20] = 3
    predict = conv_model(0)
    differs = np.any(predict(ids)[0].numpy() != predict(changed)[0].numpy(), axis=-1)
    assert differs.tolist() == [abs(j - 20) <= RADIUS for j in range(41)]
    assert predict(ids).shape == (1, 41, K)


# ------------------------------------------------------------------------------- bases


def test_encode_bases_every_byte():
    expected = {ord(c): i for c, i in zip("ACGTacgt", [1, 2, 3, 4] * 2)}
    ids = graph.encode_bases(tf.constant([bytes(range(256)), b"", "é".encode()])).to_list()
    assert ids[0] == [expected.get(b, 5) for b in range(256)]
    assert ids[1] == [] and ids[2] == [5, 5]  # one id per byte
    assert graph.encode_bases(tf.constant("acgtNRY")).numpy().tolist() == [1, 2, 3, 4, 5, 5, 5]
    assert graph.encode_bases(tf.constant([], tf.string)).shape[0] == 0


# ----------------------------------------------------------------------------- windows


@FEW
@given(st.integers(0, 200), st.integers(1, 40), st.data())
def test_windows_cover_and_stitch_most_central(n, window, data):
    stride = data.draw(st.integers(1, window))
    ids = np.arange(1, n + 1, dtype=np.int32)
    wins, starts = graph.windows(ids, window, stride)
    wins, starts = wins.numpy(), starts.numpy()
    assert len(starts) >= 1 and starts.tolist() == list(range(0, len(starts) * stride, stride))
    assert starts[-1] + window >= n and (len(starts) == 1 or starts[-2] + window < n)
    for w, s in zip(wins, starts):
        piece = ids[s:s + window]
        assert w.tolist() == piece.tolist() + [0] * (window - len(piece))
    # each base from the covering window whose centre is nearest (ties: earlier)
    scores = np.stack(np.meshgrid(np.arange(len(starts)), np.arange(window), indexing="ij"), -1)
    got = graph.stitch(scores, starts, n, window, stride).numpy()  # (n, 2) [window, pos]
    for j in range(n):
        covering = [i for i, s in enumerate(starts) if s <= j < s + window]
        best = min(covering, key=lambda i: (abs(j - starts[i] - (window - 1) / 2), i))
        assert got[j].tolist() == [best, j - starts[best]]


def test_stitch_with_stride_equal_window_concatenates():
    scores = np.random.default_rng(0).normal(size=(4, 16, K)).astype(np.float32)
    for n in (49, 64):
        got = graph.stitch(scores, np.arange(4) * 16, n, 16, 16).numpy()
        np.testing.assert_array_equal(got, scores.reshape(-1, K)[:n])


@pytest.mark.parametrize("n", [0, 1, 31, 32, 33, 200, 517])
def test_stitch_equals_whole_sequence_for_equivariant_model(n):
    window, stride = 32, 20  # context kept: (32 - 1 - 20) // 2 = 5 >= RADIUS
    predict = conv_model(n)
    ids = np.random.default_rng(n).integers(1, 6, n).astype(np.int32)
    wins, starts = graph.windows(ids, window, stride)
    got = graph.stitch(predict(wins), starts, n, window, stride).numpy()
    np.testing.assert_allclose(got, predict(ids[None])[0].numpy(), rtol=1e-9, atol=1e-9)


def test_bad_window_or_stride():
    with pytest.raises(ValueError, match="stride"):
        graph.windows(tf.zeros([3], tf.int32), 8, 9)
    with pytest.raises(ValueError, match="window"):
        graph.tag_sequences(tf.constant(["A"]), conv_model(0), 0, 1)


# ------------------------------------------------------------------------ tag_sequences


def test_tag_sequences_batch_equals_whole_sequences_in_any_chunking():
    rng = np.random.default_rng(1)
    lengths = [0, 1, 31, 32, 33, 300, 5, 1000]
    texts = ["".join(rng.choice(list("ACGTacgtN"), n)) for n in lengths]
    predict = conv_model(7)
    whole = [np.argmax(predict(graph.encode_bases(tf.constant(t))[None])[0], -1) for t in texts]
    for max_bases in (1, 32 * 3, 2 ** 16):
        out = graph.tag_sequences(tf.constant(texts), predict, 32, 20, max_bases_per_call=max_bases)
        assert out["length"].numpy().tolist() == lengths
        tags = out["tags"].numpy()
        assert tags.shape == (len(texts), max(lengths)) and tags.dtype == np.int32
        for row, n, expected in zip(tags, lengths, whole):
            assert row[:n].tolist() == expected.tolist() and (row[n:] == -1).all()


def test_tag_sequences_decode_fn_and_call_sizes():
    calls = []

    def predict(ids):
        calls.append(ids.shape)
        return tf.one_hot(ids, K)

    out = graph.tag_sequences(tf.constant(["ACGTN" * 30, "GG"]), predict, 16, 12,
                              max_bases_per_call=40, decode_fn=lambda s: 12 - tf.argmax(s, -1))
    assert all(shape[0] <= 2 and shape[1] == 16 for shape in calls)  # 40 // 16 windows a call
    assert out["tags"].numpy()[1, :3].tolist() == [9, 9, -1]
    assert out["tags"].numpy()[0, :5].tolist() == [11, 10, 9, 8, 7]


def test_serving_signature_saved_and_reloaded_takes_any_string(tmp_path):
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((None,), dtype="int32"), keras.layers.Embedding(6, 4),
                              keras.layers.Dense(K, activation="softmax")])
    module = tf.Module()
    module.model = model
    module.serve = tf.function(
        lambda texts: graph.tag_sequences(texts, model, 64, 48, max_bases_per_call=1024),
        input_signature=[tf.TensorSpec([None], tf.string)])
    tf.saved_model.save(module, str(tmp_path / "m"))
    served = tf.saved_model.load(str(tmp_path / "m"))
    rng = np.random.default_rng(2)
    texts = [b"", b"A", b"acgtnNRY", bytes(range(256)), bytes(rng.choice(list(b"ACGT"), 5000).astype(np.uint8))]
    out = served.serve(tf.constant(texts))
    lengths = [0, 1, 8, 256, 5000]
    assert out["length"].numpy().tolist() == lengths
    tags = out["tags"].numpy()
    assert tags.shape == (5, 5000)
    for row, n in zip(tags, lengths):
        assert ((row[:n] >= 0) & (row[:n] < K)).all() and (row[n:] == -1).all()
    np.testing.assert_array_equal(tags, module.serve(tf.constant(texts))["tags"].numpy())
    empty = served.serve(tf.constant([], tf.string))
    assert empty["tags"].shape == (0, 0) and empty["length"].shape == (0,)


# ------------------------------------------------------------------------------- spans


tag_rows = st.lists(st.lists(st.integers(-1, K), max_size=40), min_size=1, max_size=4)


@FEW
@given(tag_rows, st.data())
def test_spans_graph_equals_numpy_equals_loop(rows, data):
    n = max(len(r) for r in rows)
    lengths = [data.draw(st.integers(0, len(r))) for r in rows]
    # past `length`: padding or garbage, both ignored
    tags = np.array([r + [data.draw(st.integers(-1, K))] * (n - len(r)) for r in rows], np.int32)
    out = graph.spans_from_tags(tags, lengths)
    out = {k: v.numpy() for k, v in out.items()}
    for b, length in enumerate(lengths):
        expected = loop_spans(tags[b, :length])
        assert graph.spans_from_tags_np(tags[b, :length]) == expected
        m = out["num_spans"][b]
        assert m == len(expected)
        got = list(zip(out["span_start"][b, :m].tolist(), out["span_end"][b, :m].tolist(),
                       [s.decode() for s in out["span_strand"][b, :m]],
                       [t.decode() for t in out["span_type"][b, :m]]))
        assert got == expected
        assert (out["span_start"][b, m:] == -1).all() and (out["span_type"][b, m:] == b"").all()


def test_spans_rule_examples():
    # B-CDS+ I-CDS+ I-CDS+ O I-CDS- B-CDS- I-CDS- I-CDS+ B-tRNA+ B-tRNA+
    tags = [1, 2, 2, 0, 4, 3, 4, 2, 5, 5]
    assert graph.spans_from_tags_np(tags) == [
        (0, 3, "+", "CDS"), (4, 5, "-", "CDS"), (5, 7, "-", "CDS"), (7, 8, "+", "CDS"),
        (8, 9, "+", "tRNA"), (9, 10, "+", "tRNA")]
    out = graph.spans_from_tags(tf.zeros([0, 0], tf.int32), tf.zeros([0], tf.int32))
    assert out["span_start"].shape == (0, 0) and out["num_spans"].shape == (0,)
    out = graph.spans_from_tags(tf.zeros([2, 0], tf.int32), [0, 0])
    assert out["num_spans"].numpy().tolist() == [0, 0]


# ----------------------------------------------------------------------------- metrics


def test_span_metrics_example():
    true = [[(0, 10, "+", "CDS"), (20, 30, "-", "CDS"), (40, 50, "+", "tRNA")], []]
    pred = [[(0, 10, "+", "CDS"), (25, 26, "-", "CDS"), (45, 60, "-", "tRNA")], [(1, 2, "+", "rRNA")]]
    m = graph.span_metrics(true, pred)
    assert (m["exact"], m["true"], m["pred"], m["found"]) == (1, 3, 4, 2)
    assert m["precision"] == 0.25 and m["recall"] == pytest.approx(1 / 3)
    assert m["f1"] == pytest.approx(2 * 0.25 / 3 / (0.25 + 1 / 3))
    assert m["overlap_recall"] == pytest.approx(2 / 3)
    assert m["per_type"]["tRNA"] == {"true": 1, "pred": 1, "exact": 0, "found": 0}
    assert m["per_type"]["rRNA"] == {"true": 0, "pred": 1, "exact": 0, "found": 0}
    assert graph.span_metrics([[]], [[]])["f1"] == 0.0


span = st.tuples(st.integers(0, 30), st.integers(1, 8), st.sampled_from(graph.STRANDS),
                 st.sampled_from(graph.TYPES)).map(lambda s: (s[0], s[0] + s[1], s[2], s[3]))


@FEW
@given(st.lists(st.tuples(st.lists(span, max_size=6), st.lists(span, max_size=6)), max_size=3))
def test_span_metrics_overlap_recall_brute_force(pairs):
    true, pred = [t for t, _ in pairs], [p for _, p in pairs]
    m = graph.span_metrics(true, pred)
    found = sum(any(ps == ts and pt == tt and max(s, ps_) < min(e, pe)
                    for ps_, pe, ps, pt in p) for t, p in zip(true, pred) for s, e, ts, tt in t)
    exact = sum(sum(min(t.count(x), p.count(x)) for x in set(t)) for t, p in zip(true, pred))
    assert m["found"] == found and m["exact"] == exact
    assert m["true"] == sum(map(len, true)) and m["pred"] == sum(map(len, pred))


@FEW
@given(st.integers(0, 2 ** 32 - 1), st.integers(1, 60), st.integers(1, K))
def test_per_base_report_matches_sklearn(seed, n, classes):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, classes, (3, n))
    pred = np.where(rng.random((3, n)) < 0.5, true, rng.integers(0, K, (3, n)))
    true[0, n // 2:] = -1  # padding: left out
    report = graph.per_base_report(true, pred)
    keep = true >= 0
    t, p = true[keep], pred[keep]
    assert report["accuracy"] == pytest.approx(skm.accuracy_score(t, p))
    f1 = skm.f1_score(t, p, labels=range(K), average=None, zero_division=0)
    assert [report["per_class_f1"][tag] for tag in graph.TAGS] == pytest.approx(f1.tolist())
    assert report["macro_f1"] == pytest.approx(skm.f1_score(t, p, average="macro", zero_division=0))
    as_list = graph.per_base_report([r[k] for r, k in zip(true, keep)], [r[k] for r, k in zip(pred, keep)])
    assert as_list["accuracy"] == pytest.approx(report["accuracy"])
    assert as_list["macro_f1"] == pytest.approx(report["macro_f1"])
    assert as_list["per_class_f1"] == pytest.approx(report["per_class_f1"])
