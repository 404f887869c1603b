"""Translation configs: ``default`` (human-readable dates -> ISO dates, the main job),
``numbers`` (number words -> digits), ``tatoeba`` (sentence pairs at word level, pass the
file with --data) and ``small`` (tests)."""

import dataclasses
from typing import Annotated, Literal, Optional

from pipelines.common.config import AtLeast1, BaseConfig, Fraction, NonNegative, Range, require


@dataclasses.dataclass(frozen=True)
class TranslationConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, cell, units, num_layers, dropout,
    learning_rate, clipnorm, batch_size, epochs, patience, seed; and the defaults
    changed here.

    ``data``: "dates" (dates rendered by babel from CLDR formats in several locales ->
    YYYY-MM-DD), "numbers" (num2words in several languages -> digits), a tab-separated
    pairs file (``source<TAB>target[<TAB>attribution]``, Tatoeba / manythings Anki
    files, also inside their ``.zip``), or ``--source-file`` + ``--target-file``
    (aligned lines). Files are split 90/5/5 by source sentence (seeded)."""

    data: str = "dates"  # or "embedded" (the same)
    source_file: Optional[str] = None
    target_file: Optional[str] = None
    reverse: bool = False  # translate target -> source (a file's second column to its first)
    valid_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.05
    test_fraction: Annotated[float, Fraction] = 0.05
    max_examples: Annotated[int, NonNegative] = 0  # > 0: a seeded subset of the pairs (tests)
    on_error: Literal["stop", "skip"] = "stop"  # a bad line of a pairs file: stop, or skip and count
    # Generated data: how many training pairs; the dates of test_years (inclusive) and the
    # babel format test_format appear in the test split only (never in training).
    num_examples: Annotated[int, AtLeast1] = 30000
    test_years: tuple[int, ...] = (1990, 1994)
    test_format: str = "yMMMEd"
    # Tokens: characters, words (punctuation split off) or subwords (WordPiece pieces of
    # the words, learned by tensorflow-text), with <start>/<end> and [UNK].
    level: Literal["char", "word", "subword"] = "char"
    vocab_size: Annotated[int, Range(5)] = 20000  # per side, reserved ids included
    max_source_length: Annotated[int, AtLeast1] = 64  # tokens; longer training pairs are dropped
    max_target_length: Annotated[int, AtLeast1] = 32
    # Model: a deep bidirectional zoo RNN encoder, a zoo RNN decoder of 2 * units started
    # from its final states, attention after the decoder step.
    attention: Literal["additive", "multiplicative", "none"] = "additive"
    attention_units: Annotated[int, AtLeast1] = 128
    embedding_dim: Annotated[int, AtLeast1] = 64
    units: Annotated[int, AtLeast1] = 128
    dropout: Annotated[float, Fraction] = 0.1
    label_smoothing: Annotated[float, Fraction] = 0.0
    learning_rate: Annotated[float, Range(0, low_open=True)] = 2e-3
    clipnorm: Annotated[float, NonNegative] = 5.0
    epochs: Annotated[int, AtLeast1] = 4  # dates: valid token accuracy 0.9999 after the first
    patience: Annotated[int, NonNegative] = 2
    # Decoding: beam search (1 = greedy) up to length_ratio * source tokens + length_extra
    # tokens, ranked by log P / ((5 + length) / 6)^length_penalty.
    beam_width: Annotated[int, AtLeast1] = 4
    length_penalty: Annotated[float, NonNegative] = 0.6
    length_ratio: Annotated[float, NonNegative] = 1.5
    length_extra: Annotated[int, NonNegative] = 10
    # Serving: source tokens read per sentence (the rest dropped, `truncated` says so);
    # the widest beam a request may ask for (beam_width is the signatures' default).
    serve_max_source: Annotated[int, AtLeast1] = 200
    serve_max_beam: Annotated[int, AtLeast1] = 16

    def __post_init__(self):
        super().__post_init__()
        require(self.beam_width <= self.serve_max_beam, "beam_width",
                f"a value <= serve_max_beam ({self.serve_max_beam})", self.beam_width)


PRESETS = {
    "default": TranslationConfig(),
    "numbers": TranslationConfig(data="numbers", max_source_length=120, max_target_length=12),
    # Sentence pairs (Tatoeba English -> French): words, a larger model.
    "tatoeba": TranslationConfig(data="fra-eng.zip", level="word", units=256, embedding_dim=256,
                                 attention_units=256, dropout=0.2, max_source_length=20,
                                 max_target_length=24, epochs=20, batch_size=64,
                                 vocab_size=15000),
    # Tests: a few hundred dates, a tiny model, one epoch.
    "small": TranslationConfig(num_examples=300, embedding_dim=8, units=8, attention_units=8,
                               dropout=0.0, batch_size=32, epochs=1, patience=0, beam_width=2),
}
