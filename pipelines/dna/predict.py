"""``predict`` for DNA: ``--text SEQUENCE`` or ``--file`` (a FASTA file: one request row
per record; any other file: one sequence a line). A per-base model's genes are written
as GFF3 into ``--out`` (one file per sequence, 1-based inclusive coordinates)."""

import os

import numpy as np

from pipelines.common import inputs, textio
from pipelines.common.task import PredictInput

FASTA = (".fa", ".fasta", ".fna", ".fa.gz", ".fasta.gz", ".fna.gz")


def read_file(path):
    """[(name, sequence)] of a FASTA file (records) or a text file (lines)."""
    if not os.path.isfile(path):
        raise textio.DataError(path, "no such file")
    if path.lower().endswith(FASTA):
        from pipelines.dna import sequences

        return [(r.name, r.sequence) for r in sequences.read_fasta(path)]
    return [(f"line{i}", line.strip())
            for i, line in enumerate(textio.read_text(path).splitlines(), 1) if line.strip()]


def feed(items):
    return {"sequence": np.array([s for _, s in items], dtype=object).reshape(len(items))}


def show(item):
    name, sequence = item
    return inputs.shorten(sequence if name == "sequence" else f"{name}: {sequence}")


def gff3(name, row):
    """GFF3 text of one prediction row's spans (source seqzoo, 1-based, end inclusive)."""
    lines = ["##gff-version 3", f"##sequence-region {name} 1 {int(row['length'])}"]
    for k in range(int(row["num_spans"])):
        kind = row["span_type"][k].decode()
        lines.append("\t".join([name, "seqzoo", kind, str(int(row["span_start"][k]) + 1),
                                str(int(row["span_end"][k])), ".", row["span_strand"][k].decode(),
                                "0" if kind == "CDS" else ".", f"ID={name}_{kind}{k + 1}"]))
    return "\n".join(lines) + "\n"


def bind(config, meta):
    """The predict reader of one trained model: per-base models also write GFF3."""

    def save(row, item, out_dir, index):
        os.makedirs(out_dir, exist_ok=True)
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in item[0]) or "sequence"
        path = os.path.join(out_dir, f"{index + 1:02d}-{name}.gff3")
        with open(path, "w") as f:
            f.write(gff3(item[0], row))
        return [path]

    return PredictInput(endpoint="serving_default",
                        read_text=lambda value: ("sequence", value),
                        read_file=read_file, feed=feed, show=show,
                        save=save if meta.get("task") == "per_base" else None)
