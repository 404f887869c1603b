"""Speech recognition configs: ``default`` (synthetic spoken digits and numbers, the
main job), ``fsdd`` (the Free Spoken Digit Dataset layout: its official split by take,
pass the folder with --data) and ``small`` (tests)."""

import dataclasses
from typing import Annotated, Literal, Optional

from pipelines.common.config import AtLeast1, BaseConfig, Fraction, NonNegative, Range, require

ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"  # the characters of transcripts (data.py)


@dataclasses.dataclass(frozen=True)
class SpeechConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, train_file + valid_file (+
    test_file) instead, valid_fraction, cell, units, num_layers, dropout, learning_rate,
    clipnorm, batch_size, epochs, patience, seed; and the defaults changed here.

    ``data``: "synthetic" (= "embedded": digit strings and numbers spoken by eSpeak NG
    voices, generated once into the user cache), a folder of WAV files (a ``*.csv``
    manifest ``path,transcript[,speaker]``, Free Spoken Digit Dataset names
    ``{digit}_{speaker}_{take}.wav``, or LibriSpeech ``*.trans.txt`` files; symbolic
    links followed), or ``tfds:speech_commands`` / ``tfds:librispeech`` read from
    ``tfds_data_dir``."""

    data: str = "synthetic"
    tfds_data_dir: Optional[str] = None
    # Splits: "speaker" puts every speaker (voice) in one split only when names give
    # speakers (else by utterance); "utterance" ignores speakers; "fsdd_takes" is the
    # FSDD protocol (takes 0-4 test, the rest train/valid). holdout_speaker: that
    # speaker alone is the test split (train and valid hold the others).
    split: Literal["speaker", "utterance", "fsdd_takes"] = "speaker"
    holdout_speaker: str = ""
    valid_fraction: Annotated[float, Range(0, 1, low_open=True, high_open=True)] = 0.1
    test_fraction: Annotated[float, Fraction] = 0.1
    max_examples: Annotated[int, NonNegative] = 0  # > 0: a seeded subset (tests)
    on_error: Literal["stop", "skip"] = "stop"  # a bad file: stop naming it, or skip and count
    synthetic_count: Annotated[int, AtLeast1] = 3000  # generated clips (data=synthetic)
    # Features, in the graph (tf.data chain and export alike): WAV -> mono -> resampled
    # to sample_rate -> log-mel (n_mels, frames of frame_ms every step_ms) -> per
    # utterance mean 0 / std 1 per mel bin. Clips longer than max_seconds: the first
    # max_seconds (training drops them; the export says `truncated`).
    sample_rate: Annotated[int, Range(4000, 48000)] = 8000
    n_mels: Annotated[int, Range(8, 128)] = 40
    frame_ms: Annotated[float, Range(5, 100)] = 25.0
    step_ms: Annotated[float, Range(2.5, 50)] = 10.0
    max_seconds: Annotated[float, Range(0.5, 3600)] = 20.0
    # SpecAugment in training (0 = off): this many time masks of at most time_mask
    # frames (and at most time_ratio of the utterance) and frequency masks of at most
    # freq_mask mel bins per utterance.
    time_masks: Annotated[int, NonNegative] = 2
    time_mask: Annotated[int, NonNegative] = 10
    time_ratio: Annotated[float, Range(0, 1)] = 0.1
    freq_masks: Annotated[int, NonNegative] = 2
    freq_mask: Annotated[int, NonNegative] = 6
    # Speed perturbation in training: the training clips once more at each of these
    # speeds (tempo and pitch; e.g. 0.9,1.1 triples the training set). () = off.
    speed_perturb: tuple[float, ...] = ()
    # Model: conv_layers 1-D convolutions (kernel 5, conv_filters; the first
    # log2(time_reduction) with stride 2) shortening time by time_reduction, then a deep
    # bidirectional zoo RNN, a softmax over the characters and the CTC blank.
    conv_layers: Annotated[int, NonNegative] = 2
    conv_filters: Annotated[int, AtLeast1] = 128
    time_reduction: Annotated[int, Range(1, 4)] = 2  # 1, 2 or 4
    units: Annotated[int, AtLeast1] = 128
    num_layers: Annotated[int, AtLeast1] = 2
    dropout: Annotated[float, Fraction] = 0.2
    # ensemble > 1: that many models trained one after the other (seeds seed, seed+1,
    # ...); the exported model averages their frame posteriors (``train.fit_ensemble``).
    ensemble: Annotated[int, AtLeast1] = 1
    learning_rate: Annotated[float, Range(0, low_open=True)] = 2e-3
    clipnorm: Annotated[float, NonNegative] = 5.0
    batch_size: Annotated[int, AtLeast1] = 32
    epochs: Annotated[int, AtLeast1] = 30
    patience: Annotated[int, NonNegative] = 5
    # Decoding (in the graph): "greedy" (best path) or "beam" (CTC prefix beam search,
    # beam_width); lm_workdir: a char_lm run whose model rescores the beam's top_paths
    # as log P_ctc + lm_weight * log P_lm(text) + length_bonus * characters. "choices":
    # a closed set of transcripts (isolated words, commands): the one of `choices` (or,
    # when empty, of the distinct training transcripts) with the highest CTC probability.
    decoder: Literal["greedy", "beam", "choices"] = "beam"
    choices: tuple[str, ...] = ()
    beam_width: Annotated[int, AtLeast1] = 16
    top_paths: Annotated[int, Range(1, 16)] = 4  # <= beam_width
    lm_workdir: Optional[str] = None
    lm_weight: Annotated[float, NonNegative] = 0.3
    length_bonus: float = 0.0

    def __post_init__(self):
        super().__post_init__()
        require(self.time_reduction in (1, 2, 4), "time_reduction", "one of [1, 2, 4]",
                self.time_reduction)
        strided = {1: 0, 2: 1, 4: 2}[self.time_reduction]
        require(self.conv_layers >= strided, "conv_layers",
                f"a value >= {strided} with time_reduction={self.time_reduction}", self.conv_layers)
        outside = sorted(set("".join(self.choices)) - set(ALPHABET))
        require(not outside, "choices", f"transcripts of the alphabet {ALPHABET!r}",
                self.choices)
        require(all(c.strip() for c in self.choices), "choices", "non-empty transcripts",
                self.choices)
        require(all(0.5 <= v <= 2.0 and v != 1.0 for v in self.speed_perturb),
                "speed_perturb", "speeds in [0.5, 2] other than 1", self.speed_perturb)
        require(self.top_paths <= self.beam_width, "top_paths",
                f"a value <= beam_width ({self.beam_width})", self.top_paths)


PRESETS = {
    "default": SpeechConfig(),
    # The Free Spoken Digit Dataset folder: its official split (takes 0-4 are the test).
    "fsdd": SpeechConfig(data="", split="fsdd_takes", epochs=40),
    # Tests: a few dozen clips, a tiny model, one epoch.
    "small": SpeechConfig(synthetic_count=60, n_mels=16, conv_layers=1, conv_filters=8,
                          units=8, num_layers=1, dropout=0.0, batch_size=8, epochs=1,
                          patience=0, beam_width=4, top_paths=2, time_masks=1, freq_masks=1),
}
