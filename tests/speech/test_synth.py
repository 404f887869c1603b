"""pipelines.speech.synth: number transcripts exactly; eSpeak NG audio statistically (its
output differs from call to call); sets, their manifest, noise level, atomic writing and
the cache."""

import csv
import os
import sys

import numpy as np
import pytest

import soundfile  # the speech extra (the test extra takes it)

from pipelines.common.textio import DataError
from pipelines.speech import synth


@pytest.fixture(scope="module")
def espeak():
    return synth.Espeak.get()


def read_manifest(folder):
    with open(os.path.join(folder, "manifest.csv"), newline="", encoding="utf-8") as f:
        return list(csv.reader(f))


def log_spectrum(audio, n=512):
    frames = np.lib.stride_tricks.sliding_window_view(audio, n)[:: n // 2] * np.hanning(n)
    return np.log10(np.mean(np.abs(np.fft.rfft(frames)) ** 2, axis=0) + 1e-10)


# ---------------------------------------------------------------------------- texts


@pytest.mark.parametrize("n, kind, words", [
    (0, "cardinal", "zero"),
    (7, "cardinal", "seven"),
    (1999, "cardinal", "one thousand nine hundred and ninety nine"),
    (9999, "cardinal", "nine thousand nine hundred and ninety nine"),
    (1999, "year", "nineteen ninety nine"),
    (2005, "year", "two thousand and five"),
    (1905, "year", "nineteen oh five"),
    (1100, "year", "eleven hundred"),
])
def test_number_words(n, kind, words):
    assert synth.number_words(n, kind) == words


def test_digit_string_words():
    assert synth.digit_string_words("409") == "four zero nine"
    assert synth.digit_string_words("0000") == "zero zero zero zero"
    for bad in ("", "4a", "-1", "٣"):
        with pytest.raises(ValueError):
            synth.digit_string_words(bad)
    with pytest.raises(ValueError):
        synth.number_words(5, "ordinal")


def test_transcripts_use_the_alphabet():
    texts = [synth.number_words(n, "cardinal") for n in range(0, 10000, 7)]
    texts += [synth.number_words(n, "year") for n in range(1100, 2100, 3)]
    texts += [u.text for u in synth.plan(300, 0, ["v"])]
    assert set("".join(texts)) <= set(synth.ALPHABET)
    assert all(t == " ".join(t.split()) and t for t in texts)


def test_plan_is_seeded_and_mixes_kinds():
    voices = ["a+m1", "b+f2", "c+m3"]
    utterances = synth.plan(1000, 5, voices)
    assert synth.plan(20, 5, voices) == utterances[:20]
    assert synth.plan(20, 6, voices) != utterances[:20]
    kinds = [u.kind for u in utterances]
    for kind, p in zip(synth.KINDS, synth.KIND_P):
        assert abs(kinds.count(kind) / len(kinds) - p) < 0.05
    assert {len(u.text.split()) for u in utterances if u.kind == "digits"} == set(range(1, 8))
    assert {u.voice for u in utterances} == set(voices)
    assert all(120 <= u.rate <= 220 and 20 <= u.pitch <= 80 and 10 <= u.snr_db <= 40
               for u in utterances)


# ---------------------------------------------------------------------------- eSpeak


def test_espeak_is_one_instance(espeak):
    assert synth.Espeak.get() is espeak
    assert espeak.sample_rate == 22050
    assert espeak.version[0].isdigit()


def test_voices(espeak):
    voices = espeak.voices()
    assert voices == sorted(voices) and len(voices) >= 50
    assert {"en-us+f3", "en-gb+m1", "en-gb-scotland+f5"} <= set(voices)
    assert not any(v.startswith("en-shaw") for v in voices)
    assert all(v.split("+")[1] in synth.VARIANTS for v in voices)


def test_synth_audio(espeak):
    audio = espeak.synth("four zero nine")
    assert audio.dtype == np.float32 and audio.ndim == 1 and audio.size
    assert np.abs(audio).max() <= 1.0 and np.abs(audio).max() > 0.1
    margin = int(synth.MARGIN * espeak.sample_rate)
    loud = np.flatnonzero(np.abs(audio) > 0.01 * np.abs(audio).max())
    assert loud[0] <= margin and audio.size - 1 - loud[-1] <= margin
    longer = espeak.synth("four zero nine one two three five six seven")
    assert longer.size > 2 * audio.size
    text = "one two three four five six"
    slow, fast = espeak.synth(text, rate=120), espeak.synth(text, rate=220)
    assert fast.size < 0.75 * slow.size


def test_voices_sound_different(espeak):
    text = "one two three four five"

    def distance(a, b):
        return np.sqrt(np.mean((log_spectrum(a) - log_spectrum(b)) ** 2))

    for v, w in (("en-us+m1", "en-us+f3"), ("en-gb+m7", "en-gb+m1")):
        a, again, b = espeak.synth(text, v), espeak.synth(text, v), espeak.synth(text, w)
        assert distance(a, b) > 2 * distance(a, again)


def test_synth_rejects_unknown_voices(espeak):
    for voice in ("en-us+nosuchvariant", "xx-nosuchlanguage"):
        with pytest.raises(ValueError, match="voice"):
            espeak.synth("one", voice)
    with pytest.raises(ValueError, match="rate"):
        espeak.synth("one", rate=20)


def test_trim():
    audio = np.concatenate([np.zeros(5000), np.ones(100), np.zeros(5000)]).astype(np.float32)
    assert synth.trim(audio, 30).size == 160
    assert synth.trim(np.zeros(10, np.float32), 30).size == 0


def test_add_noise_snr():
    clean = (0.3 * np.sin(np.arange(40000) * 0.05)).astype(np.float32)
    noisy = synth.add_noise(clean, 15.0, seed=1)
    snr = 10 * np.log10(np.mean(clean ** 2) / np.mean((noisy - clean) ** 2))
    assert abs(snr - 15.0) < 0.2
    assert np.array_equal(noisy, synth.add_noise(clean, 15.0, seed=1))


# ------------------------------------------------------------------------------ sets


def test_generate(espeak, tmp_path):
    # The noise power is read from the band above 10 kHz, where clean eSpeak speech has
    # about -38 dB of its energy (more in sibilants): at 10-15 dB SNR that biases the
    # measured SNR down by 0-1.8 dB (seen over 400 clips), hence the asymmetric bounds.
    out = synth.generate(tmp_path / "a", 12, seed=3, noise_snr_db=(10, 15))
    rows = read_manifest(out)
    assert rows[0] == ["path", "transcript", "speaker"]
    assert len(rows) == 13 and sorted(os.listdir(tmp_path)) == ["a"]
    assert sorted(os.listdir(os.path.join(out, "wav"))) == [f"{i:05d}.wav" for i in range(12)]
    plan = synth.plan(12, 3, espeak.voices(), (10, 15))
    for u, (path, transcript, speaker) in zip(plan, rows[1:]):
        assert (path, transcript, speaker) == (f"wav/{u.index:05d}.wav", u.text, u.voice)
        info = soundfile.info(os.path.join(out, path))
        assert (info.samplerate, info.channels, info.subtype) == (22050, 1, "PCM_16")
        audio, _ = soundfile.read(os.path.join(out, path), dtype="float64")
        power = np.abs(np.fft.rfft(audio)) ** 2
        high = np.fft.rfftfreq(audio.size, 1 / 22050) > 10000
        noise = power[high].mean() * power.size
        measured = 10 * np.log10((power.sum() - noise) / noise)
        assert -2.5 < measured - u.snr_db < 1.0, (u, measured)

    same = synth.generate(tmp_path / "b", 12, seed=3)
    other = synth.generate(tmp_path / "c", 12, seed=4)
    assert read_manifest(same) == rows
    assert read_manifest(other) != rows


def test_generate_refuses_a_full_folder(tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    with pytest.raises(FileExistsError):
        synth.generate(tmp_path / "full", 2, seed=0)


def test_interrupted_generate_leaves_nothing(espeak, tmp_path, monkeypatch):
    calls = []
    real = espeak.synth

    def failing(*args, **kwargs):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(espeak, "synth", failing)
    with pytest.raises(KeyboardInterrupt):
        synth.generate(tmp_path / "set", 8, seed=0)
    assert os.listdir(tmp_path) == []


def test_cached_set_generates_once(espeak, tmp_path, monkeypatch):
    path = synth.cached_set(count=4, seed=2, cache_dir=tmp_path)
    assert os.path.basename(path) == (f"synthetic-4-2-espeak{espeak.version}"
                                      f"-v{synth.GENERATOR_VERSION}")
    assert len(read_manifest(path)) == 5

    def fail(*args, **kwargs):
        raise AssertionError("generated again")

    monkeypatch.setattr(synth, "generate", fail)
    assert synth.cached_set(count=4, seed=2, cache_dir=tmp_path) == path


def test_cached_set_removes_abandoned_partials(tmp_path, espeak):
    name = f"synthetic-2-0-espeak{espeak.version}-v{synth.GENERATOR_VERSION}"
    dead = tmp_path / f"{name}.partial-{2 ** 30}"  # above Linux's pid_max: never running
    (dead / "wav").mkdir(parents=True)
    synth.cached_set(count=2, seed=0, cache_dir=tmp_path)
    assert sorted(os.listdir(tmp_path)) == [name]


def test_user_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SEQZOO_CACHE", str(tmp_path / "zoo"))
    assert synth.user_cache_dir() == os.path.join(tmp_path, "zoo", "speech")
    monkeypatch.delenv("SEQZOO_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert synth.user_cache_dir() == os.path.join(tmp_path, "xdg", "seqzoo", "speech")


@pytest.mark.parametrize("module", ["espeakng_loader", "soundfile"])
def test_missing_extra_is_a_data_error(module, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
    monkeypatch.setattr(synth.Espeak, "_instance", None)
    with pytest.raises(DataError) as error:
        synth.generate(tmp_path / "set", 1, seed=0)
    assert str(error.value).endswith(synth.INSTALL)
    assert not os.path.exists(tmp_path / "set")
