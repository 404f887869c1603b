"""Speech data: (WAV clip, transcript, speaker) -> log-mel frames and character ids.

An example is ``({"features": (T, n_mels), "length": ()}, labels (L,))``: the clip's
normalised log-mel frames (``audio.wav_features``, the same graph code the export runs)
and its transcript as character ids (``ALPHABET``: space, apostrophe, a-z; the CTC blank
is id len(ALPHABET)); batches are padded (frames with 0, labels with -1) and bucketed by
frames.

Where clips come from:
* ``synthetic`` (= ``embedded``, the default): digit strings, numbers and years spoken by
  eSpeak NG voices with varied rate, pitch and noise (``synth.cached_set``), generated
  once into the user cache. Synthetic speech: the speaker of a clip is its voice.
* a folder (symbolic links followed): a ``*.csv`` manifest ``path,transcript[,speaker]``
  (paths relative to the manifest), LibriSpeech ``*.trans.txt`` files (``ID text`` per
  line, audio ``ID.wav`` or ``ID.flac`` beside it, speaker = the ID's first field), or
  Free Spoken Digit Dataset names ``{digit}_{speaker}_{take}.wav`` (transcript = the
  digit's word); a manifest file itself works too.
* ``tfds:speech_commands`` / ``tfds:librispeech`` (``tfds.load`` from ``tfds_data_dir``).

Transcripts are lowercased; other characters outside the alphabet stop the run naming
the file and line (digits: write them as words). Splits: by speaker when names give
speakers (no speaker in two splits), else by utterance; ``fsdd_takes``: FSDD's official
split (takes 0-4 test); ``holdout_speaker``: one speaker is the whole test split.
"""

import csv
import io
import os
import re

import numpy as np

from pipelines.common.textio import DataError
from pipelines.speech.config import ALPHABET

BLANK = len(ALPHABET)
MAX_CHOICES = 1000  # distinct training transcripts kept as the default choices
DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9]+)_(\d+)\.wav$")
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
INSTALL = "the speech pipeline needs its extra: pip install 'seqzoo[speech]'"


def _require(module):
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module, INSTALL) from None


# ------------------------------------------------------------------------ transcripts


def normalise_transcript(text, path, line=None):
    """Lowercase, spaces collapsed; DataError naming ``path``/``line`` for a character
    outside ``ALPHABET``."""
    text = " ".join(text.lower().replace("’", "'").split())
    bad = sorted({c for c in text if c not in ALPHABET})
    if bad:
        raise DataError(path, f"transcript {text!r} has characters outside the alphabet "
                        f"(a-z, space, apostrophe): {''.join(bad)!r} (write numbers as words)",
                        line=line)
    return text


def encode_transcript(text):
    return [ALPHABET.index(c) for c in text]


def decode_ids(ids):
    return "".join(ALPHABET[i] for i in ids if 0 <= i < BLANK)


# --------------------------------------------------------------------------- readers


class Clips:
    """Parallel lists: ``sources`` (a path, or WAV bytes), ``transcripts``,
    ``speakers`` ("" when unknown), ``takes`` (FSDD take numbers, else -1)."""

    def __init__(self, sources=(), transcripts=(), speakers=(), takes=()):
        self.sources, self.transcripts = list(sources), list(transcripts)
        self.speakers = list(speakers) or [""] * len(self.sources)
        self.takes = list(takes) or [-1] * len(self.sources)

    def __len__(self):
        return len(self.sources)

    def take(self, indices):
        return Clips(*([column[i] for i in indices] for column in
                       (self.sources, self.transcripts, self.speakers, self.takes)))

    def name(self, i):
        source = self.sources[i]
        return source if isinstance(source, str) else f"clip {i}"


def _walk(folder):
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        for name in sorted(files):
            yield os.path.join(root, name)


def read_manifest(path):
    """A CSV manifest ``path,transcript[,speaker]`` (a header line), paths relative to it."""
    from pipelines.common import textio

    header = textio.read_text(path).split("\n", 1)[0]
    with_speaker = "speaker" in next(csv.reader([header]), [])
    rows = textio.read_table(path, ("path", "transcript") + (("speaker",) if with_speaker else ()),
                             fmt="csv")
    base = os.path.dirname(os.path.abspath(path))
    clips = Clips()
    for row in rows:
        audio = os.path.join(base, row.fields["path"])
        if not os.path.exists(audio):
            raise DataError(path, f"no such audio file {row.fields['path']!r}", line=row.line,
                            field="path")
        clips.sources.append(audio)
        clips.transcripts.append(normalise_transcript(row.fields["transcript"], path, row.line))
        clips.speakers.append(row.fields.get("speaker", "") or "")
        clips.takes.append(-1)
    if not len(clips):
        raise DataError(path, "the manifest lists no clips")
    return clips


def read_librispeech(files):
    """LibriSpeech-style ``*.trans.txt`` files -> Clips (speaker = the ID's first field)."""
    clips = Clips()
    for trans in files:
        folder = os.path.dirname(trans)
        with open(trans, encoding="utf-8") as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                utterance, _, text = line.strip().partition(" ")
                audio = next((os.path.join(folder, utterance + ext) for ext in AUDIO_EXTENSIONS
                              if os.path.exists(os.path.join(folder, utterance + ext))), None)
                if audio is None:
                    raise DataError(trans, f"no audio file {utterance}.wav (or .flac) beside it",
                                    line=line_no)
                clips.sources.append(audio)
                clips.transcripts.append(normalise_transcript(text, trans, line_no))
                clips.speakers.append(utterance.split("-")[0])
                clips.takes.append(-1)
    return clips


def read_fsdd(files):
    """Free Spoken Digit Dataset names ``{digit}_{speaker}_{take}.wav`` -> Clips."""
    clips = Clips()
    for path in files:
        match = FSDD_NAME.match(os.path.basename(path))
        if match:
            clips.sources.append(path)
            clips.transcripts.append(DIGITS[int(match.group(1))])
            clips.speakers.append(match.group(2))
            clips.takes.append(int(match.group(3)))
    return clips


def read_folder(path):
    """Clips of a folder or manifest file (see the module docstring)."""
    if not os.path.exists(path):
        raise DataError(path, "no such file or folder")
    if os.path.isfile(path):
        if path.endswith(".csv"):
            return read_manifest(path)
        raise DataError(path, "expected a folder of WAV files or a .csv manifest "
                        "(path,transcript[,speaker])")
    files = list(_walk(path))
    manifests = [f for f in files if f.endswith(".csv")]
    if manifests:
        if len(manifests) > 1:
            raise DataError(path, f"more than one .csv manifest: {sorted(manifests)[:3]}")
        return read_manifest(manifests[0])
    trans = [f for f in files if f.endswith(".trans.txt")]
    if trans:
        return read_librispeech(trans)
    clips = read_fsdd(files)
    if len(clips):
        return clips
    raise DataError(path, "found no manifest (.csv with path,transcript), no LibriSpeech "
                    "*.trans.txt and no FSDD-named WAV files ({digit}_{speaker}_{take}.wav)")


def read_tfds(name, data_dir):
    """``tfds.load(name, split=..., data_dir=...)`` -> {split: Clips} with WAV bytes as
    sources: speech_commands (transcript = the command word; "_silence_" and
    "_unknown_" left out) or librispeech (text, speaker_id; dev_clean validates,
    test_clean tests)."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    if name not in ("speech_commands", "librispeech"):
        raise DataError(f"tfds:{name}", "expected tfds:speech_commands or tfds:librispeech")
    builder = tfds.builder(name, data_dir=data_dir)
    features = builder.info.features
    key = "audio" if "audio" in features else "speech"
    rate = features[key].sample_rate
    labels = features["label"].names if "label" in features else None
    wanted = ({"train": "train", "valid": "validation", "test": "test"} if labels else
              {"train": "train_clean100", "valid": "dev_clean", "test": "test_clean"})
    out = {}
    for ours, split in wanted.items():
        clips = Clips()
        for example in tfds.as_numpy(tfds.load(name, split=split, data_dir=data_dir)):
            if labels is not None:
                word = labels[int(example["label"])]
                if word.startswith("_"):
                    continue
                text, speaker = word, ""
            else:
                text, speaker = example["text"].decode("utf-8"), str(example["speaker_id"])
            pcm = tf.cast(np.asarray(example[key]), tf.float32)[:, None] / 32768.0
            clips.sources.append(tf.audio.encode_wav(pcm, rate).numpy())
            clips.transcripts.append(normalise_transcript(text, f"tfds:{name}/{split}"))
            clips.speakers.append(speaker)
            clips.takes.append(-1)
        out[ours] = clips
    return out


def synthetic_folder(config):
    from pipelines.speech import synth

    return synth.cached_set(count=config.synthetic_count, seed=config.seed)


# ---------------------------------------------------------------------------- splits


def split_clips(clips, config):
    """{"train", "valid", "test"?: Clips} by the config's ``split`` (module docstring)."""
    from pipelines.common import data as common

    n = len(clips)
    speakers = sorted(set(clips.speakers) - {""})
    if config.holdout_speaker:
        if config.holdout_speaker not in speakers:
            raise DataError(config.data, f"holdout_speaker {config.holdout_speaker!r} is not "
                            f"among the speakers {speakers}")
        test = [i for i in range(n) if clips.speakers[i] == config.holdout_speaker]
        rest = [i for i in range(n) if clips.speakers[i] != config.holdout_speaker]
        cut = common.split_indices(len(rest), config.seed, config.valid_fraction)
        return {"train": clips.take([rest[i] for i in cut["train"]]),
                "valid": clips.take([rest[i] for i in cut["valid"]]), "test": clips.take(test)}
    if config.split == "fsdd_takes":
        if min(clips.takes, default=-1) < 0:
            raise DataError(config.data, "split=fsdd_takes needs FSDD names "
                            "({digit}_{speaker}_{take}.wav)")
        test = [i for i in range(n) if clips.takes[i] < 5]
        rest = [i for i in range(n) if clips.takes[i] >= 5]
        cut = common.split_indices(len(rest), config.seed, config.valid_fraction)
        return {"train": clips.take([rest[i] for i in cut["train"]]),
                "valid": clips.take([rest[i] for i in cut["valid"]]), "test": clips.take(test)}
    if config.split == "speaker" and len(speakers) >= 3 and "" not in clips.speakers:
        cut = common.split_indices(len(speakers), config.seed, config.valid_fraction,
                                   config.test_fraction)
        where = {speakers[i]: name for name, idx in cut.items() for i in idx}
        return {name: clips.take([i for i in range(n) if where[clips.speakers[i]] == name])
                for name in cut}
    cut = common.split_indices(n, config.seed, config.valid_fraction, config.test_fraction)
    return {name: clips.take(idx) for name, idx in cut.items()}


def load_clips(config):
    """({split: Clips}, notes) of the config's data."""
    from pipelines.common import data as common

    if config.train_file or config.valid_file:
        splits = common.file_splits(config, read_folder)
    elif config.data.startswith("tfds:"):
        raw = read_tfds(config.data[len("tfds:"):], config.tfds_data_dir)
        splits = dict(raw)
        if "valid" not in splits:
            cut = common.split_indices(len(raw["train"]), config.seed, config.valid_fraction)
            splits.update({name: raw["train"].take(idx) for name, idx in cut.items()})
    else:
        if not config.data:
            raise DataError("--data", "this preset needs a folder: --data DIR")
        folder = (synthetic_folder(config) if config.data in ("synthetic", "embedded")
                  else config.data)
        splits = split_clips(read_folder(folder), config)
    if config.max_examples:
        splits = common.subset(splits, config.max_examples, config.seed,
                               take=lambda clips, idx: clips.take(idx))
    if not len(splits["train"]):
        raise DataError(config.train_file or config.data, "no training clips")
    return splits, []


# ------------------------------------------------------------------------- features


def read_bytes(source):
    """WAV bytes of a path (FLAC/OGG converted by soundfile) or the bytes themselves."""
    if not isinstance(source, str):
        return bytes(source)
    with open(source, "rb") as f:
        raw = f.read()
    if source.lower().endswith(".wav") or raw[:4] == b"RIFF":
        return raw
    soundfile = _require("soundfile")
    try:
        samples, rate = soundfile.read(io.BytesIO(raw), dtype="float32", always_2d=True)
    except Exception as e:  # libsndfile's own message
        raise DataError(source, f"cannot read the audio: {e}") from None
    out = io.BytesIO()
    soundfile.write(out, samples, rate, format="WAV", subtype="FLOAT")
    return out.getvalue()


def feature_fn(config, speed=1.0):
    """A tf.function: (batch,) WAV bytes -> ``audio.batch_wav_features`` of the config
    (the clips played ``speed`` times faster)."""
    import tensorflow as tf

    from pipelines.speech import audio

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def features(wavs):
        return audio.batch_wav_features(wavs, config.sample_rate, config.n_mels,
                                        config.max_seconds, speed, frame_ms=config.frame_ms,
                                        step_ms=config.step_ms)

    return features


def featurise(clips, config, on_error="stop", chunk=64, speed=1.0):
    """Features of every clip: (list of (T, n_mels) float32, labels, notes). A clip that
    is not a readable WAV stops the run naming it (or, ``on_error="skip"``, is left out
    and counted); so is one longer than ``max_seconds``. ``speed``: ``feature_fn``'s."""
    features_of = feature_fn(config, speed)
    frames, labels, skipped = [], [], []
    for start in range(0, len(clips), chunk):
        idx = range(start, min(start + chunk, len(clips)))
        out = features_of(np.array([read_bytes(clips.sources[i]) for i in idx], dtype=object))
        for j, i in enumerate(idx):
            reason = out["reason"][j].numpy().decode() if not out["ok"][j] else (
                f"longer than max_seconds ({config.max_seconds:g} s)" if out["truncated"][j]
                else "")
            if reason:
                if on_error == "stop":
                    raise DataError(clips.name(i), f"{reason} (--set on_error=skip leaves such "
                                    "clips out)")
                skipped.append(clips.name(i))
                continue
            frames.append(out["features"][j, :int(out["length"][j])].numpy())
            labels.append(encode_transcript(clips.transcripts[i]))
    notes = [f"skipped {len(skipped)} unreadable or too long clips, e.g. {skipped[0]}"] if skipped else []
    return frames, labels, notes


def ctc_feasible(frames, labels, time_reduction):
    """CTC needs at least as many output frames as labels plus repeated neighbours."""
    repeats = sum(1 for a, b in zip(labels, labels[1:]) if a == b)
    return -(-frames // time_reduction) >= len(labels) + repeats and len(labels) > 0


def make_dataset(clips, config, training=False):
    """(batches, examples kept, notes) of ``clips``."""
    import tensorflow as tf

    from pipelines.common import data as common

    frames, labels, notes = featurise(clips, config, config.on_error)
    for speed in config.speed_perturb if training else ():  # a faster / slower copy each
        more_frames, more_labels, _ = featurise(clips, config, "skip", speed=speed)
        frames, labels = frames + more_frames, labels + more_labels
    kept = [(f, np.array(y, np.int32)) for f, y in zip(frames, labels)
            if ctc_feasible(len(f), y, config.time_reduction)]
    if len(kept) < len(frames):
        notes.append(f"left out {len(frames) - len(kept)} clips too short for their transcript")
    ds = tf.data.Dataset.from_generator(
        lambda: (({"features": f, "length": np.int32(len(f))}, y) for f, y in kept),
        output_signature=({"features": tf.TensorSpec((None, config.n_mels), tf.float32),
                           "length": tf.TensorSpec((), tf.int32)},
                          tf.TensorSpec((None,), tf.int32)))
    max_frames = int(config.max_seconds * 1000 / config.step_ms) + 1
    ds = common.batches(ds, lambda x, y: tf.shape(x["features"])[0], count=max(len(kept), 1),
                        batch_size=config.batch_size, max_length=max_frames, seed=config.seed,
                        training=training,
                        padding_values=({"features": 0.0, "length": 0}, -1))
    return ds, len(kept), notes


def make_datasets(config, meta=None):
    """``Datasets`` of the config's clips (see the module docstring)."""
    from pipelines.common.task import Datasets

    splits, notes = load_clips(config)
    if meta is None:
        shown = splits.get("test") or splits["valid"]
        distinct = sorted(set(splits["train"].transcripts))
        meta = {"alphabet": ALPHABET, "source": config.data,
                # decoder="choices" without choices: the training transcripts, when few.
                "choices": distinct if len(distinct) <= MAX_CHOICES else [],
                "speakers": {name: sorted(set(c.speakers) - {""}) for name, c in splits.items()},
                "examples": [s for s in shown.sources[:3] if isinstance(s, str)]}
    made = {name: make_dataset(clips, config, training=name == "train")
            for name, clips in splits.items()}
    for name, (_, _, split_notes) in made.items():
        notes += [f"{name}: {n}" for n in split_notes]
    return Datasets(train=made["train"][0], valid=made["valid"][0],
                    test=made["test"][0] if "test" in made else None, meta=meta,
                    sizes={name: n for name, (_, n, _) in made.items()}, notes=notes)


def read_split(config, meta, path):
    """``evaluate --data DIR``: every clip of a folder or manifest."""
    return make_dataset(read_folder(path), config)[0]
