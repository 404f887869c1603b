"""Speech audio in the graph: WAV bytes -> mono samples -> resampled -> log-mel features.

Pure TensorFlow ops (no py_function, no NumPy), so the same functions run in the tf.data
chain and in the exported serving signature. No input bytes make them raise: garbage,
an empty string, a cut header, 0 samples or a huge clip all give valid outputs with
``ok`` / ``reason`` saying what happened.

WAV reading (``decode_wav``; RIFF parsed here, not by tf.audio.decode_wav, which fails
in the graph on 8/24-bit files and bad bytes):
* "RIFF" <size> "WAVE" then chunks <id(4)> <size u32 LE> <body, padded to even>; the
  chunks are walked until both "fmt " and "data" are found, skipping LIST/fact/any other.
* Formats: tag 1 (PCM) 8/16/24/32-bit, tag 3 (IEEE float) 32/64-bit, tag 0xFFFE
  (WAVE_FORMAT_EXTENSIBLE) whose subformat GUID starts with 1 or 3, decoded by its
  container size (wBitsPerSample). Any channel count >= 1; block align is not read
  (a frame is channels * bits / 8 bytes); a trailing partial frame is dropped.
* Scaling, as soundfile / libsndfile read floats: u8 (x - 128) / 128, s16 x / 2**15,
  s24 x / 2**23, s32 x / 2**31; float samples as stored, NaN/inf -> 0, clipped to
  [-1, 1]. Channels are averaged.
* A data chunk whose declared size runs past the end of the file is read up to the end
  of the file, as is one of size 0xFFFFFFFF, or of size 0 when the RIFF size is 0 or
  0xFFFFFFFF too (streamed writers leave those): a file cut inside its samples
  decodes (ok) to the whole frames it holds. A file cut before its samples start is
  "truncated".

Reasons (``reason`` when not ok, "" when ok), the first that applies:
    "empty input"; "not a RIFF/WAVE file"; "truncated" (the file ends before its
    samples start: inside the RIFF header, a chunk header, the fmt chunk, or before
    the chunk its RIFF size promises); "no fmt chunk", "no data chunk" (a complete
    chunk list without it); "bad fmt chunk" (fewer than 16 bytes, 40 when
    extensible); "bad fmt chunk: 0 channels"; "bad fmt chunk: sample rate <r>" (0 or
    >= 2**31); "unsupported format <tag>[ subformat <s>][ with <bits> bits] " + ONLY,
    e.g. "unsupported format 2 (only PCM 8/16/24/32-bit and float 32/64-bit)",
    "unsupported format 1 with 12 bits (...)", "unsupported format 65534 subformat 6
    (...)".

Features (``wav_features``): the first ``max_seconds`` of the clip at its own rate,
resampled to ``rate`` by the FFT method, log-mel (``log_mel``), normalised per
utterance and mel bin (``normalise``).
"""

import tensorflow as tf

RIFF_HEADER = b"RIFF\0\0\0\0WAVE"
FMT, DATA = b"fmt ", b"data"
PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
STREAM_SIZE = 0xFFFFFFFF  # a size field a streaming writer could not fill in
ONLY = "(only PCM 8/16/24/32-bit and float 32/64-bit)"
LOG_FLOOR = 1e-6  # log(mel power + LOG_FLOOR)
STD_FLOOR = 1e-3  # normalise: silence stays finite
# decoders by kind: 0 nothing, 1 u8, 2 s16, 3 s24, 4 s32, 5 f32, 6 f64
_KINDS = ((PCM, 8), (PCM, 16), (PCM, 24), (PCM, 32), (FLOAT, 32), (FLOAT, 64))


# ------------------------------------------------------------------------------ bytes


def _read(contents, size, pos, n):
    """(n,) int64 bytes of ``contents`` (``size`` bytes long) from ``pos``: zeros past
    the end, any ``pos`` allowed."""
    pos = tf.clip_by_value(pos, tf.constant(0, tf.int64), size)
    raw = tf.io.decode_raw(tf.strings.substr(contents, pos, tf.constant(n, tf.int64)), tf.uint8)
    return tf.cast(tf.pad(raw, [[0, n - tf.shape(raw)[0]]]), tf.int64)


def _u16(b, i):
    return b[i] + b[i + 1] * 256


def _u32(b, i):
    return b[i] + b[i + 1] * 256 + b[i + 2] * 65536 + b[i + 3] * 16777216


def _is(b, tag):
    return tf.reduce_all(tf.equal(b[:4], tf.constant(list(tag), tf.int64)))


def _decoders():
    """Branches for tf.switch_case: data bytes -> (frames * channels,) float32."""
    def pcm(dtype, scale):
        return lambda data: tf.cast(tf.io.decode_raw(data, dtype), tf.float32) / scale

    def u8(data):  # unsigned, 128 is zero
        return (tf.cast(tf.io.decode_raw(data, tf.uint8), tf.float32) - 128.0) / 128.0

    def s24(data):
        b = tf.reshape(tf.cast(tf.io.decode_raw(data, tf.uint8), tf.int32), [-1, 3])  # (k, 3)
        x = b[:, 0] + b[:, 1] * 256 + b[:, 2] * 65536  # 0 .. 2**24 - 1
        x = tf.where(x >= 2 ** 23, x - 2 ** 24, x)  # sign of the top byte
        return tf.cast(x, tf.float32) / 2.0 ** 23

    def floats(dtype):
        def decode(data):
            x = tf.io.decode_raw(data, dtype)
            x = tf.where(tf.math.is_finite(x), x, tf.zeros_like(x))
            return tf.cast(tf.clip_by_value(x, -1.0, 1.0), tf.float32)
        return decode

    return [lambda data: tf.zeros([0], tf.float32), u8, pcm(tf.int16, 2.0 ** 15), s24,
            pcm(tf.int32, 2.0 ** 31), floats(tf.float32), floats(tf.float64)]


def _pick(cases, default):
    """The value of the first true (condition, string) of ``cases``, else ``default``."""
    out = tf.constant(default)
    for condition, value in reversed(cases):
        out = tf.where(condition, value, out)
    return out


# -------------------------------------------------------------------------------- WAV


def _parse_wav(contents, max_seconds=None):
    """decode_wav's dict plus "frames": int64 frames in the whole clip; with
    ``max_seconds`` only the first round(max_seconds * rate) frames are decoded."""
    contents = tf.convert_to_tensor(contents, tf.string)
    size = tf.cast(tf.strings.length(contents), tf.int64)
    # RIFF header: the bytes present must match "RIFF????WAVE"
    head = _read(contents, size, tf.constant(0, tf.int64), 12)
    checked = tf.constant([True] * 4 + [False] * 4 + [True] * 4)
    present = tf.range(12, dtype=tf.int64) < size
    mismatch = tf.reduce_any(checked & present & tf.not_equal(head, list(RIFF_HEADER)))
    is_riff = ~mismatch & (size >= 12)
    riff_size = _u32(head, 4)
    streamed = tf.equal(riff_size, 0) | tf.equal(riff_size, STREAM_SIZE)
    riff_end = tf.where(streamed, size, riff_size + 8)

    # chunk walk: (pos, fmt body pos, fmt size, data body pos, data size), -1 = not found
    def more(pos, fmt_pos, fmt_size, data_pos, data_size):
        return is_riff & (pos + 8 <= size) & ((fmt_pos < 0) | (data_pos < 0))

    def step(pos, fmt_pos, fmt_size, data_pos, data_size):
        b = _read(contents, size, pos, 8)
        n = _u32(b, 4)
        first_fmt = _is(b, FMT) & (fmt_pos < 0)
        first_data = _is(b, DATA) & (data_pos < 0)
        return (pos + 8 + n + n % 2,
                tf.where(first_fmt, pos + 8, fmt_pos), tf.where(first_fmt, n, fmt_size),
                tf.where(first_data, pos + 8, data_pos), tf.where(first_data, n, data_size))

    minus = tf.constant(-1, tf.int64)
    pos, fmt_pos, fmt_size, data_pos, data_size = tf.while_loop(
        more, step, (tf.constant(12, tf.int64), minus, minus, minus, minus))
    cut = tf.not_equal(pos, size) | (riff_end > size)  # the file ends inside a chunk

    f = _read(contents, size, fmt_pos, 40)
    tag, channels, rate, bits, subformat = _u16(f, 0), _u16(f, 2), _u32(f, 4), _u16(f, 14), _u16(f, 24)
    extensible = tf.equal(tag, EXTENSIBLE)
    code = tf.where(extensible, subformat, tag)
    need = tf.where(extensible, tf.constant(40, tf.int64), 16)  # fmt bytes read
    kind = tf.constant(0, tf.int64)
    for i, (c, b) in enumerate(_KINDS, 1):
        kind = tf.where(tf.equal(code, c) & tf.equal(bits, b), tf.constant(i, tf.int64), kind)
    unsupported = tf.strings.join([
        "unsupported format ", tf.strings.as_string(tag),
        tf.where(extensible, tf.strings.join([" subformat ", tf.strings.as_string(subformat)]), ""),
        tf.where(tf.equal(code, PCM) | tf.equal(code, FLOAT),
                 tf.strings.join([" with ", tf.strings.as_string(bits), " bits"]), ""),
        " " + ONLY])
    reason = _pick([
        (tf.equal(size, 0), "empty input"),
        (mismatch, "not a RIFF/WAVE file"),
        (~is_riff, "truncated"),  # a prefix of "RIFF????WAVE"
        (fmt_pos < 0, tf.where(cut, "truncated", "no fmt chunk")),
        (fmt_size < need, "bad fmt chunk"),
        (fmt_pos + need > size, "truncated"),
        (tf.equal(channels, 0), "bad fmt chunk: 0 channels"),
        (tf.equal(rate, 0) | (rate >= 2 ** 31),
         tf.strings.join(["bad fmt chunk: sample rate ", tf.strings.as_string(rate)])),
        (tf.equal(kind, 0), unsupported),
        (data_pos < 0, tf.where(cut, "truncated", "no data chunk")),
    ], "")
    ok = tf.equal(reason, "")

    # samples: whole frames of the data chunk (to the end of the file: see the docstring)
    data_pos = tf.clip_by_value(data_pos, 0, size)
    available = size - data_pos
    to_end = (tf.equal(data_size, STREAM_SIZE) | (data_size > available)
              | (tf.equal(data_size, 0) & streamed))
    data_bytes = tf.where(to_end, available, data_size)
    channels = tf.where(ok, channels, 1)
    frame_bytes = channels * tf.maximum(bits // 8, 1)
    frames = tf.where(ok, data_bytes // frame_bytes, 0)
    kept = frames
    if max_seconds is not None:
        limit = tf.cast(tf.round(float(max_seconds) * tf.cast(rate, tf.float64)), tf.int64)
        kept = tf.clip_by_value(limit, 0, frames)
    data = tf.strings.substr(contents, data_pos, kept * frame_bytes)
    branches = [lambda fn=fn: fn(data) for fn in _decoders()]
    interleaved = tf.switch_case(tf.cast(tf.where(ok, kind, 0), tf.int32), branches)  # (kept * channels,)
    samples = tf.reduce_mean(tf.reshape(interleaved, [-1, tf.cast(channels, tf.int32)]), axis=1)
    return {"samples": tf.ensure_shape(samples, [None]),
            "rate": tf.where(ok, tf.cast(rate, tf.int32), 0), "ok": ok, "reason": reason,
            "frames": frames}


def decode_wav(contents):
    """WAV bytes -> mono samples, never raising.

    Args:
        contents: scalar tf.string, the bytes of a file.

    Returns:
        {"samples": (n,) float32 in [-1, 1], channels averaged (shape (0,) when not
        ok); "rate": int32 scalar, frames per second (0 when not ok); "ok": bool
        scalar; "reason": tf.string scalar, "" when ok, else one of the module
        docstring's reasons}.
    """
    parsed = _parse_wav(contents)
    return {key: parsed[key] for key in ("samples", "rate", "ok", "reason")}


# ---------------------------------------------------------------------------- signal


def resample(samples, rate, target_rate):
    """Band-limited resampling by the FFT method (as scipy.signal.resample).

    y = irfft(Y, m) * m / n, with Y the first min(m, n) // 2 + 1 bins of X = rfft(x)
    zero-padded to m // 2 + 1 bins; when min(m, n) is even and m != n, its unpaired bin
    min(m, n) / 2 is doubled (m < n) or halved (m > n).

    Args:
        samples: (n,) float32 at ``rate``.
        rate: int32 scalar (tensor or int).
        target_rate: python int > 0.

    Returns:
        (m,) float32, m = round(n * target_rate / rate) (half up); ``samples`` itself
        when rate == target_rate; (0,) when rate <= 0 or n == 0.
    """
    target_rate = int(target_rate)
    if target_rate <= 0:
        raise ValueError(f"Expected target_rate > 0. Received: target_rate={target_rate}")
    x = tf.convert_to_tensor(samples, tf.float32)
    rate = tf.cast(rate, tf.int64)
    n = tf.shape(x, out_type=tf.int64)[0]
    safe = tf.maximum(rate, 1)
    m = (2 * n * target_rate + safe) // (2 * safe)

    def fft():
        keep = tf.minimum(m, n)
        bins = keep // 2 + 1
        spectrum = tf.signal.rfft(x, fft_length=tf.cast(n, tf.int32)[None])[:bins]  # (bins,)
        unpaired = tf.where(m < n, 2.0, 0.5)
        scale = tf.concat([tf.ones([bins - 1]),
                           tf.where(tf.equal(keep % 2, 0) & tf.not_equal(m, n), unpaired, 1.0)[None]], 0)
        spectrum = tf.pad(spectrum * tf.complex(scale, 0.0), [[0, m // 2 + 1 - bins]])  # (m//2+1,)
        y = tf.signal.irfft(spectrum, fft_length=tf.cast(m, tf.int32)[None])
        return y * tf.cast(tf.cast(m, tf.float64) / tf.cast(n, tf.float64), tf.float32)

    index = tf.where((rate <= 0) | tf.equal(n, 0) | tf.equal(m, 0), 0,
                     tf.where(tf.equal(rate, target_rate), 1, 2))
    y = tf.switch_case(tf.cast(index, tf.int32), [lambda: tf.zeros([0]), lambda: x, fft])
    return tf.ensure_shape(y, [None])


def _frames(rate, frame_ms, step_ms):
    """(frame_length, frame_step, fft_length) in samples."""
    frame_length, frame_step = int(round(rate * frame_ms / 1000)), int(round(rate * step_ms / 1000))
    if frame_length < 1 or frame_step < 1:
        raise ValueError(f"Expected frames of at least one sample. Received: rate={rate}, "
                         f"frame_ms={frame_ms}, step_ms={step_ms}")
    return frame_length, frame_step, 1 << (frame_length - 1).bit_length()


def log_mel(samples, rate, n_mels=40, frame_ms=25.0, step_ms=10.0, fmin=20.0, fmax=None):
    """Log mel power spectrogram.

    S = |stft(x)|^2 (frames of round(rate * frame_ms / 1000) samples every
    round(rate * step_ms / 1000), periodic Hann window, fft_length the next power of two,
    the end zero-padded: ceil(n / step) frames); features = log(S @ M + 1e-6) with M
    tf.signal.linear_to_mel_weight_matrix(n_mels, fft_length // 2 + 1, rate, fmin, fmax).

    Args:
        samples: (n,) float32.
        rate: python int, samples per second.
        fmax: None: rate / 2.

    Returns:
        (frames, n_mels) float32; (0, n_mels) for 0 samples.
    """
    rate = int(rate)
    frame_length, frame_step, fft_length = _frames(rate, frame_ms, step_ms)
    x = tf.convert_to_tensor(samples, tf.float32)
    bins = fft_length // 2 + 1

    def spectrum():
        stft = tf.signal.stft(x, frame_length, frame_step, fft_length,
                              window_fn=tf.signal.hann_window, pad_end=True)  # (frames, bins)
        return tf.math.square(tf.math.real(stft)) + tf.math.square(tf.math.imag(stft))

    # tf.signal.rfft skips padding an empty batch of frames, and then fails on it
    power = tf.cond(tf.size(x) > 0, spectrum, lambda: tf.zeros([0, bins]))
    matrix = tf.signal.linear_to_mel_weight_matrix(
        n_mels, bins, rate, fmin, rate / 2 if fmax is None else fmax)  # (bins, n_mels)
    mel = tf.matmul(tf.ensure_shape(power, [None, bins]), matrix)  # (frames, n_mels)
    return tf.math.log(mel + LOG_FLOOR)


def normalise(features, length=None):
    """Per utterance and mel bin: (x - mean) / max(std, 1e-3) over the real frames.

    Args:
        features: (frames, n_mels), or (batch, frames, n_mels).
        length: None (every frame is real), or the number of real frames: int scalar,
            or (batch,); the frames past it come out 0.

    Returns:
        features' shape and dtype; mean 0 and (population) std 1 per bin over the real
        frames (a constant bin gives 0); no frames stays empty.
    """
    x = tf.convert_to_tensor(features, tf.float32)
    frames = tf.shape(x)[-2]
    if length is None:
        mask = tf.ones(tf.shape(x)[:-1])
    else:
        mask = tf.sequence_mask(length, frames, dtype=tf.float32)  # (..., frames)
    mask = mask[..., None]  # (..., frames, 1)
    count = tf.maximum(tf.reduce_sum(mask, axis=-2, keepdims=True), 1.0)
    mean = tf.reduce_sum(x * mask, axis=-2, keepdims=True) / count  # (..., 1, n_mels)
    variance = tf.reduce_sum(tf.square((x - mean) * mask), axis=-2, keepdims=True) / count
    return (x - mean) / tf.maximum(tf.sqrt(variance), STD_FLOOR) * mask


# -------------------------------------------------------------------------- features


def wav_features(contents, rate, n_mels, max_seconds, speed=1.0, **log_mel_kwargs):
    """WAV bytes -> normalised log-mel features, never raising.

    The first ``max_seconds`` of the clip are decoded (cut at the clip's own rate, so a
    long clip costs only those), resampled to ``rate``, ``log_mel`` then ``normalise``.
    ``speed`` != 1 plays the clip that much faster (speed perturbation, Ko et al. 2015:
    tempo and pitch together) by reading it as sampled at round(its rate x speed).

    Args:
        contents: scalar tf.string.
        rate: python int, the features' sample rate.
        n_mels: python int.
        max_seconds: python float; None decodes the whole clip (an unbounded cost: a
            header claiming a 1 Hz rate resamples to rate times more samples).
        speed: python float > 0 (training augmentation; 1 in serving).
        **log_mel_kwargs: frame_ms, step_ms, fmin, fmax of ``log_mel``.

    Returns:
        {"features": (frames, n_mels) float32 ((0, n_mels) when not ok); "length":
        int32 frames; "ok": bool; "truncated": bool, the clip was longer than
        max_seconds; "reason": tf.string ("" when ok); "seconds": float32, duration of
        the whole clip (0 when not ok)}.
    """
    wav = _parse_wav(contents, max_seconds)
    source_rate = wav["rate"]
    if speed != 1.0:
        source_rate = tf.cast(tf.round(tf.cast(source_rate, tf.float64) * speed), tf.int32)
    samples = resample(wav["samples"], source_rate, rate)
    features = normalise(log_mel(samples, rate, n_mels, **log_mel_kwargs))
    kept = tf.shape(wav["samples"], out_type=tf.int64)[0]
    seconds = tf.where(wav["ok"], tf.cast(wav["frames"], tf.float64)
                       / tf.cast(tf.maximum(wav["rate"], 1), tf.float64), 0.0)
    return {"features": tf.ensure_shape(features, [None, n_mels]),
            "length": tf.shape(features)[0], "ok": wav["ok"],
            "truncated": wav["frames"] > kept, "reason": wav["reason"],
            "seconds": tf.cast(seconds, tf.float32)}


def batch_wav_features(contents, rate, n_mels, max_seconds, speed=1.0, **log_mel_kwargs):
    """``wav_features`` of every string of a batch, features zero-padded.

    Args:
        contents: (batch,) tf.string; batch may be 0.

    Returns:
        {"features": (batch, T, n_mels) float32, T = max(max(length), 1), zeros past
        each length; "length": (batch,) int32; "ok": (batch,) bool; "truncated":
        (batch,) bool; "reason": (batch,) tf.string; "seconds": (batch,) float32}.
    """
    contents = tf.convert_to_tensor(contents, tf.string)

    @tf.autograph.experimental.do_not_convert  # plain ops: nothing for autograph to convert
    def one(c):  # features flattened: a rank-1 ragged row also stacks a batch of 0
        out = wav_features(c, rate, n_mels, max_seconds, speed, **log_mel_kwargs)
        return dict(out, features=tf.reshape(out["features"], [-1]))  # (frames * n_mels,)

    scalar = lambda dtype: tf.TensorSpec([], dtype)  # noqa: E731
    signature = {"features": tf.RaggedTensorSpec([None], tf.float32, ragged_rank=0),
                 "length": scalar(tf.int32), "ok": scalar(tf.bool), "truncated": scalar(tf.bool),
                 "reason": scalar(tf.string), "seconds": scalar(tf.float32)}
    out = tf.map_fn(one, contents, fn_output_signature=signature)
    batch = tf.shape(contents)[0]
    longest = tf.maximum(tf.reduce_max(tf.concat([out["length"], [1]], 0)), 1)  # T >= 1
    flat = out["features"].to_tensor(0.0, shape=tf.stack([batch, longest * n_mels]))
    out["features"] = tf.reshape(flat, [batch, longest, n_mels])  # (batch, T, n_mels)
    return out
