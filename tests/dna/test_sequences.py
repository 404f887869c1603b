import os
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.common.textio import DataError
from pipelines.dna import sequences as S
from pipelines.dna.sequences import Feature

from Bio import SeqIO  # the dna extra (the test extra takes it)
from Bio.Seq import Seq
from Bio.SeqFeature import CompoundLocation, SeqFeature, SimpleLocation
from Bio.SeqRecord import SeqRecord


def tag(name):
    return S.TAGS.index(name)


def expected_tags(length, spans):
    """Tags by hand: ``spans`` = [(start, end, "CDS+"), ...]."""
    tags = np.zeros(length, np.int8)
    for start, end, kind in spans:
        tags[start] = tag(f"B-{kind}")
        tags[start + 1:end] = tag(f"I-{kind}")
    return tags


def raises(message, fn, *args, **kwargs):
    with pytest.raises(DataError) as info:
        fn(*args, **kwargs)
    assert str(info.value) == message


def test_tag_set():
    assert S.TAGS == ("O", "B-CDS+", "I-CDS+", "B-CDS-", "I-CDS-", "B-tRNA+", "I-tRNA+",
                      "B-tRNA-", "I-tRNA-", "B-rRNA+", "I-rRNA+", "B-rRNA-", "I-rRNA-")
    assert S.tag_id("B", "tRNA", "-") == 7


# ---------------------------------------------------------------------------- clean


def test_clean_uppercases_maps_and_strips():
    assert S.clean("acgT u\nAc", "f.fa", "r1") == "ACGTTAC"
    assert S.clean("ACRYN", "f.fa", "r1") == "ACNNN"
    assert S.clean("acgt", "f.fa", "r1", ambiguous="refuse") == "ACGT"


def test_clean_errors():
    raises("f.fa: record chr1 position 4: character '*' is not a base or IUPAC code",
           S.clean, "AC G*T", "f.fa", "chr1")
    raises("f.fa: record chr1 position 3: character '-' is not a base or IUPAC code",
           S.clean, "ac-gt", "f.fa", "chr1", ambiguous="refuse")
    raises("f.fa: record chr1 position 2: ambiguity code 'R' refused (ambiguous='refuse'; "
           "'n' reads it as N)", S.clean, "ArN", "f.fa", "chr1", ambiguous="refuse")
    raises("f.fa: record chr1 is empty", S.clean, " \n", "f.fa", "chr1")
    raises("d.csv:3: field 'sequence': position 1: character '5' is not a base or IUPAC code",
           S.clean, "5A", "d.csv", None, line=3, field="sequence")
    with pytest.raises(ValueError, match="ambiguous"):
        S.clean("A", "f.fa", "r", ambiguous="x")


# ------------------------------------------------------------------ tags <-> features


def test_overlaps_cds_over_rna_and_later_b_kept():
    features = [Feature(0, 10, "+", "tRNA"), Feature(5, 8, "-", "CDS"),
                Feature(12, 20, "+", "CDS"), Feature(15, 25, "+", "CDS")]
    tags = S.tags_from_features(26, features)
    np.testing.assert_array_equal(tags, expected_tags(
        26, [(0, 10, "tRNA+"), (5, 8, "CDS-"), (12, 20, "CDS+"), (15, 25, "CDS+")]))
    assert S.features_from_tags(tags) == [
        Feature(0, 5, "+", "tRNA"), Feature(5, 8, "-", "CDS"), Feature(8, 10, "+", "tRNA"),
        Feature(12, 15, "+", "CDS"), Feature(15, 25, "+", "CDS")]


def test_features_from_tags_stray_i_opens_a_feature():
    tags = [0, tag("I-CDS+"), tag("I-CDS+"), tag("B-CDS+"), tag("I-tRNA+"), tag("I-CDS+")]
    assert S.features_from_tags(tags) == [
        Feature(1, 3, "+", "CDS"), Feature(3, 4, "+", "CDS"), Feature(4, 5, "+", "tRNA"),
        Feature(5, 6, "+", "CDS")]


@st.composite
def feature_sets(draw):
    """(length, sorted non-overlapping features; adjacent ones of one kind included)."""
    features, position = [], 0
    for _ in range(draw(st.integers(0, 8))):
        start = position + draw(st.integers(0, 3))
        end = start + draw(st.integers(1, 6))
        features.append(Feature(start, end, draw(st.sampled_from(S.STRANDS)),
                                draw(st.sampled_from(S.TYPES))))
        position = end
    return position + draw(st.integers(0, 3)), features


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(feature_sets())
def test_features_tags_round_trip(case):
    length, features = case
    tags = S.tags_from_features(length, features)
    assert tags.dtype == np.int8 and tags.shape == (length,)
    assert S.features_from_tags(tags) == features


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(feature_sets(), st.data())
def test_reverse_complement_mirrors_features(case, data):
    length, features = case
    sequence = data.draw(st.text("ACGTN", min_size=length, max_size=length))
    tags = S.tags_from_features(length, features)
    rc, rc_tags = S.reverse_complement(sequence, tags)
    assert S.features_from_tags(rc_tags) == S.mirror_features(length, features)
    again, again_tags = S.reverse_complement(rc, rc_tags)
    assert again == sequence
    np.testing.assert_array_equal(again_tags, tags)


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(st.lists(st.integers(0, len(S.TAGS) - 1), max_size=30))
def test_reverse_complement_of_any_tags(tags):
    tags = np.array(tags, np.int8)
    _, rc_tags = S.reverse_complement("A" * len(tags), tags)
    assert S.features_from_tags(rc_tags) == S.mirror_features(len(tags),
                                                              S.features_from_tags(tags))


def test_reverse_complement_by_hand():
    tags = expected_tags(8, [(1, 4, "CDS+"), (5, 7, "rRNA-")])
    rc, rc_tags = S.reverse_complement("AACGTTGN", tags)
    assert rc == "NCAACGTT"
    np.testing.assert_array_equal(rc_tags, expected_tags(8, [(1, 3, "rRNA+"), (4, 7, "CDS-")]))
    assert S.reverse_complement("ACGU", None) == ("ACGT", None)


# -------------------------------------------------------------------------- GenBank


def write_genbank(path, records):
    """``records``: [(name, sequence, [SeqFeature])] -> a GenBank file."""
    out = []
    for name, sequence, features in records:
        record = SeqRecord(Seq(sequence), id=name, name=name, description="test record",
                           features=features, annotations={"molecule_type": "DNA"})
        out.append(record)
    SeqIO.write(out, str(path), "genbank")
    return str(path)


def test_read_genbank(tmp_path):
    sequence = "".join(np.random.RandomState(0).choice(list("acgt"), 100))
    features = [
        SeqFeature(SimpleLocation(0, 30, 1), type="gene"),  # ignored
        SeqFeature(SimpleLocation(10, 20, 1), type="CDS"),
        SeqFeature(SimpleLocation(30, 45, -1), type="CDS"),
        SeqFeature(SimpleLocation(50, 60, 1), type="tRNA"),
        SeqFeature(SimpleLocation(70, 80, -1), type="rRNA"),
        SeqFeature(CompoundLocation([SimpleLocation(85, 88, 1), SimpleLocation(90, 95, 1)]),
                   type="CDS"),
    ]
    path = write_genbank(tmp_path / "a.gb", [("SEQ1", sequence, features),
                                             ("SEQ2", "ACGT", [])])
    (record,) = S.read_genbank(path, unannotated="skip")
    assert record.name == "SEQ1" and record.sequence == sequence.upper()
    assert record.features == [
        Feature(10, 20, "+", "CDS"), Feature(30, 45, "-", "CDS"), Feature(50, 60, "+", "tRNA"),
        Feature(70, 80, "-", "rRNA"), Feature(85, 88, "+", "CDS"), Feature(90, 95, "+", "CDS")]
    np.testing.assert_array_equal(record.tags, expected_tags(100, [
        (10, 20, "CDS+"), (30, 45, "CDS-"), (50, 60, "tRNA+"), (70, 80, "rRNA-"),
        (85, 88, "CDS+"), (90, 95, "CDS+")]))
    assert record.tags[30] == tag("B-CDS-")  # B at the lowest coordinate on the - strand
    raises(f"{path}: record SEQ2 has no CDS/tRNA/rRNA features", S.read_genbank, path)


def test_read_genbank_errors(tmp_path):
    outside = SeqFeature(SimpleLocation(95, 120, 1), type="CDS",
                         qualifiers={"locus_tag": ["X_001"]})
    path = write_genbank(tmp_path / "b.gb", [("SEQ1", "A" * 100, [outside])])
    raises(f"{path}: record SEQ1: CDS X_001 at 96..120 lies outside the sequence (100 bp)",
           S.read_genbank, path)
    path = write_genbank(tmp_path / "c.gb", [
        ("SEQ1", "ACGTRACGT", [SeqFeature(SimpleLocation(0, 3, 1), type="CDS")])])
    assert S.read_genbank(path)[0].sequence == "ACGTNACGT"
    raises(f"{path}: record SEQ1 position 5: ambiguity code 'R' refused (ambiguous='refuse'; "
           "'n' reads it as N)", S.read_genbank, path, ambiguous="refuse")
    raises(f"{tmp_path}/none.gb: no such file", S.read_genbank, str(tmp_path / "none.gb"))


# ------------------------------------------------------------------- FASTA + GFF3/BED


FASTA = ">chr1 first\nACGTACGTAC\nacgtacgtac\n>chr2\nGGGGGCCCCCAAAAATTTTT\n"
GFF3 = """##gff-version 3
# a comment
chr1\ttest\tgene\t2\t8\t.\t+\t.\tID=g1
chr1\ttest\tCDS\t2\t8\t.\t+\t0\tID=c1;Parent=g1
chr1\ttest\ttRNA\t11\t15\t.\t-\t.\tID=t1
chr2\ttest\tCDS\t1\t6\t.\t-\t0\tID=c2
chr2\ttest\tCDS\t9\t12\t.\t-\t0\tID=c2
chr2\ttest\trRNA\t16\t20\t.\t+\t.\tID=r1
"""
BED = """track name=genes
chr1\t1\t8\tgene1\t0\t+
chr1\t10\t15\ttRNA\t0\t-
chr2\t0\t6\tc2\t0\t-
chr2\t8\t12\tCDS\t0\t-
chr2\t15\t20\trRNA\t0\t+\textra
"""
EXPECTED = {
    "chr1": [Feature(1, 8, "+", "CDS"), Feature(10, 15, "-", "tRNA")],
    "chr2": [Feature(0, 6, "-", "CDS"), Feature(8, 12, "-", "CDS"), Feature(15, 20, "+", "rRNA")],
}


def write(path, text):
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize("name,annotation", [("a.gff3", GFF3), ("a.bed", BED)])
def test_read_fasta_annotated(tmp_path, name, annotation):
    fasta = write(tmp_path / "a.fa", FASTA)
    records = S.read_fasta_annotated(fasta, write(tmp_path / name, annotation))
    assert [r.name for r in records] == ["chr1", "chr2"]
    assert records[0].sequence == "ACGTACGTACACGTACGTAC"
    assert {r.name: r.features for r in records} == EXPECTED
    np.testing.assert_array_equal(records[0].tags, expected_tags(
        20, [(1, 8, "CDS+"), (10, 15, "tRNA-")]))
    np.testing.assert_array_equal(records[1].tags, expected_tags(
        20, [(0, 6, "CDS-"), (8, 12, "CDS-"), (15, 20, "rRNA+")]))


def test_read_fasta_annotated_errors(tmp_path):
    fasta = write(tmp_path / "a.fa", FASTA)
    gff = write(tmp_path / "b.gff3", GFF3 + "chrX\ttest\tCDS\t1\t5\t.\t+\t0\tID=x\n")
    raises(f"{gff}:9: sequence 'chrX' is not in the FASTA file",
           S.read_fasta_annotated, fasta, gff)
    gff = write(tmp_path / "c.gff3", GFF3.replace("\t20\t", "\t21\t"))
    raises(f"{gff}:8: rRNA 16..21 lies outside sequence 'chr2' (20 bp) or is empty",
           S.read_fasta_annotated, fasta, gff)
    gff = write(tmp_path / "d.gff3", GFF3.replace("\t11\t15\t", "\tx\t15\t"))
    raises(f"{gff}:5: not a GFF3 feature line (invalid literal for int() with base 10: 'x')",
           S.read_fasta_annotated, fasta, gff)
    bed = write(tmp_path / "e.bed", BED.replace("chr2\t8", "chrY\t8"))
    raises(f"{bed}:5: sequence 'chrY' is not in the FASTA file",
           S.read_fasta_annotated, fasta, bed)
    bed = write(tmp_path / "f.bed", "chr1\t1\t8\n")
    raises(f"{bed}:1: expected 6 or more columns (chrom start end name score strand), found 3",
           S.read_fasta_annotated, fasta, bed)
    only_chr1 = write(tmp_path / "g.bed", "chr1\t1\t8\tx\t0\t+\n")
    raises(f"{only_chr1}: record chr2 has no CDS/tRNA/rRNA features",
           S.read_fasta_annotated, fasta, only_chr1)
    assert [r.name for r in S.read_fasta_annotated(fasta, only_chr1, unannotated="skip")] == [
        "chr1"]


def test_read_fasta(tmp_path):
    records = S.read_fasta(write(tmp_path / "a.fa", FASTA))
    assert [(r.name, r.sequence[:4], r.tags, r.features) for r in records] == [
        ("chr1", "ACGT", None, []), ("chr2", "GGGG", None, [])]
    bad = write(tmp_path / "b.fa", ">r1\nACGT\n>r2\nAC GT\nA9\n")
    raises(f"{bad}: record r2 position 6: character '9' is not a base or IUPAC code",
           S.read_fasta, bad)
    empty = write(tmp_path / "c.fa", ">r1\nACGT\n>r2\n\n>r3\nA\n")
    raises(f"{empty}: record r2 is empty", S.read_fasta, empty)


# ------------------------------------------------------------------ classification


def test_read_labelled_csv(tmp_path):
    path = write(tmp_path / "a.csv", "sequence,label\nacgu,yes\nAC GN,no\n")
    assert S.read_labelled_csv(path) == (["ACGT", "ACGN"], ["yes", "no"])
    bad = write(tmp_path / "b.csv", "sequence,label\nACGT,yes\nAC-T,no\n")
    raises(f"{bad}:3: field 'sequence': position 3: character '-' is not a base or IUPAC code",
           S.read_labelled_csv, bad)


def test_read_uci_splice(tmp_path):
    path = write(tmp_path / "splice.csv", (
        "Class, Donor,                          Sequence\n"
        "EI,    ATRINS-DONOR-521,               CCAGCTGCAT\n"
        "IE,    ATRINS-ACCEPTOR-701,            AACDRSTTGC\n"
        "N,     AGMKPNCGR-NEG-1,                GGGCTGCGTT\n"))
    assert S.read_uci_splice(path) == (
        ["CCAGCTGCAT", "AACNNNTTGC", "GGGCTGCGTT"], ["EI", "IE", "N"],
        ["ATRINS-DONOR-521", "ATRINS-ACCEPTOR-701", "AGMKPNCGR-NEG-1"])
    raises(f"{path}:3: field 'Sequence': position 4: ambiguity code 'D' refused "
           "(ambiguous='refuse'; 'n' reads it as N)", S.read_uci_splice, path, "refuse")


# ------------------------------------------------------------------ embedded genome


@pytest.fixture(scope="module")
def genome(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("dna_cache"))
    start = time.perf_counter()
    record = S.embedded_genome(cache_dir=folder)
    return folder, record, time.perf_counter() - start


def test_embedded_genome(genome):
    folder, record, _ = genome
    assert record.name == "NZ_LN831026.1" and len(record.sequence) == 2_463_666
    assert set(record.sequence) <= set("ACGTN")
    # pyrodigal's gene calls (2,343 with pyrodigal 3.7.1), not curated annotation.
    assert 2200 <= len(record.features) <= 2500
    assert {f.type for f in record.features} == {"CDS"}
    assert {f.strand for f in record.features} == {"+", "-"}
    assert record.tags.shape == (2_463_666,) and record.tags.dtype == np.int8
    version = __import__("pyrodigal").__version__
    assert os.listdir(folder) == [f"cdiphtheriae-pyrodigal-{version}.npz"]
    start = time.perf_counter()
    cached = S.embedded_genome(cache_dir=folder)
    assert time.perf_counter() - start < 2
    assert cached.sequence == record.sequence and cached.features == record.features
    np.testing.assert_array_equal(cached.tags, record.tags)


def test_embedded_genome_needs_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "pyrodigal", None)
    raises("pyrodigal: the dna pipeline needs its extra: pip install 'seqzoo[dna]'",
           S.embedded_genome, str(tmp_path))
