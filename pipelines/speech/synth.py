"""Synthetic speech: spoken numbers from eSpeak NG, the speech pipeline's default data.

One clip is a float32 mono waveform at eSpeak's rate (22050 Hz) saying a digit string
("four zero nine"), a cardinal number or a year (written out by num2words), in one of
the English accents of eSpeak NG combined with a voice variant ("en-gb-scotland+f3"),
at a random rate, pitch and pitch range, with white noise at a random SNR.
``generate`` writes a set as 16-bit PCM WAVs plus ``manifest.csv``
(``path,transcript,speaker``; the speaker is the voice name, so a split by speaker holds
voices out); ``cached_set`` builds one once in the user cache.

eSpeak NG comes from the ``espeakng-loader`` wheel (the library and its data) and is
driven through its C API (``speak_lib.h``) with ctypes. The library keeps global state:
one ``Espeak`` per process, synthesis serialised by a lock. Its output is not
bit-reproducible across processes, so a set is reproducible in its texts, voices and
parameters, not in its samples.
"""

import csv
import ctypes
import dataclasses
import importlib
import os
import re
import shutil
import sys
import threading

import numpy as np

from pipelines.common import cache
from pipelines.common.textio import DataError
from pipelines.speech.data import ALPHABET, DIGITS, INSTALL  # noqa: F401 -- the transcripts' alphabet

GENERATOR_VERSION = 1  # bump when the texts, voices or parameters drawn change
VARIANTS = tuple(f"m{k}" for k in range(1, 8)) + tuple(f"f{k}" for k in range(1, 6))
# Voices listed for a language but not an accent of it: en-shaw reads the Shavian
# alphabet and speaks Latin text as en-gb does.
NOT_ACCENTS = ("en-shaw",)
KINDS = ("digits", "cardinal", "year")
KIND_P = (0.5, 0.35, 0.15)
RATES, PITCHES, PITCH_RANGES = (120, 220), (20, 80), (20, 80)  # inclusive
MARGIN = 0.05  # seconds of silence kept around the speech
PROGRESS_EVERY = 500

# speak_lib.h
AUDIO_OUTPUT_SYNCHRONOUS = 2
POS_CHARACTER = 1
ESPEAK_CHARS_UTF8 = 1
INITIALIZE_DONT_EXIT = 0x8000
ESPEAK_RATE, ESPEAK_VOLUME, ESPEAK_PITCH, ESPEAK_RANGE = 1, 2, 3, 4
EE_OK = 0


def _require(module):
    try:
        return importlib.import_module(module)
    except ImportError:
        raise DataError(module, INSTALL) from None


class _Event(ctypes.Structure):
    """``espeak_EVENT``; only passed through (the id union is pointer-sized)."""
    _fields_ = [("type", ctypes.c_int), ("unique_identifier", ctypes.c_uint),
                ("text_position", ctypes.c_int), ("length", ctypes.c_int),
                ("audio_position", ctypes.c_int), ("sample", ctypes.c_int),
                ("user_data", ctypes.c_void_p), ("id", ctypes.c_void_p)]


class _Voice(ctypes.Structure):
    """``espeak_VOICE``."""
    _fields_ = [("name", ctypes.c_char_p), ("languages", ctypes.c_char_p),
                ("identifier", ctypes.c_char_p), ("gender", ctypes.c_ubyte),
                ("age", ctypes.c_ubyte), ("variant", ctypes.c_ubyte), ("xx1", ctypes.c_ubyte),
                ("score", ctypes.c_int), ("spare", ctypes.c_void_p)]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


class Espeak:
    """libespeak-ng of the espeakng-loader wheel, in synchronous retrieval mode.

    Use ``Espeak.get()``: the library is process-global, so there is one instance and
    ``synth`` calls are serialised. Voices are named ``<language code>+<variant>``
    ("en-us+f3", "en-gb-x-rp+m2"); a bare language code ("en-us") or any name eSpeak
    accepts also works.

    Example:
        >>> espeak = Espeak.get()
        >>> audio = espeak.synth("four zero nine", voice="en-gb+f2", rate=150)
        >>> audio.dtype, espeak.sample_rate
        (dtype('float32'), 22050)
    """

    _instance = None
    _instance_lock = threading.Lock()

    @classmethod
    def get(cls):
        """The process's instance, loaded on first use; DataError without the extra."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        loader = _require("espeakng_loader")
        self._data = loader.get_data_path()
        lib = ctypes.CDLL(loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p,
                                          ctypes.c_int]
        lib.espeak_Info.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        lib.espeak_Info.restype = ctypes.c_char_p
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_GetCurrentVoice.restype = ctypes.POINTER(_Voice)
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint,
                                     ctypes.c_int, ctypes.c_uint, ctypes.c_uint,
                                     ctypes.c_void_p, ctypes.c_void_p]
        # 0 ms: the default buffer (60 ms); the callback only collects the samples.
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, self._data.encode(),
                                     INITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise DataError(self._data, "eSpeak NG could not load its data folder")
        self.sample_rate = int(rate)
        self.version = lib.espeak_Info(None).decode()
        self._lib, self._lock, self._chunks, self._voices = lib, threading.Lock(), [], {}
        self._callback = _CALLBACK(self._collect)  # referenced: the library keeps a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._languages = self._read_languages()

    def _collect(self, wav, count, events):
        if wav and count > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, (count,)).copy())
        return 0

    def _read_languages(self):
        """{language code: voice file under espeak-ng-data/lang}, from each file's first
        ``language`` line (so "en-gb" -> "gmw/en", which SetVoiceByName cannot find by
        the code)."""
        root, found = os.path.join(self._data, "lang"), {}
        for folder, _, files in os.walk(root):
            for name in files:
                path = os.path.join(folder, name)
                with open(path, encoding="utf-8", errors="replace") as f:
                    codes = [line.split()[1].lower() for line in f
                             if line.startswith("language") and len(line.split()) > 1]
                if codes:
                    found.setdefault(codes[0], os.path.relpath(path, root).replace(os.sep, "/"))
        return found

    def _espeak_name(self, voice):
        """The name given to SetVoiceByName; ValueError for an unknown variant (eSpeak
        would silently ignore it)."""
        base, _, variant = voice.partition("+")
        if variant and not os.path.isfile(os.path.join(self._data, "voices", "!v", variant)):
            raise ValueError(f"Unknown eSpeak voice variant. Received: voice={voice!r}")
        base = self._languages.get(base.lower(), base)
        return f"{base}+{variant}" if variant else base

    def voices(self, language="en"):
        """Sorted ``<code>+<variant>`` names for ``language``'s accents (from the data
        folder) and ``VARIANTS``, each checked to synthesise audio."""
        if language not in self._voices:
            codes = [c for c in self._languages
                     if (c == language or c.startswith(language + "-")) and c not in NOT_ACCENTS]
            names = sorted(f"{c}+{v}" for c in codes for v in VARIANTS)
            self._voices[language] = [n for n in names if self.synth("one", n).size]
        return list(self._voices[language])

    def synth(self, text, voice="en-us", rate=175, pitch=50, pitch_range=50):
        """``text`` (UTF-8, spoken as plain text) -> float32 samples in [-1, 1] at
        ``sample_rate``, silence trimmed to at most ``MARGIN`` at each end. ``rate`` in
        words per minute (80..450), ``pitch`` and ``pitch_range`` 0..100 (50 normal)."""
        if not 80 <= rate <= 450:
            raise ValueError(f"Expected 80 <= rate <= 450. Received: rate={rate}")
        for name, value in (("pitch", pitch), ("pitch_range", pitch_range)):
            if not 0 <= value <= 100:
                raise ValueError(f"Expected 0 <= {name} <= 100. Received: {name}={value}")
        data = text.encode("utf-8") + b"\0"
        lib = self._lib
        with self._lock:
            if lib.espeak_SetVoiceByName(self._espeak_name(voice).encode()) != EE_OK:
                raise ValueError(f"Unknown eSpeak voice. Received: voice={voice!r}")
            for parameter, value in ((ESPEAK_RATE, rate), (ESPEAK_VOLUME, 100),
                                     (ESPEAK_PITCH, pitch), (ESPEAK_RANGE, pitch_range)):
                lib.espeak_SetParameter(parameter, int(value), 0)
            self._chunks = []
            status = lib.espeak_Synth(data, len(data), 0, POS_CHARACTER, 0, ESPEAK_CHARS_UTF8,
                                      None, None)
            lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if status != EE_OK:
            raise RuntimeError(f"espeak_Synth failed with status {status} for {text!r}")
        if not chunks:
            return np.zeros(0, np.float32)
        return trim(np.concatenate(chunks).astype(np.float32) / 32768.0,
                    int(MARGIN * self.sample_rate))


def trim(audio, margin):
    """``audio`` without the silence beyond ``margin`` samples before the first and after
    the last sample above 1% of the peak."""
    level = np.abs(audio)
    loud = np.flatnonzero(level > 0.01 * level.max()) if audio.size else []
    if not len(loud):
        return audio[:0]
    return audio[max(0, loud[0] - margin):loud[-1] + 1 + margin]


# ---------------------------------------------------------------------------- texts


def normalise(text):
    """``text`` in the transcript alphabet: lowercase, anything outside ``ALPHABET``
    (hyphens, commas...) a space, spaces collapsed."""
    return " ".join(re.sub(r"[^a-z']+", " ", text.lower()).split())


def digit_string_words(digits):
    """"409" -> "four zero nine" (zero, never "oh")."""
    digits = str(digits)
    if not digits.isascii() or not digits.isdigit():
        raise ValueError(f"Expected a string of digits 0-9. Received: digits={digits!r}")
    return " ".join(DIGITS[int(d)] for d in digits)


def number_words(n, kind="cardinal"):
    """``n`` written out by num2words in English, ``kind`` "cardinal" (1999 -> "one
    thousand nine hundred and ninety nine") or "year" (1999 -> "nineteen ninety
    nine"), in the transcript alphabet."""
    if kind not in ("cardinal", "year"):
        raise ValueError(f"Expected kind 'cardinal' or 'year'. Received: kind={kind!r}")
    num2words = _require("num2words").num2words
    return normalise(num2words(int(n), lang="en", **({"to": "year"} if kind == "year" else {})))


@dataclasses.dataclass(frozen=True)
class Utterance:
    """What clip ``index`` of a set says and how; ``noise_seed`` seeds its noise."""
    index: int
    kind: str
    text: str
    voice: str
    rate: int
    pitch: int
    pitch_range: int
    snr_db: float
    noise_seed: int


def plan(count, seed, voices, noise_snr_db=(10, 40)):
    """The ``count`` utterances of set ``seed``: clip i is drawn from its own
    RandomState((seed, i)), so a smaller set is a prefix of a larger one. Texts are 50%
    digit strings of 1-7 digits, 35% cardinals 0..9999, 15% years 1100..2099."""
    out = []
    for i in range(count):
        rng = np.random.RandomState([seed, i])
        kind = KINDS[rng.choice(len(KINDS), p=KIND_P)]
        if kind == "digits":
            text = digit_string_words("".join(map(str, rng.randint(0, 10, rng.randint(1, 8)))))
        elif kind == "cardinal":
            text = number_words(rng.randint(0, 10000), "cardinal")
        else:
            text = number_words(rng.randint(1100, 2100), "year")
        out.append(Utterance(
            index=i, kind=kind, text=text, voice=voices[rng.randint(len(voices))],
            rate=int(rng.randint(RATES[0], RATES[1] + 1)),
            pitch=int(rng.randint(PITCHES[0], PITCHES[1] + 1)),
            pitch_range=int(rng.randint(PITCH_RANGES[0], PITCH_RANGES[1] + 1)),
            snr_db=float(rng.uniform(*noise_snr_db)), noise_seed=int(rng.randint(2**31))))
    return out


def add_noise(audio, snr_db, seed):
    """``audio`` plus white Gaussian noise ``snr_db`` below its mean power, clipped to
    [-1, 1]."""
    power = float(np.mean(np.square(audio, dtype=np.float64))) if audio.size else 0.0
    scale = np.sqrt(power / 10 ** (snr_db / 10))
    noise = np.random.RandomState(seed).normal(0.0, scale, audio.shape)
    return np.clip(audio + noise, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------ sets


def generate(out_dir, count, seed, noise_snr_db=(10, 40)):
    """Writes ``count`` clips of set ``seed`` (``plan``) as ``out_dir/wav/{i:05d}.wav``
    (16-bit PCM, mono, eSpeak's rate) and ``out_dir/manifest.csv``
    (``path,transcript,speaker``, paths relative to ``out_dir``). Built in
    ``<out_dir>.partial-<pid>`` and renamed at the end, so ``out_dir`` appears complete
    or not at all; ``out_dir`` must not exist or be empty. Returns ``out_dir``."""
    soundfile = _require("soundfile")
    espeak = Espeak.get()
    out_dir = os.path.abspath(os.fspath(out_dir))
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not empty")
    utterances = plan(count, seed, espeak.voices(), noise_snr_db)
    partial = f"{out_dir}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    try:
        os.makedirs(os.path.join(partial, "wav"))
        rows = []
        for u in utterances:
            audio = espeak.synth(u.text, u.voice, u.rate, u.pitch, u.pitch_range)
            if not audio.size:
                raise RuntimeError(f"eSpeak NG gave no audio for {u}")
            path = f"wav/{u.index:05d}.wav"
            soundfile.write(os.path.join(partial, path), add_noise(audio, u.snr_db, u.noise_seed),
                            espeak.sample_rate, subtype="PCM_16")
            rows.append((path, u.text, u.voice))
            done = u.index + 1
            if done % PROGRESS_EVERY == 0 or (done == count and count >= PROGRESS_EVERY):
                print(f"synthesizing speech with eSpeak NG: {done}/{count}", file=sys.stderr,
                      flush=True)
        with open(os.path.join(partial, "manifest.csv"), "w", newline="", encoding="utf-8") as f:
            writer = csv.writer(f, lineterminator="\n")
            writer.writerow(("path", "transcript", "speaker"))
            writer.writerows(rows)
        os.replace(partial, out_dir)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


def user_cache_dir():
    """The user cache's speech folder (``pipelines.common.cache``)."""
    return cache.user_cache_dir("speech")


def cached_set(count=3000, seed=0, cache_dir=None):
    """The folder of ``generate(..., count, seed)`` inside ``cache_dir`` (default
    ``user_cache_dir()``), named ``synthetic-<count>-<seed>-espeak<version>-v<GENERATOR_VERSION>``:
    generated on the first call, reused afterwards."""
    espeak = Espeak.get()
    root = os.fspath(cache_dir) if cache_dir is not None else user_cache_dir()
    path = os.path.join(root, f"synthetic-{count}-{seed}-espeak{espeak.version}"
                              f"-v{GENERATOR_VERSION}")
    if os.path.isfile(os.path.join(path, "manifest.csv")):
        return path
    os.makedirs(root, exist_ok=True)
    _remove_abandoned(path)
    try:
        return generate(path, count, seed)
    except OSError:
        if os.path.isfile(os.path.join(path, "manifest.csv")):  # another process won
            return path
        raise


def _remove_abandoned(path):
    """Deletes ``<path>.partial-<pid>`` folders whose process is gone (killed runs)."""
    folder, prefix = os.path.dirname(path), os.path.basename(path) + ".partial-"
    for name in os.listdir(folder):
        pid = name[len(prefix):]
        if name.startswith(prefix) and pid.isdigit() and int(pid) != os.getpid():
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(os.path.join(folder, name), ignore_errors=True)
            except PermissionError:
                pass
