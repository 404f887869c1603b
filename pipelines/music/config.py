"""Music generation configs: ``default`` (piano roll of the Bach chorales, the main
job), ``melody`` (the soprano lines as events), ``folk`` (O'Neill's Irish tunes as
events), ``jsb`` (the JSB Chorales benchmark model) and ``small`` (tests)."""

import dataclasses
from typing import Annotated, Literal

from pipelines.common.config import AtLeast1, BaseConfig, Fraction, NonNegative, Range

Pitch = Annotated[int, Range(0, 127)]


@dataclasses.dataclass(frozen=True)
class MusicConfig(BaseConfig):
    """Inherited (``pipelines.common.config``): data, train_file + valid_file (+
    test_file) instead, valid_fraction, cell, units, num_layers, dropout, learning_rate,
    clipnorm, batch_size, epochs, patience, seed; and the defaults changed here.

    ``data``: "embedded" (the Bach chorales in the music21 wheel, parsed once and cached),
    a JSB-layout ``.json`` file (its own train/valid/test splits), a folder of MIDI /
    MusicXML / ABC / kern files, one such file (ABC books hold many tunes), or
    ``corpus:NAME``, a folder or file of the music21 corpus (``corpus:oneills1850``);
    pieces are split by piece (valid_fraction, test_fraction, seeded)."""

    test_fraction: Annotated[float, Fraction] = 0.1
    max_examples: Annotated[int, NonNegative] = 0  # > 0: a seeded subset of that many pieces (tests)
    # piano_roll: a multi-hot frame of pitches per grid step, a sigmoid per pitch;
    # melody: the top line of the first part as events (note-on p, note-off, no event),
    # a softmax per step (Magenta MelodyRNN's coding).
    encoding: Literal["piano_roll", "melody"] = "piano_roll"
    grid: Literal["quarter", "8th", "16th"] = "quarter"  # one frame or event per grid step
    # The model's pitches (MIDI numbers, inclusive): 21..108 is the piano's 88 keys, the
    # JSB benchmark's frame. Notes outside move by octaves into the range ("fold", with
    # a note of how many) or stop the run naming the file ("refuse").
    min_pitch: Pitch = 21
    max_pitch: Pitch = 108
    out_of_range: Literal["fold", "refuse"] = "fold"
    # Augmentation: "all" adds every transposition of the training pieces (-5..+6
    # semitones) that stays in range; "c" moves every piece of every split to C major /
    # A minor (an estimated key: a normalisation, so scores differ from "none").
    transpose: Literal["none", "all", "c"] = "all"  # chorales, test NLL/frame: 8.43 with "all", 8.83 without
    window: Annotated[int, NonNegative] = 0  # > 0: training pieces cut into windows of at most this many steps
    # Model: x<1> = 0, x<t> = y<t-1> -> dense/embedding -> zoo recurrent layers -> logits.
    embedding_dim: Annotated[int, AtLeast1] = 128
    units: Annotated[int, AtLeast1] = 256
    dropout: Annotated[float, Fraction] = 0.3
    clipnorm: Annotated[float, NonNegative] = 5.0  # global gradient norm
    learning_rate: Annotated[float, Range(0, low_open=True)] = 2e-3
    batch_size: Annotated[int, AtLeast1] = 16
    epochs: Annotated[int, AtLeast1] = 20  # with transpose="all": 12x the pieces an epoch
    patience: Annotated[int, NonNegative] = 4
    # Generation (the main job, predict, sample and the export's defaults).
    sample_steps: Annotated[int, NonNegative] = 64  # grid steps generated after the primer
    primer_bars: Annotated[int, NonNegative] = 2  # bars of a primer file the model continues
    temperature: Annotated[float, NonNegative] = 1.0
    top_k: Annotated[int, NonNegative] = 0  # melody: the k most likely events (0 = all)
    top_p: Annotated[float, Range(0, 1, low_open=True)] = 1.0  # melody: nucleus mass
    tempo: Annotated[float, Range(0, low_open=True)] = 80.0  # quarter notes a minute in written MIDI
    program: Annotated[int, Range(0, 127)] = 19  # General MIDI instrument of written MIDI (19: church organ)
    # Serving: the most steps one request may generate (more is an InvalidArgumentError)
    # and the most primer steps the model conditions on (the last ones).
    serve_max_steps: Annotated[int, AtLeast1] = 2048
    serve_max_primer: Annotated[int, AtLeast1] = 1024


PRESETS = {
    "default": MusicConfig(),
    # The soprano lines as 16th-note events over two octaves and a half (the
    # chorales' sopranos span 60..81), as MelodyRNN codes melodies.
    "melody": MusicConfig(encoding="melody", grid="16th", min_pitch=55, max_pitch=84,
                          embedding_dim=64, sample_steps=128),
    # One-voice folk tunes: O'Neill's Music of Ireland (1850), 2,009 tunes as ABC in the
    # music21 wheel (parsed once in about 4 minutes, then cached), as melody events on a
    # fiddle; plenty of pieces, so no transpositions.
    "folk": MusicConfig(data="corpus:oneills1850", encoding="melody", grid="16th",
                        min_pitch=55, max_pitch=88, transpose="none", embedding_dim=64,
                        epochs=10, sample_steps=128, tempo=110.0, program=40),
    # The JSB Chorales benchmark (pass the quarter-note JSON with --data): the default
    # model, trained longer (benchmarks/music.py trains it for a time budget).
    "jsb": MusicConfig(epochs=100, patience=10),
    # Tests: a few chorales, a tiny model, one epoch.
    "small": MusicConfig(max_examples=12, transpose="none", embedding_dim=8, units=16,
                         dropout=0.0, batch_size=4, epochs=1, patience=0, sample_steps=8),
}
