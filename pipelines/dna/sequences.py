"""DNA sequences and their per-base gene labels: reading, cleaning, tags <-> features.

A ``Record`` is one sequence (a chromosome, plasmid or contig): ``sequence`` a str over
``ACGTN`` (length n), ``tags`` an int8 array (n,) of ids into ``TAGS`` (or None when the
file carries no annotation) and ``features``, the annotated genes as ``Feature(start,
end, strand, type)``: 0-based half-open record coordinates, strand "+" or "-", type
"CDS", "tRNA" or "rRNA".

Tags are BIO tags over gene type and strand (``TAGS``). ``B-`` marks a feature's LOWEST
record coordinate (its start in the record, whatever the strand), so a minus-strand
gene's B sits at its stop codon end; ``I-`` the rest; ``O`` everything else. A
compound location (a GenBank ``join``, or the several GFF3 lines of one spliced CDS) is
labelled part by part: every part is its own Feature with its own B.

Overlapping features (``tags_from_features``): features are painted in order, RNA
features first and CDS last, each group by (start, end); a later feature overwrites an
earlier one where they overlap. So CDS wins over tRNA/rRNA, and of two overlapping
features of one group the one that starts later keeps its B while the earlier one is
cut short there. Tags then no longer give back every feature: ``features_from_tags``
returns the visible pieces, and ``Record.features`` keeps the annotation as read.

Readers (every problem is a ``DataError`` naming the file, and the record, line or
position):
* ``read_genbank``: GenBank flat files (Biopython), CDS/tRNA/rRNA features.
* ``read_fasta_annotated``: FASTA (Biopython) + GFF3 (gffutils) or BED6+.
* ``read_fasta``: FASTA without labels (for predict).
* ``read_labelled_csv`` (``sequence,label``) and ``read_uci_splice`` (UCI splice
  junctions) for whole-sequence classification.
* ``embedded_genome``: the Corynebacterium diphtheriae chromosome of the pyrodigal
  wheel, labelled by pyrodigal's gene calls.
``.gz`` files are read transparently. Sequences go through ``clean``: whitespace
removed, uppercased (soft-masked lowercase repeats become ordinary bases), U -> T, IUPAC
ambiguity codes -> N (or refused).
"""

import dataclasses
import gzip
import importlib
import io
import os
import re

import numpy as np

from pipelines.common import cache
from pipelines.common.textio import DataError

BASES = "ACGT"
IUPAC = "RYSWKMBDHVN"
TYPES = ("CDS", "tRNA", "rRNA")
STRANDS = ("+", "-")
TAGS = ("O",) + tuple(f"{bio}-{kind}{strand}" for kind in TYPES for strand in STRANDS
                      for bio in ("B", "I"))
# Tag ids: 0 is O; feature class c = 2 * TYPES.index(type) + STRANDS.index(strand) has
# B id 2c + 1 (odd) and I id 2c + 2 (even).
AMBIGUOUS = ("n", "refuse")
INSTALL = "the dna pipeline needs its extra: pip install 'seqzoo[dna]'"
GENOME_FILE = "GCF_001457455.1_NCTC11397_genomic.fna.gz"
_TO_N = str.maketrans({c: "N" for c in IUPAC})
_COMPLEMENT = str.maketrans("ACGTURYSWKMBDHVN", "TGCAAYRSWMKVHDBN")
_NOT_BASE = re.compile(f"[^{BASES}]")
_NOT_CODE = re.compile(f"[^{BASES}{IUPAC}]")


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module, INSTALL) from None


@dataclasses.dataclass(frozen=True, order=True)
class Feature:
    """One annotated gene (or one part of a compound location): ``[start, end)`` in
    0-based record coordinates, ``strand`` "+"/"-", ``type`` one of ``TYPES``."""

    start: int
    end: int
    strand: str
    type: str


@dataclasses.dataclass(eq=False)
class Record:
    """One sequence: ``sequence`` str (n,) over ACGTN; ``tags`` int8 (n,) ids into
    ``TAGS`` or None; ``features`` the annotation as read (may overlap)."""

    name: str
    sequence: str
    tags: np.ndarray = None
    features: list = dataclasses.field(default_factory=list)


# ------------------------------------------------------------------------- cleaning


def clean(sequence, path, record=None, ambiguous="n", line=None, field=None):
    """``sequence`` as uppercase ACGT(N): whitespace removed, lowercase (soft-masked)
    bases uppercased, U -> T; IUPAC codes (``IUPAC``, N included) -> N with
    ``ambiguous="n"``, a DataError with ``ambiguous="refuse"``. Any other character
    (digits, '*', '-', '.') and an empty sequence raise DataError naming ``path``,
    ``record`` (or ``line``/``field``) and the 1-based position (whitespace not
    counted)."""
    if ambiguous not in AMBIGUOUS:
        raise ValueError(f"Expected ambiguous in {AMBIGUOUS}. Received: ambiguous={ambiguous!r}")
    where = f"record {record} " if record is not None else ""
    text = "".join(sequence.split()).upper().replace("U", "T")
    if not text:
        raise DataError(path, f"{where}is empty" if where else "the sequence is empty",
                        line=line, field=field)
    bad = _NOT_CODE.search(text)
    if bad:
        raise DataError(path, f"{where}position {bad.start() + 1}: character {bad.group()!r} "
                        "is not a base or IUPAC code", line=line, field=field)
    if ambiguous == "refuse":
        bad = _NOT_BASE.search(text)
        if bad:
            raise DataError(path, f"{where}position {bad.start() + 1}: ambiguity code "
                            f"{bad.group()!r} refused (ambiguous='refuse'; 'n' reads it as N)",
                            line=line, field=field)
        return text
    return text.translate(_TO_N)


# ----------------------------------------------------------------- tags <-> features


def tag_id(bio, kind, strand):
    """The id in ``TAGS`` of ``bio`` ("B"/"I"), ``kind`` (a TYPES entry), ``strand``."""
    return TAGS.index(f"{bio}-{kind}{strand}")


def tags_from_features(length, features):
    """int8 tags (length,) of ``features`` (see the module docstring for overlaps):
    B at each feature's start, I up to its end, O elsewhere."""
    tags = np.zeros(length, np.int8)
    for f in sorted(features, key=lambda f: (f.type == "CDS", f.start, f.end)):
        if f.type not in TYPES or f.strand not in STRANDS:
            raise ValueError(f"Expected a type in {TYPES} and a strand in {STRANDS}. "
                             f"Received: {f}")
        if not 0 <= f.start < f.end <= length:
            raise ValueError(f"Expected 0 <= start < end <= {length}. Received: {f}")
        b = 2 * (2 * TYPES.index(f.type) + STRANDS.index(f.strand)) + 1
        tags[f.start] = b
        tags[f.start + 1:f.end] = b + 1
    return tags


def _runs(tags):
    """(starts, ends, classes) of the features in ``tags`` (n,): a feature starts at
    every B, and at an I whose predecessor is not B/I of its class; it runs through
    the following I of its class."""
    tags = np.asarray(tags, np.int64)
    cls = np.where(tags > 0, (tags - 1) // 2, -1)                      # (n,)
    inside = tags > 0
    previous = np.concatenate([[-1], cls[:-1]])
    begins = inside & ((tags % 2 == 1) | (previous != cls))
    follows = np.concatenate([begins[1:] | ~inside[1:] | (cls[1:] != cls[:-1]), [True]])
    starts = np.flatnonzero(begins)
    ends = np.flatnonzero(inside & follows) + 1
    return starts, ends, cls[starts]


def features_from_tags(tags):
    """Features (sorted by start) of int tags (n,): a feature starts at every B-X and
    at every I-X not preceded by B-X/I-X of the same type and strand (a stray I opens
    a feature), and runs through the I-X that follow. The inverse of
    ``tags_from_features`` for features that do not overlap (adjacent ones included)."""
    starts, ends, classes = _runs(tags)
    return [Feature(int(s), int(e), STRANDS[c % 2], TYPES[c // 2])
            for s, e, c in zip(starts, ends, classes)]


def mirror_features(length, features):
    """``features`` of a sequence of ``length`` in its reverse complement's coordinates:
    [start, end) -> [length - end, length - start), strand swapped."""
    return sorted(Feature(length - f.end, length - f.start, "-" if f.strand == "+" else "+",
                          f.type) for f in features)


def reverse_complement(sequence, tags=None):
    """(reverse complement (n,), tags (n,) or None): tags reversed, strands swapped and
    each feature's B moved to its new lowest coordinate, so
    ``features_from_tags(result) == mirror_features(n, features_from_tags(tags))``.
    Twice is the identity for tags in which every feature starts with B (as
    ``tags_from_features`` makes them)."""
    complement = sequence[::-1].translate(_COMPLEMENT)
    if tags is None:
        return complement, None
    tags = np.asarray(tags)
    n = len(tags)
    if n != len(sequence):
        raise ValueError(f"Expected tags of the sequence's length {len(sequence)}. "
                         f"Received: {n}")
    _, ends, _ = _runs(tags)
    cls = np.where(tags > 0, (tags.astype(np.int64) - 1) // 2, -1)
    mirrored = np.where(tags > 0, 2 * (cls ^ 1) + 2, 0)[::-1].astype(np.int8)  # all I
    mirrored[n - ends] -= 1                                                    # B at new starts
    return complement, mirrored


# ---------------------------------------------------------------------------- files


def _check_file(path):
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    if os.path.isdir(path):
        raise DataError(path, "is a directory, expected a file")


def _open_text(path):
    _check_file(path)
    if path.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path), encoding="utf-8")
    return open(path, encoding="utf-8")


def _parse(path, fmt):
    """Biopython SeqRecords of ``path``; DataError for unreadable files."""
    SeqIO = _require("Bio.SeqIO")
    _check_file(path)
    try:
        with _open_text(path) as handle:
            records = list(SeqIO.parse(handle, fmt))
    except (ValueError, UnicodeDecodeError, OSError) as e:
        reason = " ".join(str(e).split()).split(". ")[0].rstrip(".")  # the first sentence
        raise DataError(path, f"not a readable {fmt} file ({reason})") from None
    if not records:
        raise DataError(path, f"no {fmt} records" + (" (a FASTA record starts with '>')"
                                                    if fmt == "fasta" else ""))
    return records


def _sequence(seq_record, path, ambiguous):
    from Bio.Seq import UndefinedSequenceError

    name = seq_record.id
    try:
        text = str(seq_record.seq)
    except UndefinedSequenceError:  # CONTIG records, GenBank files without ORIGIN
        raise DataError(path, f"record {name} has no sequence (only its length)") from None
    return clean(text, path, name, ambiguous)


def _labelled(records, path, unannotated):
    if unannotated not in ("refuse", "skip"):
        raise ValueError(f"Expected unannotated in ('refuse', 'skip'). "
                         f"Received: unannotated={unannotated!r}")
    kept = []
    for record in records:
        if not record.features:
            if unannotated == "refuse":
                raise DataError(path, f"record {record.name} has no CDS/tRNA/rRNA features")
            continue
        record.features.sort()
        record.tags = tags_from_features(len(record.sequence), record.features)
        kept.append(record)
    if not kept:
        raise DataError(path, "no record has CDS/tRNA/rRNA features")
    return kept


def read_fasta(path, ambiguous="n"):
    """Records (tags None, no features) of a FASTA file; names are the ids."""
    return [Record(r.id, _sequence(r, path, ambiguous)) for r in _parse(path, "fasta")]


def read_genbank(path, ambiguous="n", unannotated="refuse"):
    """Labelled Records of a GenBank file (names are ACCESSION.VERSION ids): CDS, tRNA
    and rRNA features (other keys ignored; parts of a compound location that point
    into another record are left out; parts without a strand count as "+").
    DataError for a feature outside its sequence, and for a record without such
    features unless ``unannotated="skip"`` leaves it out."""
    records = []
    for r in _parse(path, "genbank"):
        name = r.id if r.id and r.id != "<unknown id>" else r.name
        sequence = _sequence(r, path, ambiguous)
        features = []
        for f in r.features:
            if f.type not in TYPES:
                continue
            label = f.qualifiers.get("locus_tag", f.qualifiers.get("gene", [""]))[0]
            what = f"{f.type} {label + ' ' if label else ''}"
            if f.location is None:
                raise DataError(path, f"record {name}: {what}has a location Biopython "
                                "cannot read")
            for part in f.location.parts:
                if part.ref:
                    continue
                start, end = int(part.start), int(part.end)
                if start < 0 or end > len(sequence) or start >= end:
                    raise DataError(path, f"record {name}: {what}at {start + 1}..{end} lies "
                                    f"outside the sequence ({len(sequence)} bp)")
                features.append(Feature(start, end, "-" if part.strand == -1 else "+", f.type))
        records.append(Record(name, sequence, None, features))
    return _labelled(records, path, unannotated)


def _gff3_features(path, lengths):
    """{name: [Feature]} of a GFF3 file's CDS/tRNA/rRNA lines (gffutils; 1-based
    inclusive -> 0-based half-open; stops at ##FASTA)."""
    _require("gffutils")
    from gffutils import constants, iterators

    _check_file(path)
    features = {name: [] for name in lengths}
    # An explicit dialect: gffutils then reads lazily, and current_item_number is the
    # line of the feature just read (no look-ahead for dialect detection).
    lines = iterators.DataIterator(path, dialect=constants.dialect)
    try:
        for gff in lines:
            line = lines.current_item_number + 1
            if gff.start is None or gff.end is None:
                raise DataError(path, "expected 9 tab-separated GFF3 columns with integer "
                                "start and end", line=line)
            if gff.featuretype not in TYPES:
                continue
            if gff.seqid not in lengths:
                raise DataError(path, f"sequence {gff.seqid!r} is not in the FASTA file",
                                line=line)
            features[gff.seqid].append(_located(path, line, gff.seqid, gff.start - 1, gff.end,
                                                gff.strand, gff.featuretype, lengths))
    except DataError:
        raise
    except (ValueError, UnicodeDecodeError) as e:
        # gffutils has read the bad line before failing: current_item_number is its index.
        raise DataError(path, f"not a GFF3 feature line ({e})",
                        line=(lines.current_item_number or 0) + 1) from None
    return features


def _bed_features(path, lengths):
    """{name: [Feature]} of a BED file with 6+ columns (chrom start end name score
    strand; 0-based half-open); type from the name column when it is CDS/tRNA/rRNA
    (any case), else CDS."""
    features = {name: [] for name in lengths}
    with _open_text(path) as handle:
        for line, text in enumerate(handle, 1):
            if not text.strip() or text.startswith(("#", "track", "browser")):
                continue
            columns = text.rstrip("\r\n").split("\t" if "\t" in text else None)
            if len(columns) < 6:
                raise DataError(path, f"expected 6 or more columns (chrom start end name "
                                f"score strand), found {len(columns)}", line=line)
            chrom, start, end, name, _, strand = columns[:6]
            if chrom not in lengths:
                raise DataError(path, f"sequence {chrom!r} is not in the FASTA file", line=line)
            for field, value in (("start", start), ("end", end)):
                if not value.strip().isdigit():
                    raise DataError(path, f"{value!r} is not a coordinate", line=line,
                                    field=field)
            kind = {t.lower(): t for t in TYPES}.get(name.strip().lower(), "CDS")
            features[chrom].append(_located(path, line, chrom, int(start), int(end),
                                            strand.strip(), kind, lengths))
    return features


def _located(path, line, name, start, end, strand, kind, lengths):
    """A Feature; DataError with the line when it is empty or outside the sequence.
    Unstranded features ("." or "?") count as "+"."""
    if not 0 <= start < end <= lengths[name]:
        raise DataError(path, f"{kind} {start + 1}..{end} lies outside sequence {name!r} "
                        f"({lengths[name]} bp) or is empty", line=line)
    return Feature(start, end, "-" if strand == "-" else "+", kind)


def read_fasta_annotated(fasta, annotation, ambiguous="n", unannotated="refuse"):
    """Labelled Records of a FASTA file and its annotation: GFF3 (``.gff``, ``.gff3``,
    read with gffutils) or BED6+ (``.bed``), optionally ``.gz``. DataError naming the
    annotation line for a sequence not in the FASTA file or a feature out of range;
    records without CDS/tRNA/rRNA features as in ``read_genbank``."""
    records = read_fasta(fasta, ambiguous)
    lengths = {}
    for r in records:
        if r.name in lengths:
            raise DataError(fasta, f"two records named {r.name}")
        lengths[r.name] = len(r.sequence)
    kind = annotation[:-3] if annotation.endswith(".gz") else annotation
    kind = os.path.splitext(kind)[1].lower()
    if kind in (".gff", ".gff3"):
        features = _gff3_features(annotation, lengths)
    elif kind == ".bed":
        features = _bed_features(annotation, lengths)
    else:
        raise DataError(annotation, "expected a .gff3/.gff or .bed annotation file")
    for r in records:
        r.features = features[r.name]
    return _labelled(records, annotation, unannotated)


def read_labelled_csv(path, ambiguous="n"):
    """(sequences, labels): lists of str of a CSV file with a header and the columns
    ``sequence`` and ``label``; sequences cleaned, labels stripped."""
    from pipelines.common import textio

    sequences, labels = [], []
    for row in textio.read_table(path, ("sequence", "label"), fmt="csv"):
        sequences.append(clean(row.fields["sequence"], path, None, ambiguous,
                               line=row.line, field="sequence"))
        label = row.fields["label"].strip()
        if not label:
            raise DataError(path, "the label is empty", line=row.line, field="label")
        labels.append(label)
    return sequences, labels


def read_uci_splice(path, ambiguous="n"):
    """(sequences, labels, names) of the UCI splice-junction file: a header ``Class,
    Donor, Sequence`` then ``label, name, sequence`` rows, fields padded with spaces
    (stripped); labels EI (exon-intron), IE (intron-exon) or N (neither)."""
    from pipelines.common import textio

    sequences, labels, names = [], [], []
    for row in textio.read_table(path, ("Class", "Donor", "Sequence"), fmt="csv"):
        label, name = row.fields["Class"].strip(), row.fields["Donor"].strip()
        if not label:
            raise DataError(path, "the label is empty", line=row.line, field="Class")
        sequences.append(clean(row.fields["Sequence"], path, None, ambiguous,
                               line=row.line, field="Sequence"))
        labels.append(label)
        names.append(name)
    return sequences, labels, names


# ------------------------------------------------------------------- mavenn data sets

MAVENN = {  # name: what a value is (sequence length)
    "mpsa": "percent spliced in (log10) of a 5' splice site (9 nt), measured by a "
            "massively parallel splicing assay",
    "sortseq": "mean expression bin (0-9) of a lac promoter variant (75 bp), measured by "
               "Sort-Seq",
}


def mavenn_file(name):
    """The path of mavenn's ``examples/datasets/<name>_data.csv.gz`` (the package is
    found, not imported: it imports the full tensorflow package)."""
    import importlib.util

    where = f"mavenn:{name}"
    if name not in MAVENN:
        raise DataError(where, f"unknown mavenn data set; expected one of {sorted(MAVENN)}")
    spec = importlib.util.find_spec("mavenn")
    if spec is None or not spec.origin:
        raise DataError(where, "needs the mavenn wheel's data files: pip install --no-deps "
                        "mavenn (--no-deps: mavenn itself requires the full tensorflow package)")
    path = os.path.join(os.path.dirname(spec.origin), "examples", "datasets",
                        f"{name}_data.csv.gz")
    if not os.path.exists(path):
        raise DataError(path, "no such file in the installed mavenn")
    return path


def read_mavenn(name, ambiguous="n"):
    """(sequences, values as str, splits) of a mavenn data set (``MAVENN``), RNA read as
    DNA (U -> T). ``mpsa``: the value is the column ``y``; ``sortseq``: the counts'
    mean bin sum_k k ct_k / sum_k ct_k. ``splits``: mavenn's own column ``set``
    (training / validation / test) as "train" / "valid" / "test"."""
    import csv

    path = mavenn_file(name)
    names = {"training": "train", "validation": "valid", "test": "test"}
    found, values, splits = [], [], []
    with gzip.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = csv.reader(f)
        header = next(rows, [])
        for line, row in enumerate(rows, start=2):
            fields = dict(zip(header, row))
            if fields.get("set") not in names or "x" not in fields:
                raise DataError(path, f"expected the columns set (training / validation / "
                                f"test) and x; found {header}", line=line)
            found.append(clean(fields["x"], path, None, ambiguous, line=line, field="x"))
            if name == "mpsa":
                values.append(fields["y"])
            else:
                counts = np.array([float(fields[f"ct_{k}"]) for k in range(10)])
                values.append(repr(float(counts @ np.arange(10) / max(counts.sum(), 1.0))))
            splits.append(names[fields["set"]])
    return found, values, splits


# -------------------------------------------------------------------- embedded genome


def default_cache_dir():
    """The user cache's dna folder (``pipelines.common.cache``)."""
    return cache.user_cache_dir("dna")


def genome_path():
    """The Corynebacterium diphtheriae NCTC 11397 chromosome (RefSeq NZ_LN831026.1,
    gzipped FASTA) shipped as test data in the pyrodigal wheel."""
    pyrodigal = _require("pyrodigal")
    from importlib import resources

    path = resources.files(pyrodigal) / "tests" / "data" / GENOME_FILE
    if not path.is_file():
        raise DataError(str(path), f"pyrodigal {pyrodigal.__version__} does not ship "
                        f"{GENOME_FILE}; {INSTALL}")
    return str(path)


def embedded_genome(cache_dir=None):
    """The C. diphtheriae chromosome (2,463,666 bp) as a labelled Record whose CDS
    features are pyrodigal's gene calls (single-genome mode: trained on this sequence,
    then ``find_genes``). These are PREDICTIONS, not curated annotation; there are no
    tRNA/rRNA features. Called once (seconds) and cached in ``cache_dir`` (default
    ``default_cache_dir()``) as ``cdiphtheriae-pyrodigal-<version>.npz`` (sequence
    bytes and feature arrays), written atomically."""
    pyrodigal = _require("pyrodigal")
    _require("Bio.SeqIO")
    folder = cache_dir if cache_dir is not None else default_cache_dir()
    cache = os.path.join(folder, f"cdiphtheriae-pyrodigal-{pyrodigal.__version__}.npz")
    if os.path.exists(cache):
        with np.load(cache) as f:
            sequence = f["sequence"].tobytes().decode("ascii")
            features = [Feature(int(s), int(e), STRANDS[int(d)], "CDS")
                        for s, e, d in zip(f["starts"], f["ends"], f["strands"])]
            name = str(f["name"])
    else:
        path = genome_path()
        (record,) = read_fasta(path)
        name, sequence = record.name, record.sequence
        finder = pyrodigal.GeneFinder(meta=False)
        finder.train(sequence)
        # pyrodigal's begin/end are 1-based inclusive, begin < end whatever the strand.
        features = sorted(Feature(g.begin - 1, g.end, "+" if g.strand == 1 else "-", "CDS")
                          for g in finder.find_genes(sequence))
        os.makedirs(folder, exist_ok=True)
        tmp = f"{cache}.tmp{os.getpid()}.npz"
        np.savez_compressed(
            tmp, name=np.array(name), sequence=np.frombuffer(sequence.encode("ascii"), np.uint8),
            starts=np.array([f.start for f in features], np.int64),
            ends=np.array([f.end for f in features], np.int64),
            strands=np.array([STRANDS.index(f.strand) for f in features], np.int8))
        os.replace(tmp, cache)
    return Record(name, sequence, tags_from_features(len(sequence), features), features)
