"""DNA data chain: windows that cover a region, reverse complements with mirrored tags,
splits by position and by record, per-sequence CSV / UCI layouts and folds, bad input
as one error line; the model's outputs through the export for long and odd inputs."""

import dataclasses

import numpy as np
import pytest

from pipelines.common.cli import main
from pipelines.dna import TASK, data, graph, sequences
from pipelines.dna.config import PRESETS

SMALL = PRESETS["small"]


def test_windows_cover_the_region_and_reverse_complements_mirror_the_tags():
    rng = np.random.RandomState(0)
    seq = "".join(rng.choice(list("ACGT"), 150))
    features = [sequences.Feature(10, 40, "+", "CDS"), sequences.Feature(60, 100, "-", "CDS"),
                sequences.Feature(120, 130, "+", "tRNA")]
    tags = sequences.tags_from_features(150, features).astype(np.int32)
    x, y = data.cut_windows(data.encode(seq), tags, 64, 48)
    assert x.shape == (3, 64) and [int((r > 0).sum()) for r in x] == [64, 64, 54]
    covered = np.concatenate([x[0], x[1][16:], x[2][16:54]])
    assert "".join("ACGTN"[b - 1] for b in covered) == seq
    rx, ry = data.mirrored(x, y)
    for bases, t, rbases, rt in zip(x, y, rx, ry):
        n = int((bases > 0).sum())
        s = "".join("ACGTN"[b - 1] for b in bases[:n])
        rc, want = sequences.reverse_complement(s, t[:n].astype(np.int8))
        assert "".join("ACGTN"[b - 1] for b in rbases[:n]) == rc
        assert rt[:n].tolist() == want.tolist() and (rt[n:] == -1).all()
    # bases come back; tags need not: a feature cut by the window's start has no B
    # there, and its mirror's B (at the cut) is correct for the mirrored window
    assert (data.mirrored(rx, ry)[0] == x).all()


def _genbank(path, n_records=1, length=3000, seed=0):
    from Bio import SeqIO
    from Bio.Seq import Seq
    from Bio.SeqFeature import FeatureLocation, SeqFeature
    from Bio.SeqRecord import SeqRecord

    rng = np.random.RandomState(seed)
    records = []
    for k in range(n_records):
        seq = "".join(rng.choice(list("ACGT"), length))
        feats = [SeqFeature(FeatureLocation(s * length // 3000, (s + 300) * length // 3000,
                                            strand=strand), type="CDS")
                 for s, strand in ((100, 1), (700, -1), (1500, 1), (2400, -1))]
        record = SeqRecord(Seq(seq), id=f"rec{k}", name=f"rec{k}", description="test",
                           features=feats, annotations={"molecule_type": "DNA"})
        records.append(record)
    SeqIO.write(records, str(path), "genbank")
    return str(path)


def test_one_record_splits_by_position_several_by_record(tmp_path):
    one = _genbank(tmp_path / "one.gb", length=4000)
    config = dataclasses.replace(SMALL, data=one, max_examples=0)
    parts = data.regions(data.read_records(config), config)
    sizes = {k: sum(len(b) for b, _ in v) for k, v in parts.items()}
    assert sizes == {"train": 2800, "valid": 400, "test": 800}
    many = _genbank(tmp_path / "many.gb", n_records=10, length=500)
    parts = data.regions(data.read_records(dataclasses.replace(config, data=many)), config)
    assert sorted(len(v) for v in parts.values()) == [1, 2, 7]


def test_per_sequence_files_folds_and_unknown_labels(tmp_path):
    rng = np.random.RandomState(1)
    rows = ["".join(rng.choice(list("ACGT"), 30)) for _ in range(40)]
    uci = tmp_path / "splice.csv"
    uci.write_text("Class, Donor,   Sequence\n" + "".join(
        f"{'EI' if i % 2 else 'N'},  NAME-{i},   {s}\n" for i, s in enumerate(rows)))
    config = dataclasses.replace(PRESETS["splice"], data=str(uci), fold=3, folds=10)
    found, labels, _ = data.read_labelled(str(uci), config)
    assert len(found) == 40 and set(labels) == {"EI", "N"}
    tests = [set(data.sequence_splits(found, labels, dataclasses.replace(config, fold=k))["test"][0])
             for k in range(10)]
    assert sum(len(t) for t in tests) == 40 and len(set().union(*tests)) == 40
    assert data.label_space(["1.5", "2"] * 3) == (["1.5", "2"], False)
    assert data.label_space([str(v) for v in range(20)])[1] is True


@pytest.mark.parametrize("content, message", [
    (b"sequence,label\nACGTX,a\nACGT,b\n", "{path}:2: field 'sequence': position 5: character "
                                           "'X' is not a base or IUPAC code"),
])
def test_bad_per_sequence_files_are_one_error_line(content, message, tmp_path, capsys):
    path = tmp_path / "seqs.csv"
    path.write_bytes(content)
    code = main(TASK, ["train", "--preset", "splice", "--data", str(path),
                       "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2 and capsys.readouterr().err == f"error: {message.format(path=path)}\n"


def test_a_genome_too_short_for_its_windows_says_so(tmp_path, capsys):
    short = _genbank(tmp_path / "short.gb", length=300)
    code = main(TASK, ["train", "--preset", "small", "--set", "window=256", "--set", "stride=128",
                       "--data", short, "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2
    assert capsys.readouterr().err == ("error: rec0: 300 bases: too short to split into train, "
                                       "valid and test regions of windows of 256\n")


def test_the_server_tags_a_long_sequence_in_one_request_and_finds_its_spans(tmp_path):
    import tensorflow as tf

    from pipelines.dna import model as dna_model

    config = dataclasses.replace(SMALL, window=64, stride=48, serve_batch_windows=8)
    meta = {"task": "per_base", "tags": list(sequences.TAGS)}
    net = dna_model.build_model(config, meta)
    server = dna_model.DNAServer(net, config, meta)
    rng = np.random.RandomState(2)
    long = "".join(rng.choice(list("ACGT"), 20000))
    out = tf.function(server.tag)(tf.constant([long, "", "acgtRYN", "é"]))
    assert out["length"].numpy().tolist() == [20000, 0, 7, 2]
    tags = out["tags"].numpy()
    direct = dna_model.predict_tags(net, data.encode(long)[None, :64], config).numpy()[0]
    assert tags[0, :16].tolist() == direct[:16].tolist()  # the first window's own bases
    spans = graph.spans_from_tags_np(tags[0, :20000])
    assert int(out["num_spans"][0]) == len(spans)
    for k, (start, end, strand, kind) in enumerate(spans):
        assert (int(out["span_start"][0, k]), int(out["span_end"][0, k])) == (start, end)
        assert out["span_strand"][0, k].numpy().decode() == strand


def test_predicted_genes_are_written_as_gff3_that_gffutils_reads_back(tmp_path):
    import gffutils

    from pipelines.dna import predict

    row = {"length": 500, "num_spans": 2, "span_start": np.array([9, 99]),
           "span_end": np.array([40, 300]), "span_strand": np.array([b"+", b"-"]),
           "span_type": np.array([b"CDS", b"tRNA"])}
    reader = predict.bind(SMALL, {"task": "per_base"})
    (path,) = reader.save(row, ("chr 1", "ACGT"), str(tmp_path), 0)
    assert path.endswith("01-chr_1.gff3")
    found = [(f.seqid, f.featuretype, f.start, f.end, f.strand)
             for f in gffutils.DataIterator(path)]
    assert found == [("chr 1", "CDS", 10, 40, "+"), ("chr 1", "tRNA", 100, 300, "-")]
    fasta = tmp_path / "two.fa"
    fasta.write_text(">a first\nACGTRY\n>b\nacgt\n")
    assert predict.read_file(str(fasta)) == [("a", "ACGTNN"), ("b", "ACGT")]
    assert predict.bind(SMALL, {"task": "per_sequence"}).save is None


def test_a_crf_head_tags_through_viterbi_in_the_server():
    import tensorflow as tf

    from pipelines.dna import model as dna_model
    from zoo.layers.crf import crf_decode

    config = dataclasses.replace(SMALL, head="crf", window=32, stride=24)
    meta = {"task": "per_base", "tags": list(sequences.TAGS)}
    net = dna_model.build_model(config, meta)
    server = dna_model.DNAServer(net, config, meta)
    seq = "".join(np.random.RandomState(3).choice(list("ACGT"), 32))
    out = server.tag(tf.constant([seq]))
    want = crf_decode(net(data.encode(seq)[None], training=False)).numpy()[0]
    assert out["tags"].numpy()[0].tolist() == want.tolist()


def _splice_file(path, lengths, seed=4):
    rng = np.random.RandomState(seed)
    path.write_text("Class, Donor,   Sequence\n" + "".join(
        f"{'EI' if i % 2 else 'N'},  NAME-{i},   {''.join(rng.choice(list('ACGT'), n))}\n"
        for i, n in enumerate(lengths)))
    return str(path)


def test_a_flatten_readout_weighs_every_position_and_serves_that_length_only(tmp_path):
    import tensorflow as tf

    from pipelines.dna import model as dna_model

    uci = _splice_file(tmp_path / "splice.csv", [30] * 40)
    config = dataclasses.replace(PRESETS["splice"], data=uci, pooling="flatten", units=4,
                                 conv_filters=4, dropout=0.0, max_examples=0)
    made = data.make_datasets(config)
    assert made.meta["length"] == 30
    net = dna_model.build_model(config, made.meta)
    assert net.input_shape == (None, 30)
    assert net.get_layer("classes").kernel.shape == (30 * 2 * 4, 2)  # a weight per position
    # every position counts: changing one base at either end changes the probabilities
    seq = "A" * 30
    out = [net(data.encode(s)[None], training=False).numpy() for s in
           (seq, "C" + seq[1:], seq[:-1] + "C")]
    assert not np.allclose(out[0], out[1]) and not np.allclose(out[0], out[2])
    server = dna_model.DNAServer(net, config, made.meta)
    got = tf.function(server.classify)(tf.constant([seq, "acgt" * 7 + "RY"]))
    np.testing.assert_allclose(got["probabilities"].numpy()[0], out[0][0], rtol=1e-5)
    assert server.classify(tf.constant([], tf.string))["probabilities"].shape == (0, 2)
    for bad in (["A" * 29], [seq, ""], [seq + "A"]):
        with pytest.raises(tf.errors.InvalidArgumentError,
                           match=r"every sequence must have 30 bases \(pooling=flatten\)"):
            tf.function(server.classify)(tf.constant(bad))
    with pytest.raises(ValueError, match=r"^Expected a positive int length with "
                                         r"pooling='flatten'. Received: length=None$"):
        dna_model.build_model(config, {**made.meta, "length": None})


def test_a_flatten_readout_refuses_files_of_several_lengths_in_one_line(tmp_path, capsys):
    mixed = _splice_file(tmp_path / "mixed.csv", [30] * 20 + [29] * 20)
    code = main(TASK, ["train", "--preset", "splice", "--set", "pooling=flatten", "--data", mixed,
                       "--workdir", str(tmp_path / "w"), "-q"])
    assert code == 2 and capsys.readouterr().err == (
        f"error: {mixed}: pooling=flatten needs every sequence the same length; found "
        f"lengths 29 to 30 (--set pooling=mean_max reads any length)\n")
    config = dataclasses.replace(PRESETS["splice"], data="train.csv", pooling="flatten")
    with pytest.raises(data.DataError, match=rf"^{mixed}: sequence 21 has 29 bases; this model reads "
                                             r"sequences of 30 \(pooling=flatten\)$"):
        data.read_split(config, {"task": "per_sequence", "classes": ["EI", "N"],
                                 "regression": False, "length": 30}, mixed)


def test_an_ensemble_averages_its_members_and_serves(tmp_path):
    import keras
    import tensorflow as tf

    from pipelines.dna import model as dna_model

    uci = _splice_file(tmp_path / "splice.csv", [30] * 40)
    code = main(TASK, ["train", "--preset", "splice", "--data", uci, "--set", "ensemble=2",
                       "--set", "epochs=1", "--set", "units=4", "--workdir", str(tmp_path / "w"),
                       "-q"])
    assert code == 0
    model = keras.saving.load_model(str(tmp_path / "w" / "model.keras"))
    members = [keras.saving.load_model(str(tmp_path / "w" / f"member-{k}" / "model.keras"))
               for k in (1, 2)]
    x = np.stack([data.encode("ACGT" * 7 + "AC"), data.encode("TTGCA" * 6)])
    outs = [m(x, training=False).numpy() for m in members]
    assert not np.allclose(outs[0], outs[1])
    np.testing.assert_allclose(model(x, training=False).numpy(), (outs[0] + outs[1]) / 2,
                               rtol=1e-5)
    config = dataclasses.replace(PRESETS["splice"], ensemble=2)
    meta = {"task": "per_sequence", "classes": ["EI", "N"], "length": 30}
    got = dna_model.DNAServer(model, config, meta).classify(tf.constant(["ACGT" * 7 + "AC"]))
    np.testing.assert_allclose(got["probabilities"].numpy()[0], (outs[0][0] + outs[1][0]) / 2,
                               rtol=1e-5)


def test_a_dilated_front_end_sees_exactly_its_receptive_field():
    import keras

    from pipelines.dna import model as dna_model

    # kernel 3, dilations 1, 2, 4: a base reaches (3 - 1) / 2 * (1 + 2 + 4) = 7 bases each way
    config = dataclasses.replace(SMALL, conv_layers=3, conv_kernel=3, conv_dilation=2,
                                 conv_filters=6)
    keras.utils.set_random_seed(0)
    net = dna_model.build_model(config, {"task": "per_base", "tags": list(sequences.TAGS)})
    assert [net.get_layer(f"conv_{i}").dilation_rate for i in range(3)] == [(1,), (2,), (4,)]
    front = keras.Model(net.input, net.get_layer("conv_2").output)
    rng = np.random.RandomState(1)
    for seed_layer in range(3):  # nonzero biases so that no ReLU stays silent by chance
        layer = net.get_layer(f"conv_{seed_layer}")
        layer.bias.assign(rng.uniform(0.1, 0.3, layer.bias.shape).astype("float32"))
    bases = rng.randint(1, 5, (1, 40)).astype("int32")
    changed = bases.copy()
    changed[0, 20] = bases[0, 20] % 4 + 1
    moved = np.abs(front(changed).numpy() - front(bases).numpy()).max(-1)[0] > 1e-6
    assert np.flatnonzero(moved).tolist() == list(range(13, 28))


def test_evaluation_reads_each_region_whole_and_tags_it_as_the_export_does(tmp_path):
    import tensorflow as tf

    from pipelines.dna import model as dna_model

    # three records: lengths 130 and 64 (a multiple of the window: read with the next),
    # and 50; windows of 64 every 48
    gb = _genbank(tmp_path / "r.gb", n_records=3, length=3000)
    records = data.read_records(dataclasses.replace(SMALL, data=gb))
    parts = [(data.encode(r.sequence[:n]), r.tags[:n].astype(np.int32))
             for r, n in zip(records, (130, 64, 50))]
    config = dataclasses.replace(SMALL, window=64, stride=48, max_examples=0, head="crf")
    dataset, _ = data.window_dataset(parts, config)
    regions = dna_model.tiled_regions(dataset)
    assert [len(ids) for ids, _ in regions] == [130, 114]
    np.testing.assert_array_equal(regions[1][0], np.concatenate([parts[1][0], parts[2][0]]))
    np.testing.assert_array_equal(regions[0][1], parts[0][1])
    meta = {"task": "per_base", "tags": list(sequences.TAGS)}
    net = dna_model.build_model(config, meta)
    report = dna_model.evaluate(net, dataset, config, meta)
    served = tf.function(dna_model.DNAServer(net, config, meta).tag)(
        tf.constant(["".join("ACGTN"[b - 1] for b in ids) for ids, _ in regions]))
    pred = [served["tags"][k, :len(ids)].numpy() for k, (ids, _) in enumerate(regions)]
    true = [tags for _, tags in regions]
    assert report["bases"] == 244
    assert report["per_base_accuracy"] == pytest.approx(
        np.mean(np.concatenate(pred) == np.concatenate(true)))
    spans = graph.span_metrics([graph.spans_from_tags_np(t) for t in true],
                               [graph.spans_from_tags_np(p) for p in pred])
    assert (report["true_spans"], report["predicted_spans"]) == (spans["true"], spans["pred"])
    assert report["true_spans"] == len(graph.spans_from_tags_np(true[0])) + len(
        graph.spans_from_tags_np(true[1]))


def _fake_mavenn(root, rows_mpsa, rows_sortseq):
    """A package ``mavenn`` with only its data files (the real one imports tensorflow)."""
    import gzip

    folder = root / "mavenn" / "examples" / "datasets"
    folder.mkdir(parents=True)
    (root / "mavenn" / "__init__.py").write_text("raise ImportError('not to be imported')\n")
    with gzip.open(folder / "mpsa_data.csv.gz", "wt") as f:
        f.write("set,tot_ct,ex_ct,y,x\n" + "".join(f"{s},1,1,{y},{x}\n" for s, y, x in rows_mpsa))
    with gzip.open(folder / "sortseq_data.csv.gz", "wt") as f:
        f.write("set," + ",".join(f"ct_{k}" for k in range(10)) + ",x\n" + "".join(
            f"{s},{','.join(map(str, c))},{x}\n" for s, c, x in rows_sortseq))


def test_mavenn_data_sets_are_read_from_the_wheel_files_with_their_own_split(
        tmp_path, monkeypatch, capsys):
    rng = np.random.RandomState(5)
    sets = ["training"] * 30 + ["validation"] * 6 + ["test"] * 8
    mpsa = [(s, f"{rng.randn():.4f}", "".join(rng.choice(list("ACGU"), 9))) for s in sets]
    counts = [[0, 2, 0, 0, 0, 0, 0, 0, 1, 0]] + [list(rng.randint(0, 3, 10)) for _ in sets[1:]]
    sortseq = [(s, c, "".join(rng.choice(list("ACGT"), 75))) for s, c in zip(sets, counts)]
    _fake_mavenn(tmp_path, mpsa, sortseq)
    monkeypatch.syspath_prepend(str(tmp_path))
    config = dataclasses.replace(SMALL, task="per_sequence", data="embedded", max_examples=0)
    found, values, split = data.read_labelled("embedded", config)  # embedded = mavenn:mpsa
    assert found[0] == mpsa[0][2].replace("U", "T") and values == [y for _, y, _ in mpsa]
    assert split == ["train"] * 30 + ["valid"] * 6 + ["test"] * 8
    made = data.make_datasets(config)
    assert made.sizes == {"train": 30, "valid": 6, "test": 8} and made.meta["regression"]
    found, values, _ = data.read_labelled("mavenn:sortseq", config)
    assert len(found[0]) == 75 and float(values[0]) == pytest.approx((2 * 1 + 8) / 3)
    code = main(TASK, ["--preset", "small", "--set", "task=per_sequence", "--workdir",
                       str(tmp_path / "w"), "--export-dir", str(tmp_path / "m"), "-q"])
    assert code == 0 and "Pearson" in capsys.readouterr().out
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: None)
    code = main(TASK, ["train", "--preset", "small", "--set", "task=per_sequence",
                       "--set", "data=mavenn:sortseq", "--workdir", str(tmp_path / "w2"), "-q"])
    assert code == 2 and capsys.readouterr().err == (
        "error: mavenn:sortseq: needs the mavenn wheel's data files: pip install --no-deps "
        "mavenn (--no-deps: mavenn itself requires the full tensorflow package)\n")


def test_predict_fasta_writes_a_gff3_per_record(small_run, tmp_path, capsys):
    run = small_run("dna")
    fasta = tmp_path / "contigs.fa"
    rng = np.random.RandomState(7)
    fasta.write_text("".join(f">contig{k}\n{''.join(rng.choice(list('ACGT'), 150))}\n"
                             for k in range(2)))
    code = main(TASK, ["predict", "--fasta", str(fasta), "--model", run["version_dir"],
                       "--out", str(tmp_path / "genes"), "-q"])
    assert code == 0, capsys.readouterr()
    assert sorted(p.name for p in (tmp_path / "genes").iterdir()) == [
        "01-contig0.gff3", "02-contig1.gff3"]
    assert "150 bases" in capsys.readouterr().out
