"""Music data: pieces of notes -> piano-roll frames or melody events -> tf.data batches.

One example is a whole piece (or a window of one) on a grid of ``steps_per_quarter``
steps a quarter note, as the course's one-to-many model reads it:

* ``piano_roll``: y (T, P) float32 multi-hot frames, frame t holding the pitches
  min_pitch..max_pitch sounding at grid point t (a note shorter than a grid step that
  covers no grid point is dropped, as in the JSB Chorales files);
* ``melody``: y (T,) int32 events of the top line of the first part (MelodyRNN's
  coding): ``NO_EVENT`` (1), ``NOTE_OFF`` (2), note-on of pitch p (3 + p - min_pitch);
  id 0 is the start token x<1> and padding.

Batches are ``(x, y, w)``: x<1> = 0, x<t> = y<t-1> (the model's own output fed back),
``w`` (T,) 1 on the piece's steps, 0 on padding (the loss's sample weight).

Where pieces come from (``read_pieces``): the Bach chorales of the music21 wheel
(``corpus.chorales.Iterator()``, parsed once and cached in the user cache directory,
keyed by the music21 version), MIDI files (pretty_midi), MusicXML / ABC / kern files
(music21), folders of these (bad files skipped and listed), and the JSB JSON layout
``{"train": [[[pitches at t0], [pitches at t1], ...], ...], "valid": ..., "test": ...}``
(already frames: read as one note per pitch and frame).

A piece is ``Piece(name, notes)``: notes (n, 4) float64 rows (pitch, start, end, part)
in quarter notes from the piece's start.
"""

import dataclasses
import json
import os
import sys

import numpy as np

from pipelines.common import cache
from pipelines.common.textio import DataError

PAD_ID, NO_EVENT, NOTE_OFF, FIRST_PITCH_ID = 0, 1, 2, 3
# The export's event coding (Magenta MelodyRNN's): note-on pitches 0..127 and these.
MIDI_NO_EVENT, MIDI_NOTE_OFF = -2, -1
STEPS_PER_QUARTER = {"quarter": 1, "8th": 2, "16th": 4}
MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".xml", ".musicxml", ".mxl", ".abc", ".krn")
INSTALL = "the music pipeline needs its extra: pip install 'seqzoo[music]'"
KEY_SHIFTS = range(-5, 7)  # transpositions: every key once, the smallest moves


@dataclasses.dataclass(frozen=True)
class Piece:
    name: str
    notes: np.ndarray  # (n, 4): pitch, start, end (quarter notes), part

    @property
    def end(self):
        return float(self.notes[:, 2].max()) if len(self.notes) else 0.0


def _notes(rows):
    return np.asarray(rows, np.float64).reshape(-1, 4)


def _require(module):
    """Imports ``module`` (music21, pretty_midi) or says in one line what to install."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module, INSTALL) from None


# ------------------------------------------------------------------------------- reading


def score_notes(score):
    """A music21 score (or part) -> notes (n, 4): ties merged, grace notes and rests
    dropped, offsets in quarter notes from the start."""
    music21 = _require("music21")
    parts = list(score.parts) if isinstance(score, music21.stream.Score) and score.parts else [score]
    rows = []
    for index, part in enumerate(parts):
        for element in part.stripTies().flatten().notes:
            length = float(element.quarterLength)
            if length <= 0:
                continue
            start = float(element.offset)
            rows += [(p.midi, start, start + length, index) for p in element.pitches]
    return _notes(rows)


def read_score(path):
    """Pieces of a MusicXML / ABC / kern file (an ABC book or an opus gives several)."""
    music21 = _require("music21")
    try:
        parsed = music21.converter.parse(path)
    except Exception as e:  # noqa: BLE001 -- music21 raises many kinds on a bad file
        raise DataError(path, f"not a readable score ({type(e).__name__}: {_short(e)})") from None
    scores = list(parsed.scores) if isinstance(parsed, music21.stream.Opus) else [parsed]
    base = os.path.basename(path)
    pieces = [Piece(base if len(scores) == 1 else f"{base}#{i + 1}", score_notes(s))
              for i, s in enumerate(scores)]
    return _with_notes(path, pieces)


def read_midi(path):
    """One piece of a MIDI file: every note of every non-drum instrument (part = the
    instrument's index), times in quarter notes through the file's tempo map."""
    pretty_midi = _require("pretty_midi")
    try:
        midi = pretty_midi.PrettyMIDI(path)
    except Exception as e:  # noqa: BLE001 -- mido/pretty_midi raise many kinds
        raise DataError(path, f"not a readable MIDI file ({type(e).__name__}: {_short(e)})") from None
    quarters = lambda seconds: midi.time_to_tick(seconds) / midi.resolution  # noqa: E731
    rows = [(n.pitch, quarters(n.start), quarters(n.end), i)
            for i, inst in enumerate(i for i in midi.instruments if not i.is_drum)
            for n in inst.notes if n.end > n.start]
    return _with_notes(path, [Piece(os.path.basename(path), _notes(rows))])


def _with_notes(path, pieces):
    kept = [p for p in pieces if len(p.notes)]
    if not kept:
        raise DataError(path, "no notes")
    return kept


def _short(error, width=120):
    text = " ".join(str(error).split())
    return text if len(text) <= width else text[: width - 3] + "..."


def read_file(path):
    """The pieces of one MIDI / MusicXML / ABC / kern file."""
    if not os.path.exists(path):
        raise DataError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise DataError(path, "the file is empty")
    lower = path.lower()
    if lower.endswith(MIDI_SUFFIXES):
        return read_midi(path)
    if lower.endswith(SCORE_SUFFIXES):
        return read_score(path)
    raise DataError(path, "expected a .json (JSB layout), MIDI (.mid), MusicXML (.xml, .mxl), "
                    "ABC (.abc) or kern (.krn) file, or a folder of them")


def read_folder(path, progress=None):
    """Every music file under ``path`` (symbolic links followed, sorted): (pieces,
    skipped) where skipped lists "file: reason" for each unreadable file;
    ``progress(files done, files)`` is called after each file."""
    files = sorted(os.path.join(root, name) for root, _, names in os.walk(path, followlinks=True)
                   for name in names if name.lower().endswith(MIDI_SUFFIXES + SCORE_SUFFIXES))
    if not files:
        raise DataError(path, "no MIDI, MusicXML, ABC or kern files in this folder")
    pieces, skipped = [], []
    for done, file in enumerate(files, 1):
        try:
            pieces += read_file(file)
        except DataError as e:
            if e.path in ("music21", "pretty_midi"):
                raise
            skipped.append(str(e))
        if progress:
            progress(done, len(files))
    if not pieces:
        raise DataError(path, f"no readable piece in {len(files)} files (first: {skipped[0]})")
    return pieces, skipped


def read_jsb(path):
    """{split: [Piece]} of a JSB-layout JSON file; frame t of the file becomes notes
    [t, t + 1) (in grid steps, read as quarter notes: render with grid "quarter" to get
    the file's frames back, whatever grid the file was made at)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
        if not raw.strip():
            raise DataError(path, "the file is empty")
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise DataError(path, f"not JSON ({_short(e)})") from None
    if not isinstance(data, dict) or "train" not in data:
        raise DataError(path, 'expected the JSB layout {"train": [[[pitches at t0], ...], ...], '
                        '"valid": ..., "test": ...}')
    splits = {}
    for split, pieces in data.items():
        if split not in ("train", "valid", "test"):
            continue
        if not isinstance(pieces, list):
            raise DataError(path, f"{split!r} is not a list of pieces", field=split)
        out = []
        for i, frames in enumerate(pieces):
            where = f"{split}[{i}]"
            if not isinstance(frames, list):
                raise DataError(path, "a piece must be a list of frames", field=where)
            rows = []
            for t, frame in enumerate(frames):
                if not isinstance(frame, list) or not all(
                        isinstance(p, (int, float)) and not isinstance(p, bool) for p in frame):
                    raise DataError(path, f"frame {t} must be a list of MIDI pitches", field=where)
                rows += [(p, t, t + 1, 0) for p in frame if p >= 0]  # -1: a silent voice
            bad = [p for p, *_ in rows if not 0 <= p <= 127 or p != int(p)]
            if bad:
                raise DataError(path, f"pitch {bad[0]!r} is not a MIDI pitch (0..127)", field=where)
            if frames:
                out.append(Piece(f"{split}[{i}]", _notes(rows)))
        splits[split] = out
    if not splits.get("train"):
        raise DataError(path, "no training pieces", field="train")
    return splits


# ---------------------------------------------------------------------------- chorales


def cache_dir():
    """The user cache's music folder (``pipelines.common.cache``)."""
    return cache.user_cache_dir("music")


def chorales(limit=0, progress=None):
    """The Bach chorales of the music21 wheel as pieces (``limit`` > 0: the first
    ``limit`` in the corpus order). Parsed once (about 1-3 minutes for all 371) and
    cached (``cached``); ``progress(done, total)`` is called while parsing."""
    music21 = _require("music21")
    every = list(music21.corpus.chorales.Iterator(returnType="filename"))
    names = every[:limit] if limit else every

    def parse():
        pieces = []
        for i, name in enumerate(names):
            pieces.append(Piece(name, score_notes(music21.corpus.parse(name))))
            if progress:
                progress(i + 1, len(names))
        return pieces, []

    tag = "all" if len(names) == len(every) else f"first{len(names)}"
    return cached(f"chorales-{tag}", parse)[0]


def cached(tag, parse):
    """``parse() -> (pieces, skipped)``, run once: the result is kept in
    ``cache_dir()/<tag>-music21-<version>.npz`` (written atomically) and read back
    from there on later calls."""
    music21 = _require("music21")
    path = os.path.join(cache_dir(), f"{tag}-music21-{music21.__version__}.npz")
    if os.path.exists(path):
        with np.load(path) as f:
            notes = np.split(f["notes"], np.cumsum(f["lengths"])[:-1])
            return ([Piece(str(n), x) for n, x in zip(f["names"], notes)],
                    [str(s) for s in f["skipped"]])
    pieces, skipped = parse()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}.npz"
    np.savez_compressed(tmp, names=np.array([p.name for p in pieces]),
                        lengths=np.array([len(p.notes) for p in pieces]),
                        notes=np.concatenate([p.notes for p in pieces]),
                        skipped=np.array(skipped, dtype=str))
    os.replace(tmp, path)
    return pieces, skipped


def _progress(done, total, what="the music21 chorales"):
    """Parsing progress on stderr: one updating line on a terminal, else a line every 50."""
    line = f"parsing {what} (once, then cached): {done}/{total}"
    if sys.stderr.isatty():
        print("\r" + line, end="\n" if done == total else "", file=sys.stderr, flush=True)
    elif done == total or done % 50 == 0:
        print(line, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ pitches


def fold(pitches, low, high):
    """Pitches moved by whole octaves into [low, high] (high - low >= 11)."""
    pitches = np.asarray(pitches)
    below = np.ceil(np.maximum(low - pitches, 0) / 12) * 12
    above = np.ceil(np.maximum(pitches - high, 0) / 12) * 12
    return pitches + below - above


def fit_range(piece, config, source):
    """The piece with its pitches inside the config's range: (piece, number of notes
    moved). ``out_of_range="refuse"`` raises DataError naming ``source`` instead."""
    pitch = piece.notes[:, 0]
    outside = (pitch < config.min_pitch) | (pitch > config.max_pitch)
    if not outside.any():
        return piece, 0
    if config.out_of_range == "refuse":
        first = int(np.argmax(outside))
        raise DataError(source, f"{piece.name}: pitch {int(pitch[first])} at quarter "
                        f"{piece.notes[first, 1]:g} is outside the model's range "
                        f"{config.min_pitch}..{config.max_pitch} (--set out_of_range=fold "
                        "moves such notes by octaves)")
    notes = piece.notes.copy()
    notes[:, 0] = fold(pitch, config.min_pitch, config.max_pitch)
    return Piece(piece.name, notes), int(outside.sum())


MAJOR = np.array([6.35, 2.23, 3.48, 2.33, 4.38, 4.09, 2.52, 5.19, 2.39, 3.66, 2.29, 2.88])
MINOR = np.array([6.33, 2.68, 3.52, 5.38, 2.60, 3.53, 2.54, 4.75, 3.98, 2.69, 3.34, 3.17])


def key_shift(notes):
    """The transposition (-5..+6 semitones) taking the piece to C major or A minor: the
    key is the best Krumhansl-Kessler profile correlation of the duration-weighted
    pitch classes."""
    weights = np.bincount(notes[:, 0].astype(int) % 12, weights=notes[:, 2] - notes[:, 1],
                          minlength=12)
    best, tonic_pc = -np.inf, 0
    for tonic in range(12):
        for profile, target in ((MAJOR, 0), (MINOR, 9)):
            score = np.corrcoef(weights, np.roll(profile, tonic))[0, 1]
            if score > best:
                best, tonic_pc = score, (target - tonic) % 12
    return tonic_pc - 12 if tonic_pc > 6 else tonic_pc


def transpose(piece, shift, name=None):
    notes = piece.notes.copy()
    notes[:, 0] += shift
    return Piece(name or piece.name, notes)


def augment(pieces, config):
    """``transpose="all"``: every piece in each transposition of KEY_SHIFTS that stays
    in the model's range."""
    out = []
    for piece in pieces:
        low, high = piece.notes[:, 0].min(), piece.notes[:, 0].max()
        out += [transpose(piece, s, f"{piece.name}{s:+d}" if s else None) for s in KEY_SHIFTS
                if low + s >= config.min_pitch and high + s <= config.max_pitch]
    return out


# ----------------------------------------------------------------------------- encodings


def steps_per_quarter(config):
    return STEPS_PER_QUARTER[config.grid]


def num_steps(notes, per_quarter):
    return int(np.ceil(notes[:, 2].max() * per_quarter - 1e-6)) if len(notes) else 0


def piano_roll(notes, per_quarter, low, high, steps=None):
    """(T, high - low + 1) float32: frame t has the pitches sounding at grid point
    t / per_quarter (start <= t / per_quarter < end). Pitches outside are ignored."""
    steps = num_steps(notes, per_quarter) if steps is None else steps
    roll = np.zeros((steps, high - low + 1), np.float32)
    for pitch, start, end, _ in notes:
        if low <= pitch <= high:
            first = int(np.ceil(start * per_quarter - 1e-6))
            last = int(np.ceil(end * per_quarter - 1e-6))
            roll[first:min(last, steps), int(pitch) - low] = 1.0
    return roll


def melody_line(piece):
    """The piece's first part (the soprano of a chorale, a MIDI file's first instrument)."""
    notes = piece.notes
    return Piece(piece.name, notes[notes[:, 3] == notes[:, 3].min()] if len(notes) else notes)


def melody_events(notes, per_quarter, steps=None):
    """(T,) int32 MIDI events (MIDI_NO_EVENT, MIDI_NOTE_OFF, pitch 0..127) of the top
    line of part 0: at each onset step the highest pitch starting there; a note-off
    where a note ends before the next onset."""
    line = melody_line(Piece("", notes)).notes
    steps = num_steps(line, per_quarter) if steps is None else steps
    events = np.full(steps, MIDI_NO_EVENT, np.int32)
    onsets = {}
    for pitch, start, end, _ in line:
        s = int(round(start * per_quarter))
        e = max(int(round(end * per_quarter)), s + 1)
        if s < steps and pitch >= onsets.get(s, (-1, 0))[0]:
            onsets[s] = (int(pitch), e)
    order = sorted(onsets)
    for i, s in enumerate(order):
        pitch, e = onsets[s]
        events[s] = pitch
        following = order[i + 1] if i + 1 < len(order) else steps
        if e < following:
            events[e] = MIDI_NOTE_OFF
    return events


def events_to_ids(events, low, high):
    """MIDI events -> model ids; pitches folded into [low, high]; other values
    (below -2, above 127) are no event."""
    events = np.asarray(events)
    ids = np.full(events.shape, NO_EVENT, np.int32)
    ids[events == MIDI_NOTE_OFF] = NOTE_OFF
    on = (events >= 0) & (events <= 127)
    ids[on] = FIRST_PITCH_ID + fold(events[on], low, high).astype(np.int32) - low
    return ids


def ids_to_events(ids, low):
    """Model ids -> MIDI events (id 0, the start token, reads as no event)."""
    ids = np.asarray(ids)
    return np.where(ids >= FIRST_PITCH_ID, ids - FIRST_PITCH_ID + low,
                    np.where(ids == NOTE_OFF, MIDI_NOTE_OFF, MIDI_NO_EVENT)).astype(np.int32)


def encode(piece, config):
    """y of one piece: (T, P) frames or (T,) event ids."""
    per_quarter = steps_per_quarter(config)
    if config.encoding == "piano_roll":
        return piano_roll(piece.notes, per_quarter, config.min_pitch, config.max_pitch)
    return events_to_ids(melody_events(piece.notes, per_quarter), config.min_pitch,
                         config.max_pitch)


def vocab_size(config):
    return FIRST_PITCH_ID + config.max_pitch - config.min_pitch + 1


def windows(sequences, size):
    """Each sequence cut into consecutive pieces of at most ``size`` steps (0: whole)."""
    if not size:
        return list(sequences)
    return [y[i:i + size] for y in sequences for i in range(0, len(y), size)]


# ------------------------------------------------------------------------------- splits


def normalise(pieces, config, source):
    """(pieces ready to encode, notes moved into range): the melody line only (melody),
    pitches in the model's range (``fit_range``), moved to C (``transpose="c"``)."""
    if config.encoding == "melody":  # only the line the events are made of
        pieces = [melody_line(p) for p in pieces]
    fitted = [fit_range(p, config, source) for p in pieces]
    pieces, moved = [p for p, _ in fitted], sum(n for _, n in fitted)
    if config.transpose == "c":
        pieces = [fit_range(transpose(p, key_shift(p.notes)), config, source)[0] for p in pieces]
    return pieces, moved


def check_config(config):
    if config.max_pitch - config.min_pitch < 11:
        from pipelines.common.config import ConfigError

        raise ConfigError("Config keys 'min_pitch'..'max_pitch' must span at least an octave "
                          f"(12 pitches). Received: {config.min_pitch}..{config.max_pitch}")


def corpus_path(name):
    """The file or folder of the music21 corpus that ``corpus:NAME`` names (e.g.
    ``corpus:oneills1850``, O'Neill's 1850 collection of 2,009 Irish tunes as ABC)."""
    music21 = _require("music21")
    path = os.path.join(os.path.dirname(music21.corpus.__file__), name[len("corpus:"):])
    if not os.path.exists(path):
        raise DataError(name, "no such file or folder in the music21 corpus")
    return path


def read_source(path):
    """(pieces, skipped) of a folder or of one music file (``corpus:NAME``: in music21's
    corpus)."""
    if path.startswith("corpus:"):
        folder, what = corpus_path(path), f"music21's {path[len('corpus:'):]}"
        if os.path.isdir(folder):
            return cached(path.replace(":", "-").replace("/", "_"), lambda: read_folder(
                folder, progress=lambda done, total: _progress(done, total, what)))
        path = folder
    if os.path.isdir(path):
        return read_folder(path)
    return read_file(path), []


def load_pieces(config):
    """({split: [Piece]}, notes for the user): the config's data, split by piece."""
    from pipelines.common import data as common

    check_config(config)
    skipped = []
    if config.data.lower().endswith(".json") and not (config.train_file or config.valid_file):
        if not os.path.exists(config.data):
            raise DataError(config.data, "no such file")
        if config.encoding == "melody":
            raise DataError(config.data, "the JSB layout holds frames, not note onsets: "
                            "use --set encoding=piano_roll")
        splits = read_jsb(config.data)
        splits.setdefault("valid", splits.pop("test", None))
        if splits["valid"] is None:
            raise DataError(config.data, 'no "valid" (or "test") split', field="valid")
        splits.pop("test", None)  # train --data FILE.json: its train and valid splits
        source = config.data
    else:
        def read_whole(name):
            if name == "embedded":
                return chorales(config.max_examples, progress=_progress)
            pieces, bad = read_source(name)
            skipped.extend(bad)
            if len(pieces) < 2:
                raise DataError(name, "one piece: splitting needs at least 2 (train and valid); "
                                "pass a folder, or --train FILE --valid FILE")
            return pieces

        def read_split_file(name):
            pieces, bad = read_source(name)
            skipped.extend(bad)
            return pieces

        splits = common.load_splits(config, read_split_file, read_whole,
                                    take=lambda pieces, idx: [pieces[i] for i in idx])
        source = config.train_file or config.data
    notes = [f"skipped {len(skipped)} unreadable files:"] + [f"  {s}" for s in skipped] \
        if skipped else []
    moved = 0
    for name, pieces in splits.items():
        splits[name], count = normalise(pieces, config, source)
        moved += count
    if moved:
        notes.append(f"warning: {moved} notes outside pitches {config.min_pitch}..{config.max_pitch} "
                     "moved by octaves into the range (--set out_of_range=refuse stops instead)")
    return splits, notes


# ------------------------------------------------------------------------------ tf.data


def example_arrays(y):
    """(x, y, w) of one encoded piece: x<1> = 0, x<t> = y<t-1>; w = 1 per step."""
    x = np.concatenate([np.zeros_like(y[:1]), y[:-1]], axis=0)
    return x, y, np.ones(len(y), np.float32)


def make_dataset(sequences, config, training=False):
    """Batches (x, y, w) of encoded pieces, bucketed by length, padded with 0."""
    import tensorflow as tf

    from pipelines.common import data as common

    frames = config.encoding == "piano_roll"
    size = config.max_pitch - config.min_pitch + 1
    step = tf.TensorSpec((None, size) if frames else (None,), tf.float32 if frames else tf.int32)
    signature = (step, step, tf.TensorSpec((None,), tf.float32))
    arrays = [example_arrays(y) for y in sequences if len(y)]
    ds = tf.data.Dataset.from_generator(lambda: iter(arrays), output_signature=signature)
    longest = max((len(y) for y in sequences), default=1)
    return common.batches(ds, lambda x, y, w: tf.shape(y)[0], count=max(len(arrays), 1),
                          batch_size=config.batch_size, max_length=longest, seed=config.seed,
                          training=training)


def make_meta(config, sizes, source, examples=()):
    """What the model, evaluation, export and predict need to know of the data;
    ``examples``: names of held-out chorales the main job continues."""
    return {
        "encoding": config.encoding,
        "grid": config.grid,
        "steps_per_quarter": steps_per_quarter(config),
        "min_pitch": config.min_pitch,
        "max_pitch": config.max_pitch,
        "frame_size": config.max_pitch - config.min_pitch + 1,
        "vocab_size": vocab_size(config),
        "pieces": sizes,
        "source": source,
        "examples": list(examples),
    }


def encode_all(pieces, config, jsb=False):
    """``encode`` each piece; JSB JSON pieces (``jsb``) one frame per file frame."""
    if jsb:
        return [piano_roll(p.notes, 1, config.min_pitch, config.max_pitch) for p in pieces]
    return [encode(p, config) for p in pieces]


def make_datasets(config, meta=None):
    """``Datasets`` of the config's data (see the module docstring)."""
    from pipelines.common.task import Datasets

    splits, notes = load_pieces(config)
    if config.transpose == "all":
        splits["train"] = augment(splits["train"], config)
    jsb = config.data.lower().endswith(".json") and not (config.train_file or config.valid_file)
    encoded = {name: encode_all(pieces, config, jsb) for name, pieces in splits.items()}
    encoded["train"] = windows(encoded["train"], config.window)
    sizes = {name: len(seqs) for name, seqs in encoded.items()}
    sizes.update({f"{name} steps": int(sum(len(y) for y in seqs)) for name, seqs in encoded.items()})
    if meta is None:
        held_out = splits.get("test") or splits["valid"]
        meta = make_meta(config, {n: len(p) for n, p in splits.items()},
                         config.train_file or config.data,
                         [p.name for p in held_out[:3]] if config.data == "embedded" else ())
    return Datasets(
        train=make_dataset(encoded["train"], config, training=True),
        valid=make_dataset(encoded["valid"], config),
        test=make_dataset(encoded["test"], config) if encoded.get("test") else None,
        meta=meta,
        sizes=sizes,
        notes=notes,
    )


def read_split(config, meta, path):
    """``evaluate --data PATH``: a JSB JSON file's test split (its valid split if it has
    none), or the pieces of a music file or folder."""
    check_config(config)
    jsb = path.lower().endswith(".json")
    if jsb:
        if not os.path.exists(path):
            raise DataError(path, "no such file")
        if config.encoding == "melody":
            raise DataError(path, "the JSB layout holds frames, not note onsets: a melody "
                            "model cannot score it")
        splits = read_jsb(path)
        pieces = splits.get("test") or splits.get("valid")
        if not pieces:
            raise DataError(path, 'no "test" (or "valid") split to evaluate', field="test")
    else:
        pieces, _ = read_source(path)
    return make_dataset(encode_all(normalise(pieces, config, path)[0], config, jsb), config)
