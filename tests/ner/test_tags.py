"""Tag schemes and entity-level scores, checked against seqeval (CoNLL semantics)."""

import random

import pytest
from seqeval.metrics import classification_report, f1_score
from seqeval.metrics.sequence_labeling import get_entities

from pipelines.ner import tags as tag_lib

TYPES = ("PER", "LOC", "ORG")


def random_bio(rng, n):
    """Random BIO sequences, including I- after O or another type (conlleval starts a chunk)."""
    return [rng.choice(["O", "O", "O"] + [f"{p}-{t}" for p in "BI" for t in TYPES])
            for _ in range(n)]


def test_entities_match_seqeval_on_random_sequences():
    rng = random.Random(0)
    for _ in range(500):
        tags = random_bio(rng, rng.randint(0, 12))
        ours = [(k, s, e - 1) for k, s, e in tag_lib.entities(tags)]
        assert sorted(ours) == sorted(get_entities(tags)), tags


def test_scores_match_seqeval_per_type_and_overall():
    rng = random.Random(1)
    gold = [random_bio(rng, rng.randint(1, 15)) for _ in range(300)]
    pred = [[t if rng.random() < 0.8 else rng.choice(["O", "B-PER", "I-LOC", "B-ORG"]) for t in g]
            for g in gold]
    ours = tag_lib.entity_scores(gold, pred)
    theirs = classification_report(gold, pred, output_dict=True, zero_division=0)
    for kind in TYPES:
        for key, their_key in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score"),
                               ("support", "support")):
            assert ours["per_type"][kind][key] == pytest.approx(theirs[kind][their_key]), (kind, key)
    assert ours["overall"]["f1"] == pytest.approx(f1_score(gold, pred))
    assert ours["overall"]["precision"] == pytest.approx(theirs["micro avg"]["precision"])


def test_a_span_counts_only_with_type_and_both_boundaries():
    gold = [["B-PER", "I-PER", "O", "B-LOC"]]
    assert tag_lib.entity_scores(gold, [["B-PER", "O", "O", "B-LOC"]])["per_type"]["PER"]["f1"] == 0
    assert tag_lib.entity_scores(gold, [["B-ORG", "I-ORG", "O", "B-LOC"]])["per_type"]["LOC"]["f1"] == 1
    assert tag_lib.entity_scores(gold, gold)["overall"]["f1"] == 1


def test_iobes_round_trip_and_repair():
    bio = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC", "I-LOC", "O", "B-ORG"]
    iobes = tag_lib.bio_to_iobes(bio)
    assert iobes == ["B-PER", "E-PER", "O", "S-LOC", "B-LOC", "I-LOC", "E-LOC", "O", "S-ORG"]
    assert tag_lib.iobes_to_bio(iobes) == bio
    iob1 = ["I-PER", "I-PER", "O", "I-LOC", "B-LOC", "I-ORG"]
    assert tag_lib.orphans(iob1) == [0, 3, 5]
    assert tag_lib.repair(iob1) == ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "B-ORG"]
    assert tag_lib.entities(iob1) == tag_lib.entities(tag_lib.repair(iob1))


def test_bad_tags_and_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="B_PER"):
        tag_lib.split_tag("B_PER")
    with pytest.raises(ValueError, match="3 predicted tags for 2 tokens"):
        tag_lib.entity_scores([["O", "O"]], [["O", "O", "O"]])
