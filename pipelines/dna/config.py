"""DNA configs: ``default`` (per-base gene tags on the embedded bacterial chromosome, the
main job), ``splice`` (per-sequence: the UCI splice-junction layout, pass the file with
--data) and ``small`` (tests)."""

import dataclasses
from typing import Annotated, Literal, Optional

from pipelines.common.config import AtLeast1, BaseConfig, Fraction, NonNegative, Range, require


@dataclasses.dataclass(frozen=True)
class DNAConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, train_file + valid_file (+
    test_file) instead, valid_fraction, cell, units, num_layers, dropout, learning_rate,
    clipnorm, batch_size, epochs, patience, seed; and the defaults changed here.

    ``task``: "per_base" (a tag per base: BIO tags of CDS / tRNA / rRNA on either
    strand) or "per_sequence" (a label or a value per sequence). ``data`` for per_base:
    "embedded" (the Corynebacterium diphtheriae chromosome in the pyrodigal wheel,
    labelled by pyrodigal's gene calls: predictions, not curated annotation), a GenBank
    file or folder (.gb/.gbk), or a FASTA file with ``annotation`` (GFF3 or BED); for
    per_sequence: "embedded" or "mavenn:mpsa" (measured splice-site values in the mavenn
    wheel; ``pip install --no-deps mavenn``), "mavenn:sortseq", a CSV
    ``sequence,label`` or the UCI splice-junction layout."""

    task: Literal["per_base", "per_sequence"] = "per_base"
    data: str = "embedded"
    annotation: Optional[str] = None  # GFF3 / BED beside a FASTA --data
    ambiguous: Literal["n", "refuse"] = "n"  # IUPAC codes: read as N, or stop naming the base
    # Splits. per_base: records split by record; one record (a genome) by position: the
    # last test_fraction is the test region, the valid_fraction before it validates.
    # per_sequence: seeded, stratified by label.
    valid_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.1
    test_fraction: Annotated[float, Fraction] = 0.2
    max_examples: Annotated[int, NonNegative] = 0  # > 0: a seeded subset of windows (tests)
    # per_sequence cross-validation: fold >= 0 makes that fold of `folds` (seeded) the
    # test split, the rest train and validate.
    fold: Annotated[int, Range(-1)] = -1
    folds: Annotated[int, Range(2)] = 10
    # The tf.data chain: windows of `window` bases every `stride` bases (per_base),
    # reverse-complement augmentation (tags mirrored, strands swapped).
    window: Annotated[int, Range(16, 100000)] = 400
    stride: Annotated[int, AtLeast1] = 300
    reverse_complement: bool = True
    # Model: one-hot bases or a learned embedding, conv_layers 1-D convolutions
    # (conv_filters, kernel conv_kernel), a deep bidirectional zoo RNN, then a softmax or
    # CRF per base, or a pooled many-to-one head.
    encoding: Literal["one_hot", "embedding"] = "one_hot"
    embedding_dim: Annotated[int, AtLeast1] = 8
    conv_layers: Annotated[int, NonNegative] = 3
    conv_filters: Annotated[int, AtLeast1] = 64
    conv_kernel: Annotated[int, AtLeast1] = 9
    conv_dilation: Annotated[int, AtLeast1] = 3  # layer i dilated by conv_dilation**i
    units: Annotated[int, AtLeast1] = 64
    num_layers: Annotated[int, AtLeast1] = 1
    dropout: Annotated[float, Fraction] = 0.1
    head: Literal["softmax", "crf"] = "softmax"
    # per_sequence readout: pooled over the bases, the last state, or "flatten" (every
    # position's state, a weight per position: sequences of one length only; the
    # export refuses other lengths with an InvalidArgumentError).
    pooling: Literal["max", "mean", "mean_max", "last", "flatten"] = "mean_max"
    learning_rate: Annotated[float, Range(0, low_open=True)] = 2e-3
    clipnorm: Annotated[float, NonNegative] = 5.0
    batch_size: Annotated[int, AtLeast1] = 32
    epochs: Annotated[int, AtLeast1] = 10
    patience: Annotated[int, NonNegative] = 3
    # ensemble > 1 trains that many models one after the other (seeds seed, seed+1, ...;
    # ``train.fit_ensemble``); the saved model averages their outputs (probabilities,
    # values, or CRF potentials).
    ensemble: Annotated[int, AtLeast1] = 1
    # Serving: windows run per call (bounds memory for a long sequence).
    serve_batch_windows: Annotated[int, AtLeast1] = 256

    def __post_init__(self):
        super().__post_init__()
        require(self.fold < self.folds, "fold", f"a value < folds ({self.folds})", self.fold)
        require(self.stride <= self.window, "stride", f"a value <= window ({self.window})",
                self.stride)


PRESETS = {
    # Per-base gene tags: three convolutions of 64 (kernel 9, dilations 1, 3, 9: 105
    # bases, enough to see the codon phase) under one bidirectional LSTM of 64, and a CRF
    # (gene structure as tag transitions: 488 genes predicted for 440 true, against 2,477
    # with a softmax); with one convolution and two LSTM layers the model never told the
    # strands apart (RESULTS).
    "default": DNAConfig(head="crf"),
    # UCI splice junctions (EI / IE / N), 60 bases a sequence: many-to-one. A weight per
    # position (flatten), no convolution, a BiLSTM of 32, an ensemble of 3: 96.7% over 10
    # folds (one model: 96.4%; 96.0% with 64 units; 94.9% pooled with a convolution on
    # folds 0-2; RESULTS "DNA quality").
    "splice": DNAConfig(task="per_sequence", data="", conv_layers=0, conv_filters=64,
                        conv_kernel=7, units=32, num_layers=1, dropout=0.5, epochs=40,
                        patience=6, test_fraction=0.1, pooling="flatten", ensemble=3),
    # Tests: a slice of the genome, a tiny model, one epoch.
    "small": DNAConfig(window=64, stride=48, max_examples=300, conv_layers=1, conv_filters=8,
                       units=8, num_layers=1, dropout=0.0, batch_size=16, epochs=1, patience=0),
}
