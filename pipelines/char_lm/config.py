"""Language model configs: ``default`` (the main job), ``word``, ``shakespeare`` and
``small`` (tests)."""

import dataclasses
from typing import Annotated, Literal

from pipelines.common.config import AtLeast1, BaseConfig, NonNegative, Range


@dataclasses.dataclass(frozen=True)
class CharLMConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, train_file + valid_file (explicit
    splits instead), test_file, valid_fraction 0.1, cell "lstm", num_layers 1,
    learning_rate 2e-3, batch_size 64, epochs 10, patience 3, seed 0; and the defaults
    changed here.

    ``data``: "embedded" (pydoc_data.topics, the Python documentation prose) or one or
    more UTF-8 text files separated by commas, concatenated and split by position: the
    first 1 - valid_fraction of the characters train."""

    max_chars: Annotated[int, NonNegative] = 0  # 0 = the whole corpus; else only its first max_chars (tests)
    # Tokens: "char" (every character, case kept) or "word" (lowercased words and
    # punctuation, <eos> at sentence ends, the vocab_size most frequent, <unk> for the rest).
    level: Literal["char", "word"] = "char"
    vocab_size: int = 10000  # includes the 3 reserved ids (start/padding, [UNK], <eos>)
    # Windows of the token stream; carry_state: truncated BPTT, the state of batch k
    # starts batch k+1 (the batches are then laid out as contiguous rows).
    window: Annotated[int, AtLeast1] = 100
    carry_state: bool = False
    # Model: embedding -> zoo recurrent layers -> per-step softmax.
    embedding_dim: Annotated[int, AtLeast1] = 64
    units: int = 256
    dropout: float = 0.1
    # Optimization.
    clipnorm: float = 5.0  # global gradient norm clipping (exploding gradients)
    steps_per_epoch: Annotated[int, NonNegative] = 0  # 0 = one pass over the training windows
    # Samples shown after training.
    sample_length: Annotated[int, NonNegative] = 300
    temperature: Annotated[float, NonNegative] = 0.8
    top_k: Annotated[int, NonNegative] = 0
    top_p: Annotated[float, Range(0, 1, low_open=True)] = 1.0
    # Serving (the export's generate signature): the largest max_length a request may
    # ask for (more is an InvalidArgumentError), and how many of a prompt's last tokens
    # generation conditions on.
    serve_max_length: Annotated[int, AtLeast1] = 1000
    serve_max_prompt: Annotated[int, AtLeast1] = 2000


PRESETS = {
    "default": CharLMConfig(),
    # Word level on the same prose: 10,000-word vocabulary, sentence-sized windows.
    "word": CharLMConfig(level="word", window=35, embedding_dim=128, units=256, dropout=0.3,
                         epochs=10, sample_length=40),
    # The tiny-shakespeare benchmark's model (pass the file with --data): 2 x LSTM-512,
    # dropout 0.2, batch 128, Adam 4e-3: 1.534 nats/char in windows, 1.479 streamed,
    # after 30 CPU minutes (about 12 passes); see benchmarks/char_lm.py.
    "shakespeare": CharLMConfig(units=512, num_layers=2, dropout=0.2, batch_size=128,
                                learning_rate=4e-3, epochs=12, patience=3),
    # Tests: the first 20,000 characters, a tiny model, one epoch; seconds on 2 cores.
    "small": CharLMConfig(max_chars=20000, window=32, embedding_dim=8, units=16,
                          batch_size=16, epochs=1, dropout=0.0, sample_length=40),
}
