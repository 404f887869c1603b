"""pipelines.speech.audio against oracles: soundfile and the wave module (WAV reading),
scipy.signal.resample, a NumPy log-mel written from its definition; and the serving
contract: no bytes make the graph functions raise, in a tf.function and a SavedModel."""

import io
import struct
import wave

import numpy as np
import pytest
import scipy.signal
import soundfile as sf
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.speech import audio

ONLY = "(only PCM 8/16/24/32-bit and float 32/64-bit)"
RATE, N_MELS, MAX_SECONDS = 8000, 16, 2.0
STRINGS = tf.TensorSpec([None], tf.string)

decode = tf.function(audio.decode_wav, input_signature=[tf.TensorSpec([], tf.string)])
features = tf.function(lambda c: audio.batch_wav_features(c, RATE, N_MELS, MAX_SECONDS),
                       input_signature=[STRINGS])


def signal(frames, channels, seed=0):
    """(frames, channels) float64 in [-0.9, 0.9]."""
    return np.random.RandomState(seed).uniform(-0.9, 0.9, (frames, channels))


def write(x, rate, subtype="PCM_16", format="WAV"):
    out = io.BytesIO()
    sf.write(out, x, rate, subtype=subtype, format=format)
    return out.getvalue()


def reference(raw):
    """soundfile's float64 reading, channels averaged."""
    x, rate = sf.read(io.BytesIO(raw), dtype="float64", always_2d=True)
    return x.mean(axis=1), rate


def chunk(tag, body, size=None):
    pad = b"\0" if len(body) % 2 else b""
    return tag + struct.pack("<I", len(body) if size is None else size) + body + pad


def riff(*chunks, size=None):
    body = b"WAVE" + b"".join(chunks)
    return b"RIFF" + struct.pack("<I", len(body) if size is None else size) + body


def fmt(tag=1, channels=1, rate=8000, bits=16, subformat=None):
    block = channels * bits // 8
    body = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    if subformat is not None:  # WAVE_FORMAT_EXTENSIBLE: cbSize, valid bits, mask, GUID
        body += struct.pack("<HHIIHH", 22, bits, 0, subformat, 0, 0x10) + bytes.fromhex("800000aa00389b71")
    return chunk(b"fmt ", body)


def int16_data(values):
    return chunk(b"data", np.asarray(values, "<i2").tobytes())


def check_contract(out, batch=None):
    """Every output well formed: flags agree, samples finite in [-1, 1]."""
    if batch is None:
        samples, ok, reason = out["samples"].numpy(), bool(out["ok"]), out["reason"].numpy()
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert out["rate"].dtype == tf.int32 and ok == (reason == b"")
        assert np.all(np.isfinite(samples)) and np.all(np.abs(samples) <= 1)
        if not ok:
            assert samples.shape == (0,) and int(out["rate"]) == 0
        else:
            assert int(out["rate"]) > 0
        return
    f, length = out["features"].numpy(), out["length"].numpy()
    assert f.shape[0] == batch and f.shape[1] >= 1 and f.shape[2] == N_MELS
    assert np.all(np.isfinite(f)) and f.shape[1] == max(1, length.max(initial=0))
    assert np.array_equal(out["ok"].numpy(), out["reason"].numpy() == b"")
    assert np.all(length[~out["ok"].numpy()] == 0)
    for row, n in zip(f, length):
        assert not row[n:].any()


# ------------------------------------------------------------------------ decode_wav

@pytest.mark.parametrize("channels", [1, 2])
@pytest.mark.parametrize("subtype,rate", [("PCM_U8", 8000), ("PCM_16", 16000), ("PCM_24", 22050),
                                          ("PCM_32", 44100), ("FLOAT", 48000), ("DOUBLE", 16000)])
def test_decode_matches_soundfile(subtype, rate, channels):
    raw = write(signal(301, channels), rate, subtype)
    out = decode(raw)
    expected, expected_rate = reference(raw)
    assert bool(out["ok"]) and out["reason"].numpy() == b"" and int(out["rate"]) == expected_rate
    np.testing.assert_allclose(out["samples"].numpy(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("subtype,channels", [("PCM_16", 3), ("PCM_24", 2), ("PCM_32", 1),
                                              ("FLOAT", 4), ("DOUBLE", 2)])
def test_decode_extensible(subtype, channels):
    raw = write(signal(200, channels, seed=1), 44100, subtype, format="WAVEX")
    assert struct.unpack("<H", raw[20:22])[0] == 0xFFFE
    out = decode(raw)
    assert bool(out["ok"]), out["reason"]
    np.testing.assert_allclose(out["samples"].numpy(), reference(raw)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("width", [1, 2, 3, 4])
def test_decode_matches_wave_module(width):
    """Integer scaling: u8 (x - 128) / 128, s16 x / 2**15, s24 x / 2**23, s32 x / 2**31."""
    rng = np.random.RandomState(width)
    frames = rng.randint(0, 256, (150, 2 * width), dtype=np.uint8)
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(width)
        w.setframerate(11025)
        w.writeframes(frames.tobytes())
    got = decode(out.getvalue())
    b = frames.reshape(150, 2, width).astype(np.int64)
    ints = sum(b[..., i] << (8 * i) for i in range(width))
    if width == 1:
        values = (ints - 128) / 128.0
    else:
        values = np.where(ints >= 2 ** (8 * width - 1), ints - 2 ** (8 * width), ints) / 2.0 ** (8 * width - 1)
    assert int(got["rate"]) == 11025
    np.testing.assert_allclose(got["samples"].numpy(), values.mean(axis=1), rtol=0, atol=1e-6)
    np.testing.assert_allclose(got["samples"].numpy(), reference(out.getvalue())[0], rtol=0, atol=1e-6)


def test_chunks_around_fmt_and_data():
    values = [0, 1, -1, 32767, -32768, 1000, -1000]
    raw = riff(chunk(b"JUNK", b"x" * 6), fmt(), chunk(b"LIST", b"INFOabc"),  # odd: padded
               chunk(b"fact", struct.pack("<I", 7)), int16_data(values), chunk(b"LIST", b"INFOtail"))
    out = decode(raw)
    assert bool(out["ok"]) and int(out["rate"]) == 8000
    np.testing.assert_array_equal(out["samples"].numpy(), np.float32(values) / 32768)
    np.testing.assert_allclose(out["samples"].numpy(), reference(raw)[0], atol=1e-7)


def test_data_sizes_that_run_past_the_end():
    """Streamed (0xFFFFFFFF, or 0 with a RIFF size of 0) and over-long data chunks are read
    to the end of the file, whole frames only."""
    body = np.arange(-5, 6, dtype="<i2").tobytes()
    expected = np.arange(-5, 6, dtype=np.float32) / 32768
    for riff_size, data_size in [(0xFFFFFFFF, 0xFFFFFFFF), (0, 0), (None, 1000), (None, 0xFFFFFFFF)]:
        raw = riff(fmt(), b"data" + struct.pack("<I", data_size) + body, size=riff_size)
        out = decode(raw)
        assert bool(out["ok"])
        np.testing.assert_array_equal(out["samples"].numpy(), expected)
        np.testing.assert_array_equal(decode(raw + b"\x07")["samples"].numpy(), expected)  # partial frame
    # size 0 in a sized RIFF is an empty data chunk: the LIST after it is not audio
    raw = riff(fmt(), chunk(b"data", b""), chunk(b"LIST", b"INFO"))
    out = decode(raw)
    assert bool(out["ok"]) and out["samples"].shape == (0,)


def test_empty_header_only_and_errors():
    out = decode(b"")
    assert not out["ok"] and out["reason"].numpy() == b"empty input" and out["samples"].shape == (0,)
    out = decode(write(np.zeros((0, 2)), 16000))
    assert bool(out["ok"]) and out["samples"].shape == (0,) and int(out["rate"]) == 16000
    cases = {
        b"not a wav file at all": "not a RIFF/WAVE file",
        b"RIFF\x10\x00\x00\x00AVI LIST": "not a RIFF/WAVE file",
        b"RIFF\x24\x00": "truncated",
        riff(fmt()): "no data chunk",
        riff(int16_data([1, 2])): "no fmt chunk",
        riff(fmt(channels=0), int16_data([1])): "bad fmt chunk: 0 channels",
        riff(fmt(rate=0), int16_data([1])): "bad fmt chunk: sample rate 0",
        riff(chunk(b"fmt ", b"\x01\x00\x01\x00" + b"\0" * 10), int16_data([1])): "bad fmt chunk",
        riff(chunk(b"fmt ", b"\x01\x00\x01\x00" + b"\0" * 10)): "bad fmt chunk",
        riff(fmt())[:-2]: "truncated",
        riff(fmt(bits=12), int16_data([1])): f"unsupported format 1 with 12 bits {ONLY}",
        riff(fmt(tag=3, bits=16), int16_data([1])): f"unsupported format 3 with 16 bits {ONLY}",
        riff(fmt(tag=0xFFFE, bits=16, subformat=6), int16_data([1])):
            f"unsupported format 65534 subformat 6 {ONLY}",
    }
    for subtype, tag in [("MS_ADPCM", 2), ("ALAW", 6), ("ULAW", 7), ("IMA_ADPCM", 17)]:
        cases[write(signal(500, 1), 8000, subtype)] = f"unsupported format {tag} {ONLY}"
    for raw, reason in cases.items():
        out = decode(raw)
        check_contract(out)
        assert out["reason"].numpy().decode() == reason, raw[:48]
    assert bool(decode(riff(fmt(tag=0xFFFE, bits=16, subformat=1), int16_data([1])))["ok"])


def test_truncated_at_every_cut():
    """A cut before the samples start is "truncated"; a cut inside them keeps the whole
    frames before it."""
    samples = (signal(60, 2) * 32767).astype("<i2")
    raw = riff(fmt(channels=2), chunk(b"LIST", b"INFOISFT\x05\x00\x00\x00test\0"),
               chunk(b"data", samples.tobytes()))
    start = raw.index(b"data") + 8
    full = decode(raw)["samples"].numpy()
    np.testing.assert_allclose(full, samples.mean(axis=1) / 32768, atol=1e-7)
    for cut in range(len(raw)):
        out = decode(raw[:cut])
        check_contract(out)
        if cut == 0:
            assert out["reason"].numpy() == b"empty input"
        elif cut < start:
            assert out["reason"].numpy() == b"truncated", cut
        else:
            assert bool(out["ok"]), cut
            np.testing.assert_array_equal(out["samples"].numpy(), full[:(cut - start) // 4])


VALID = riff(fmt(channels=2, bits=24), chunk(b"LIST", b"INFO"), chunk(b"data", bytes(range(60))))


@st.composite
def wav_like(draw):
    """Random bytes, random bytes behind a RIFF header, or a valid file with some bytes
    replaced and cut anywhere."""
    kind = draw(st.integers(0, 2))
    if kind == 0:
        return draw(st.binary(max_size=4096))
    if kind == 1:
        return b"RIFF" + draw(st.binary(min_size=4, max_size=4)) + b"WAVE" + draw(st.binary(max_size=2048))
    raw = bytearray(VALID)
    for at, value in draw(st.lists(st.tuples(st.integers(0, len(raw) - 1), st.integers(0, 255)),
                                   max_size=6)):
        raw[at] = value
    return bytes(raw[:draw(st.integers(0, len(raw)))])


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(wav_like())
def test_any_bytes_give_flags_not_errors(raw):
    check_contract(decode(raw))
    check_contract(features(tf.constant([raw, raw[: len(raw) // 2]])), batch=2)


# --------------------------------------------------------------------------- signal

@pytest.mark.parametrize("n,rate,target", [(1000, 8000, 16000), (1001, 8000, 16000), (1001, 44100, 8000),
                                           (1000, 22050, 16000), (999, 16000, 22050), (1000, 16000, 16001),
                                           (2, 16000, 8000), (3, 8000, 16000), (1, 48000, 44100)])
def test_resample_matches_scipy(n, rate, target):
    x = np.random.RandomState(n).randn(n).astype(np.float32)
    m = int(np.floor(n * target / rate + 0.5))
    got = tf.function(lambda x, r: audio.resample(x, r, target))(x, tf.constant(rate))
    assert got.shape == (m,)
    np.testing.assert_allclose(got.numpy(), scipy.signal.resample(x.astype(np.float64), m), atol=1e-5)


def test_resample_edges():
    x = np.random.RandomState(0).randn(100).astype(np.float32)
    np.testing.assert_array_equal(audio.resample(x, 8000, 8000).numpy(), x)
    for samples, rate in [(x, 0), (x, -3), (x[:0], 8000), (x[:1], 48000)]:  # 1 -> round(1/6) = 0
        assert audio.resample(samples, tf.constant(rate), 8000).shape == (0,)
    with pytest.raises(ValueError, match="target_rate=0"):
        audio.resample(x, 8000, 0)


def test_resample_keeps_a_sine_frequency():
    t = np.arange(22050) / 44100
    y = audio.resample(np.sin(2 * np.pi * 1000 * t).astype(np.float32), 44100, 8000).numpy()
    assert y.shape == (4000,)
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) * 8000 / len(y) == pytest.approx(1000, abs=2)
    assert np.abs(y[100:-100]).max() == pytest.approx(1, abs=0.02)


def numpy_log_mel(x, rate, n_mels, frame_ms, step_ms, fmin, fmax):
    """log(|rfft(frame * periodic Hann)|^2 @ mel + 1e-6), frames every step, end zero-padded."""
    length, step = round(rate * frame_ms / 1000), round(rate * step_ms / 1000)
    fft_length = 1 << (length - 1).bit_length()
    count = -(-len(x) // step)
    padded = np.concatenate([x, np.zeros(max(0, (count - 1) * step + length - len(x)))])
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(length) / length)
    frames = np.stack([padded[i * step:i * step + length] for i in range(count)]) * window
    power = np.abs(np.fft.rfft(frames, fft_length)) ** 2
    mel = tf.signal.linear_to_mel_weight_matrix(n_mels, fft_length // 2 + 1, rate, fmin, fmax).numpy()
    return np.log(power @ mel.astype(np.float64) + 1e-6)


@pytest.mark.parametrize("n,rate,kwargs", [(4000, 8000, {}), (1234, 16000, {"n_mels": 24, "fmax": 6000.0}),
                                           (50, 8000, {"frame_ms": 20.0, "step_ms": 5.0, "fmin": 0.0})])
def test_log_mel_matches_numpy(n, rate, kwargs):
    x = np.random.RandomState(n).uniform(-0.5, 0.5, n).astype(np.float32)
    got = audio.log_mel(x, rate, **kwargs).numpy()
    full = {"n_mels": 40, "frame_ms": 25.0, "step_ms": 10.0, "fmin": 20.0, "fmax": rate / 2, **kwargs}
    expected = numpy_log_mel(x.astype(np.float64), rate, **full)
    assert got.shape == (-(-n // round(rate * full["step_ms"] / 1000)), full["n_mels"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-3)
    assert audio.log_mel(np.zeros(0, np.float32), rate, **kwargs).shape == (0, full["n_mels"])


def test_normalise():
    x = np.random.RandomState(0).randn(30, 5).astype(np.float32) * [1, 2, 3, 4, 5] + 7
    x[:, 4] = -13.8  # a silent bin
    y = audio.normalise(x).numpy()
    np.testing.assert_allclose(y[:, :4].mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(y[:, :4].std(0), 1, atol=1e-4)
    assert np.abs(y[:, 4]).max() < 1e-2  # float32 rounding / the 1e-3 floor, not a blow-up
    padded = audio.normalise(x, length=20).numpy()
    np.testing.assert_allclose(padded[:20], audio.normalise(x[:20]).numpy(), atol=1e-6)
    assert not padded[20:].any()
    batch = audio.normalise(np.stack([x, x]), length=[20, 30]).numpy()
    np.testing.assert_allclose(batch[0], padded, atol=1e-6)
    np.testing.assert_allclose(batch[1], y, atol=1e-6)
    assert audio.normalise(np.zeros((0, 5), np.float32)).shape == (0, 5)


# ------------------------------------------------------------------------- features

def test_long_clip_is_cut_before_resampling():
    x = signal(3 * 16000, 1, seed=3)
    full, head = write(x, 16000), write(x[:16000], 16000)
    long, short = (audio.wav_features(tf.constant(raw), RATE, N_MELS, 1.0) for raw in (full, head))
    assert bool(long["truncated"]) and not bool(short["truncated"])
    assert float(long["seconds"]) == pytest.approx(3.0) and float(short["seconds"]) == pytest.approx(1.0)
    assert int(long["length"]) == int(short["length"]) == 100
    np.testing.assert_allclose(long["features"].numpy(), short["features"].numpy(), atol=1e-5)


@pytest.mark.parametrize("speed,rate", [(1.1, 8800), (0.9, 7200), (1.25, 10000)])
def test_speed_reads_the_clip_as_sampled_faster(speed, rate):
    x = signal(6000, 1, seed=5)
    faster = audio.wav_features(tf.constant(write(x, 8000)), RATE, N_MELS, MAX_SECONDS, speed)
    relabelled = audio.wav_features(tf.constant(write(x, rate)), RATE, N_MELS, MAX_SECONDS)
    assert int(faster["length"]) == int(relabelled["length"]) == -(-round(6000 * 8000 / rate) // 80)
    np.testing.assert_allclose(faster["features"].numpy(), relabelled["features"].numpy(), atol=1e-5)


def test_batch_mixes_good_and_bad():
    good, stereo = write(signal(16000, 1), 16000), write(signal(9000, 2, seed=2), 22050, "PCM_24")
    long = write(signal(3 * 8000, 1), 8000)
    batch = [good, b"\x00garbage" * 9, b"", stereo, long]
    out = features(tf.constant(batch))
    check_contract(out, batch=5)
    assert out["features"].dtype == tf.float32 and out["length"].dtype == tf.int32
    assert out["seconds"].dtype == tf.float32 and out["truncated"].dtype == tf.bool
    np.testing.assert_array_equal(out["ok"].numpy(), [True, False, False, True, True])
    np.testing.assert_array_equal(out["truncated"].numpy(), [False, False, False, False, True])
    assert list(out["reason"].numpy()) == [b"", b"not a RIFF/WAVE file", b"empty input", b"", b""]
    np.testing.assert_allclose(out["seconds"].numpy(), [1.0, 0, 0, 9000 / 22050, 3.0], rtol=1e-6)
    # frames = ceil(resampled samples / 80): 1 s -> 8000; 9000 at 22050 Hz -> 3265; 2 s kept of 3
    np.testing.assert_array_equal(out["length"].numpy(), [100, 0, 0, 41, 200])
    assert out["features"].shape == (5, 200, N_MELS)
    for row, raw in zip(out["features"].numpy(), batch):
        one = audio.wav_features(tf.constant(raw), RATE, N_MELS, MAX_SECONDS)["features"].numpy()
        np.testing.assert_allclose(row[:len(one)], one, atol=1e-5)
    for contents in ([], [b""], [b"junk", b""]):
        out = features(tf.constant(contents, tf.string))
        check_contract(out, batch=len(contents))
        assert out["features"].shape == (len(contents), 1, N_MELS)


def test_saved_model_round_trip(tmp_path):
    class Features(tf.Module):
        @tf.function(input_signature=[STRINGS])
        def __call__(self, contents):
            return audio.batch_wav_features(contents, RATE, N_MELS, MAX_SECONDS)

    module = Features()
    tf.saved_model.save(module, str(tmp_path / "features"),
                        signatures={"serving_default": module.__call__})
    loaded = tf.saved_model.load(str(tmp_path / "features"))
    batch = tf.constant([write(signal(4000, 2), 44100, "PCM_24"), b"RIFF", b""])
    expected = features(batch)
    for out in (loaded(batch), loaded.signatures["serving_default"](contents=batch)):
        assert set(out) == {"features", "length", "ok", "truncated", "reason", "seconds"}
        for key, value in expected.items():
            np.testing.assert_allclose(out[key].numpy(), value.numpy(), atol=1e-6) \
                if value.dtype.is_floating else np.testing.assert_array_equal(out[key].numpy(), value.numpy())
    empty = loaded(tf.constant([], tf.string))
    assert empty["features"].shape == (0, 1, N_MELS)
