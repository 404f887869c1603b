"""Tag schemes, entity spans and entity-level scores (plain Python, no TensorFlow).

A tag is ``O`` or ``<prefix>-<type>``: BIO (IOB2) uses B- (begins an entity) and I-
(inside); IOBES adds E- (ends) and S- (a one-token entity). The pipeline reads either,
works in BIO and may train in IOBES (``train_scheme``).

Entity spans follow CoNLL's conlleval: an entity starts at B-X, or at I-X after O or
after a tag of another type; it continues over I-X tokens of the same type. A predicted
entity counts only if its type and both boundaries match a gold one. ``entities``
returns ``(type, start, end)`` with ``end`` exclusive.
"""

import collections

PREFIXES = {"bio": ("B", "I"), "iobes": ("B", "I", "E", "S")}


def split_tag(tag):
    """``("O", None)`` or ``(prefix, type)``; ValueError for anything else."""
    if tag == "O":
        return "O", None
    prefix, sep, kind = tag.partition("-")
    if not sep or not kind or prefix not in PREFIXES["iobes"]:
        raise ValueError(f"Expected 'O' or B-/I-/E-/S-<type>. Received: tag={tag!r}")
    return prefix, kind


def detect_scheme(tag_lists):
    """'iobes' if any E-/S- tag occurs, else 'bio'."""
    for tags in tag_lists:
        for tag in tags:
            if tag[:2] in ("E-", "S-"):
                return "iobes"
    return "bio"


def iobes_to_bio(tags):
    return ["B" + t[1:] if t[:2] == "S-" else "I" + t[1:] if t[:2] == "E-" else t for t in tags]


def bio_to_iobes(tags):
    """BIO (IOB2, no orphan I-) -> IOBES."""
    out = []
    for i, tag in enumerate(tags):
        if tag == "O":
            out.append(tag)
            continue
        prefix, kind = split_tag(tag)
        continues = i + 1 < len(tags) and tags[i + 1] == f"I-{kind}"
        if prefix == "B":
            out.append(f"B-{kind}" if continues else f"S-{kind}")
        else:
            out.append(f"I-{kind}" if continues else f"E-{kind}")
    return out


def orphans(tags):
    """Positions of I- tags that do not continue an entity of their type (BIO)."""
    found, previous = [], None
    for i, tag in enumerate(tags):
        if tag[:2] == "I-" and previous != tag[2:]:
            found.append(i)
        previous = None if tag == "O" else tag[2:]
    return found


def repair(tags):
    """BIO tags with every orphan I-X made B-X (IOB1 -> IOB2)."""
    tags = list(tags)
    for i in orphans(tags):
        tags[i] = "B" + tags[i][1:]
    return tags


def entities(tags):
    """``[(type, start, end)]`` of a BIO tag sequence, conlleval's way (end exclusive)."""
    spans, start, kind = [], None, None
    for i, tag in enumerate(list(tags) + ["O"]):
        prefix, this = split_tag(tag) if tag != "O" else ("O", None)
        if kind is not None and (prefix != "I" or this != kind):
            spans.append((kind, start, i))
            kind = None
        if prefix != "O" and kind is None:
            start, kind = i, this
    return spans


def entity_scores(gold, predicted):
    """Entity-level precision/recall/F1 per type and overall (micro).

    Args:
        gold, predicted: lists of BIO tag sequences, pairwise of equal length.
    Returns ``{"per_type": {type: {precision, recall, f1, support}}, "overall": {...}}``;
    ``support`` counts gold entities.
    """
    if len(gold) != len(predicted):
        raise ValueError(f"Expected as many predicted as gold sentences. Received: "
                         f"{len(predicted)} and {len(gold)}")
    counts = collections.defaultdict(lambda: [0, 0, 0])  # type -> [correct, predicted, gold]
    for n, (g, p) in enumerate(zip(gold, predicted)):
        if len(g) != len(p):
            raise ValueError(f"Sentence {n}: {len(p)} predicted tags for {len(g)} tokens")
        gs, ps = set(entities(g)), set(entities(p))
        for span in gs:
            counts[span[0]][2] += 1
        for span in ps:
            counts[span[0]][1] += 1
            counts[span[0]][0] += span in gs
    per_type = {kind: _prf(*counts[kind]) for kind in sorted(counts)}
    total = [sum(c[i] for c in counts.values()) for i in range(3)]
    return {"per_type": per_type, "overall": _prf(*total)}


def _prf(correct, predicted, gold):
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "support": gold}
