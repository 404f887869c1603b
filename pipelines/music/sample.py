"""Primers in, playable files out: what turns the export's frames/events into music.

Library functions (they return values or write the files they are asked to; the CLI
prints):

    read_primer(value, config, meta) -> Primer: "" (nothing), a MIDI / MusicXML / ABC /
        kern file or "corpus:NAME" (a music21 corpus piece), its first
        ``config.primer_bars`` bars on the model's grid
    frames_to_notes(frames, steps_per_quarter) / events_to_notes(events, ...) -> notes
    write_midi(notes, path, tempo, program)   pretty_midi; no external program
    draw_piano_roll(notes, path, title)       a PNG (matplotlib)
    write_wav(notes, path, tempo, program)    pretty_midi's sine synthesis, 16-bit WAV
    bind(config, meta)                        predict's reader for one model (the
                                              export's config and meta); it writes the files

Notes are (n, 4) rows (pitch, start, end, part) in quarter notes, as in ``data``.
"""

import dataclasses
import math
import os
import wave

import numpy as np

from pipelines.common import inputs
from pipelines.common.task import PredictInput
from pipelines.common.textio import DataError
from pipelines.music import data

MIDI_PITCHES = 128


@dataclasses.dataclass(frozen=True)
class Primer:
    label: str  # what predict shows: the file, or "(no primer)"
    values: np.ndarray  # (T, 128) float32 frames or (T,) int32 MIDI events
    notes: np.ndarray  # the primer's notes (written before the continuation)


def _score_bar(score):
    """Quarter notes in a bar of a music21 score's first time signature (4 without one)."""
    found = list(score.recurse().getElementsByClass("TimeSignature"))
    return float(found[0].barDuration.quarterLength) if found else 4.0


def bar_quarters(path):
    """Quarter notes in a bar of the file's first time signature (4 when it has none)."""
    if path.lower().endswith(data.MIDI_SUFFIXES):
        import pretty_midi

        changes = pretty_midi.PrettyMIDI(path).time_signature_changes
        return changes[0].numerator * 4 / changes[0].denominator if changes else 4.0
    return _score_bar(data._require("music21").converter.parse(path))


def _read_notes(value):
    """(the first piece's notes, bar length) of a file or "corpus:NAME"."""
    if value.startswith("corpus:"):
        music21 = data._require("music21")
        try:
            score = music21.corpus.parse(value[len("corpus:"):])
        except Exception as e:  # noqa: BLE001 -- music21 raises many kinds
            raise DataError(value, f"not a music21 corpus piece ({data._short(e)})") from None
        return data.score_notes(score), _score_bar(score)
    if os.path.isdir(value):
        raise DataError(value, "is a directory, expected a MIDI / MusicXML / ABC / kern file")
    notes = data.read_file(value)[0].notes
    return notes, bar_quarters(value)


def encode_primer(notes, steps, config, meta):
    """MIDI-space values of the signature: (steps, 128) frames or (steps,) events."""
    per_quarter = meta["steps_per_quarter"]
    if meta["encoding"] == "piano_roll":
        return data.piano_roll(notes, per_quarter, 0, MIDI_PITCHES - 1, steps=steps)
    return data.melody_events(notes, per_quarter, steps=steps)


def read_primer(value, config, meta):
    """The first ``config.primer_bars`` bars of a file ("" = no primer). DataError for
    an unreadable file, a file with no notes, or a primer longer than the export
    conditions on (``serve_max_primer`` steps)."""
    if not value:
        empty = np.zeros((0, MIDI_PITCHES), np.float32) if meta["encoding"] == "piano_roll" \
            else np.zeros((0,), np.int32)
        return Primer("(no primer)", empty, data._notes([]))
    notes, bar = _read_notes(value)
    if meta["encoding"] == "melody":
        notes = data.melody_line(data.Piece("", notes)).notes
    end = config.primer_bars * bar
    notes = notes[notes[:, 1] < end]
    notes[:, 2] = np.minimum(notes[:, 2], end)
    if not len(notes):
        raise DataError(value, f"no notes in its first {config.primer_bars} bars")
    steps = int(round(end * meta["steps_per_quarter"]))
    if steps > config.serve_max_primer:
        raise DataError(value, f"the primer is {steps} steps long ({config.primer_bars} bars); "
                        f"the model conditions on at most {config.serve_max_primer}: ask for "
                        "fewer --primer-bars")
    label = value if value.startswith("corpus:") else os.path.basename(value)
    return Primer(label, encode_primer(notes, steps, config, meta), notes)


# --------------------------------------------------------------------- output -> notes


def frames_to_notes(frames, per_quarter, offset=0.0):
    """(T, 128) 0/1 frames -> notes: a pitch on in consecutive frames is one note."""
    frames = np.asarray(frames) > 0
    padded = np.pad(frames, [(1, 1), (0, 0)])
    rows = []
    for pitch in np.flatnonzero(frames.any(axis=0)):
        change = np.flatnonzero(np.diff(padded[:, pitch].astype(np.int8)))
        for start, end in zip(change[::2], change[1::2]):
            rows.append((pitch, offset + start / per_quarter, offset + end / per_quarter, 0))
    return data._notes(sorted(rows, key=lambda r: (r[1], r[0])))


def events_to_notes(events, per_quarter, offset=0.0):
    """(T,) MIDI events -> notes: a note-on lasts until the next note-on or note-off
    (or the end)."""
    rows, current = [], None
    for t, event in enumerate(list(np.asarray(events)) + [data.MIDI_NOTE_OFF]):
        if event >= 0 or event == data.MIDI_NOTE_OFF:
            if current is not None:
                rows.append((current[0], offset + current[1] / per_quarter,
                             offset + t / per_quarter, 0))
            current = (int(event), t) if event >= 0 else None
    return data._notes(rows)


def piece_notes(primer, row, meta):
    """The primer's notes, then the generated continuation's."""
    per_quarter = meta["steps_per_quarter"]
    offset = len(primer.values) / per_quarter
    if "frames" in row:
        generated = frames_to_notes(row["frames"], per_quarter, offset)
    else:
        generated = events_to_notes(row["events"], per_quarter, offset)
    return np.concatenate([primer.notes, generated])


# ------------------------------------------------------------------------------ files


def to_pretty_midi(notes, tempo=80.0, program=19):
    import pretty_midi

    seconds = 60.0 / tempo
    midi = pretty_midi.PrettyMIDI(initial_tempo=tempo)
    instrument = pretty_midi.Instrument(program=program)
    instrument.notes = [pretty_midi.Note(velocity=80, pitch=int(p), start=s * seconds,
                                         end=e * seconds) for p, s, e, _ in notes]
    midi.instruments.append(instrument)
    return midi


def write_midi(notes, path, tempo=80.0, program=19):
    """A one-track MIDI file of ``notes`` at ``tempo`` quarter notes a minute."""
    to_pretty_midi(notes, tempo, program).write(path)
    return path


def write_wav(notes, path, tempo=80.0, program=19, rate=22050):
    """``notes`` rendered by pretty_midi's sine synthesis (no external program), 16 bit mono."""
    audio = to_pretty_midi(notes, tempo, program).synthesize(fs=rate)
    peak = float(np.abs(audio).max()) if audio.size else 0.0
    pcm = (audio / peak * 0.8 * 32767 if peak else audio).astype("<i2")
    with wave.open(path, "wb") as f:
        f.setnchannels(1)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(pcm.tobytes())
    return path


def draw_piano_roll(notes, path, title="", primer_end=None):
    """A PNG of ``notes`` (time in quarter notes across, MIDI pitch up); a line marks
    where a primer ends."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    end = max(float(notes[:, 2].max()) if len(notes) else 0.0, primer_end or 0.0, 1.0)
    fig, ax = plt.subplots(figsize=(min(4 + end / 6, 18), 4))
    for pitch, start, stop, _ in notes:
        ax.add_patch(plt.Rectangle((start, pitch - 0.4), stop - start, 0.8, color="tab:blue"))
    low = notes[:, 0].min() - 2 if len(notes) else 48
    high = notes[:, 0].max() + 2 if len(notes) else 84
    ax.set_xlim(0, end)
    ax.set_ylim(low, high)
    if primer_end:
        ax.axvline(primer_end, color="tab:red", linewidth=1)
    ax.set_xlabel("quarter notes")
    ax.set_ylabel("MIDI pitch")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def save_piece(notes, out_dir, stem, config, title="", primer_end=None, wav=False):
    """``stem``.mid and ``stem``.png (and ``stem``.wav) in ``out_dir``; their paths."""
    os.makedirs(out_dir, exist_ok=True)
    base = os.path.join(out_dir, stem)
    paths = [write_midi(notes, base + ".mid", config.tempo, config.program),
             draw_piano_roll(notes, base + ".png", title or stem, primer_end)]
    if wav:
        paths.append(write_wav(notes, base + ".wav", config.tempo, config.program))
    return paths


def _stem(index, primer):
    """"01-free", "02-song" (song.mid), "03-bwv66.6" (corpus:bach/bwv66.6)."""
    if primer.label == "(no primer)":
        name = "free"
    elif primer.label.startswith("corpus:"):
        name = os.path.basename(primer.label)
    else:
        name = os.path.splitext(primer.label)[0]
    return f"{index + 1:02d}-{name}"


# ------------------------------------------------------------------------ predict


def feed(primers):
    """The generate signature's batched inputs for ``primers`` (padded with zeros)."""
    width = max((len(p.values) for p in primers), default=0)
    lengths = np.array([len(p.values) for p in primers], np.int32)
    values = [np.pad(p.values, [(0, width - len(p.values))] + [(0, 0)] * (p.values.ndim - 1))
              for p in primers]
    if not primers:
        return {"primer": np.zeros((0, 0, MIDI_PITCHES), np.float32), "primer_length": lengths}
    return {"primer": np.stack(values), "primer_length": lengths}


def bind(config, meta, wav=False):
    """The predict reader of one trained model: ``--text``/``--file`` take a primer file
    (or "" for none, "corpus:NAME"); each prediction is written as MIDI + PNG."""

    def read_text(value):
        return read_primer(value, config, meta)

    def save(row, primer, out_dir, index):
        per_quarter = meta["steps_per_quarter"]
        primer_end = len(primer.values) / per_quarter if len(primer.values) else None
        return save_piece(piece_notes(primer, row, meta), out_dir, _stem(index, primer), config,
                          title=primer.label, primer_end=primer_end, wav=wav)

    return PredictInput(endpoint="generate", read_text=read_text,
                        read_file=lambda path: [read_text(path)], feed=feed, show=show,
                        stdin=False, save=save)


def show(primer):
    return inputs.shorten(primer.label)




# ---------------------------------------------------------------------- sample command


def add_sample_arguments(parser):
    parser.add_argument("--primer", default="",
                        help="MIDI / MusicXML / ABC / kern file (or corpus:NAME) whose first "
                        "bars the model continues (default: from nothing)")
    parser.add_argument("--primer-bars", type=int, help="bars of the primer (default: config)")
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, help="grid steps to generate (default: config)")
    length.add_argument("--bars", type=int, help="bars of 4 quarter notes to generate")
    parser.add_argument("--temperature", type=float, help="τ; 0 = the most likely output")
    parser.add_argument("--top-k", type=int, help="melody: keep the k most likely events; 0 = all")
    parser.add_argument("--top-p", type=float, help="melody: nucleus mass in (0, 1]; 1 = all")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-n", "--num-samples", type=int, default=1)
    parser.add_argument("--out", help="directory for the .mid/.png files (default <workdir>/samples)")
    parser.add_argument("--wav", action="store_true", help="also render a .wav (sine synthesis)")
    parser.add_argument("--model", help="an export version directory (default: the trained "
                        "model in the workdir)")


def check_arguments(steps, temperature, top_k, top_p, num_samples, max_steps):
    """UsageError naming the first out-of-range flag (the export's ranges)."""
    from pipelines.common.cli import UsageError

    rules = [
        (0 <= steps <= max_steps, f"--steps: expected 0 <= steps <= {max_steps}. Received: {steps}"),
        (math.isfinite(temperature) and temperature >= 0,
         f"--temperature: expected a finite value >= 0 (0 = most likely). Received: {temperature}"),
        (top_k >= 0, f"--top-k: expected >= 0 (0 = all events). Received: {top_k}"),
        (0 < top_p <= 1, f"--top-p: expected 0 < top_p <= 1. Received: {top_p}"),
        (num_samples >= 1, f"--num-samples: expected >= 1. Received: {num_samples}"),
    ]
    for ok, message in rules:
        if not ok:
            raise UsageError(message)


def _generator(task, args):
    """(generate(**inputs) -> {name: array}, config, meta) from an export or the workdir."""
    import tensorflow as tf

    from pipelines.common import cli, export, train
    from pipelines.common import config as config_lib

    if args.model:
        if not os.path.isfile(os.path.join(args.model, "saved_model.pb")):
            raise cli.UsageError(f"{args.model}: not an export version directory (no saved_model.pb).")
        extra = os.path.join(args.model, "assets.extra")
        config = config_lib.load(task.config_class, os.path.join(extra, "config.json"))
        meta = config_lib.read_json(os.path.join(extra, "meta.json"))
        signature = export.load_signature(args.model, "generate")
        return lambda **kw: {k: v.numpy() for k, v in signature(**kw).items()}, config, meta
    model, config, meta = train.load_trained(cli.workdir_of(task, args), task.config_class, task)
    endpoint = task.serving_model(model, config, meta).endpoints()["generate"]
    fn = tf.function(endpoint.fn)
    return (lambda **kw: {k: v.numpy() for k, v in fn(*[kw[n] for n in endpoint.input_names]).items()},
            config, meta)


def run_sample(task, args):
    """generate pieces (from nothing or a primer) and write .mid, .png (and .wav) files"""
    import tensorflow as tf

    from pipelines.common import cli
    from pipelines.common import config as config_lib

    generate, config, meta = _generator(task, args)
    if args.primer_bars is not None:
        config = config_lib.override(config, primer_bars=args.primer_bars)
    steps = config.sample_steps if args.steps is None else args.steps
    if args.bars is not None:
        steps = args.bars * 4 * meta["steps_per_quarter"]
    settings = {"temperature": config.temperature if args.temperature is None else args.temperature,
                "top_k": config.top_k if args.top_k is None else args.top_k,
                "top_p": config.top_p if args.top_p is None else args.top_p}
    check_arguments(steps, **settings, num_samples=args.num_samples,
                    max_steps=config.serve_max_steps)
    primer = read_primer(args.primer, config, meta)
    inputs_ = {name: tf.constant(v) for name, v in feed([primer] * args.num_samples).items()}
    scalars = {"steps": tf.constant(steps, tf.int32),
               "temperature": tf.constant(settings["temperature"], tf.float32),
               "seed": tf.constant(args.seed, tf.int32)}
    if meta["encoding"] == "melody":
        scalars.update(top_k=tf.constant(settings["top_k"], tf.int32),
                       top_p=tf.constant(settings["top_p"], tf.float32))
    out = generate(**inputs_, **scalars)
    out_dir = args.out or os.path.join(cli.workdir_of(task, args), "samples")
    reader = bind(config, meta, wav=args.wav)
    for i in range(args.num_samples):
        row = {k: v[i] for k, v in out.items()}
        paths = reader.save(row, primer, out_dir, i)
        print(f"{task.format_prediction(row)} -> {', '.join(paths)}")
    return 0
