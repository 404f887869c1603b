"""Speech model: builder, search space, WER/CER, report, picture and the serving model.

Training model: ``zoo.builders.build_speech_recognizer`` (optional SpecAugment, a
strided convolutional front-end, a deep bidirectional zoo RNN, log ŷ over the characters
and the CTC blank), loss -log P(y | x) by CTC (``zoo.builders.speech_recognizer.CTCLoss``).

Decoding (in the graph, ``decode``): greedy (the best path, repeats merged, blanks
dropped) or CTC beam search (``keras.ops.ctc_decode``), optionally rescored with a
char_lm language model (``lm_workdir``): the beam's ``top_paths`` transcripts ranked by
log P_ctc + lm_weight * log P_lm(text) + length_bonus * characters.

Serving model (``Recognizer``): WAV bytes in (any rate, mono or stereo, 8/16/24/32-bit
or float), features and decoding in the graph; ``serving_default`` returns the
transcript, its score, ``ok`` and ``error`` (why a clip could not be read), ``truncated``
(only the first ``max_seconds`` were heard) and the clip's ``seconds``.
"""

import dataclasses
import os

import keras
import numpy as np
import tensorflow as tf

from pipelines.common import config as config_lib
from pipelines.common.task import Endpoint
from pipelines.speech import audio, data
from zoo.builders import speech_recognizer as sr


def build_model(config, meta):
    """The compiled CTC model of ``config`` (``meta["alphabet"]`` gives K)."""
    augment = dict(time_masks=config.time_masks, time_mask=config.time_mask,
                   time_ratio=config.time_ratio,
                   freq_masks=config.freq_masks, freq_mask=config.freq_mask, seed=config.seed)
    model = sr.build_speech_recognizer(
        config.n_mels, len(meta["alphabet"]), conv_layers=config.conv_layers,
        conv_filters=config.conv_filters, time_reduction=config.time_reduction,
        cell=config.cell, units=config.units, num_layers=config.num_layers,
        dropout=config.dropout,
        spec_augment=augment if (config.time_masks or config.freq_masks) else None,
        name="speech")
    model.compile(optimizer=config_lib.adam(config, global_clipnorm=True), loss=sr.CTCLoss())
    return model


def combine(members, config, meta):
    """An ensemble's model: the members' inputs -> their log ŷ stacked (batch, M, T',
    K + 1) (``zoo.layers.MemberStack``). Transcripts, not frames, are averaged: the
    decoder scores candidates by (1/M) Σ_m P_m(transcript | x) and the CTC loss is
    -log of it. (Averaging frame posteriors fails for CTC: members emit a character's
    spike at different frames, so the mean shows it twice: "six" -> "siix", measured.)"""
    from pipelines.common import train

    return train.mean_of_members(members, "speech_ensemble", stack=True,
                                 loss=sr.CTCLoss(), metrics=())


def frame_posteriors(log_probs):
    """log ŷ (batch, T', K + 1) of one model, or of an ensemble's (batch, M, T', K + 1)
    the log of the members' mean (for pictures and greedy paths, not decoding)."""
    if len(log_probs.shape) == 4:
        return (tf.reduce_logsumexp(log_probs, axis=1)
                - tf.math.log(tf.cast(tf.shape(log_probs)[1], log_probs.dtype)))
    return log_probs


def search_space(hp, config):
    """The config with the tuned fields drawn from ``hp``: cell, units, depth, dropout,
    learning rate (as the language models) and the front-end's time reduction (those its
    conv_layers allow)."""
    allowed = [r for r, strided in ((1, 0), (2, 1), (4, 2)) if strided <= config.conv_layers]
    return dataclasses.replace(
        config_lib.language_model_space(hp, config),
        time_reduction=hp.Choice("time_reduction", allowed, default=config.time_reduction))


# -------------------------------------------------------------------------- decoding


class Decoder:
    """log ŷ (batch, T', K + 1) and frame lengths -> (ids (batch, n) int32 padded with -1,
    lengths (batch,), scores (batch,)): the config's greedy or beam decoding, with the
    char_lm rescoring when ``lm`` (a ``LanguageModelScorer``) is given; or, with
    ``decoder="choices"``, the transcript c of ``choices`` (default: the training
    transcripts in ``meta``) with the highest log P_ctc(c | x), scored by it.

    An ensemble's log ŷ (batch, M, T', K + 1): every member decodes (its greedy path, or
    its beam's ``top_paths``), and of all these candidates (or of the choices) the one
    with the highest log((1/M) Σ_m P_m(c | x)) wins (plus the LM terms with ``lm``)."""

    def __init__(self, config, lm=None, meta=None):
        self.strategy = {"greedy": "greedy", "beam": "beam_search"}.get(config.decoder,
                                                                        config.decoder)
        self.beam_width, self.top_paths = config.beam_width, config.top_paths
        self.lm, self.lm_weight, self.length_bonus = lm, config.lm_weight, config.length_bonus
        if self.strategy == "choices":
            choices = list(config.choices or (meta or {}).get("choices") or [])
            if not choices:
                from pipelines.common.textio import DataError

                raise DataError("choices", "decoder=choices needs --set choices=WORD,WORD... "
                                f"(the training data has more than {data.MAX_CHOICES} "
                                "distinct transcripts)")
            width = max(len(c) for c in choices)
            self.choices = choices
            self.choice_ids = tf.constant([data.encode_transcript(c) + [-1] * (width - len(c))
                                           for c in choices], tf.int32)

    @staticmethod
    def _candidate_scores(log_probs, candidates):
        """log P_ctc(c | x) (batch, C) of candidates (batch, C, n) (ids padded with -1)
        over all frames (padding frames emit the blank with probability 1); for an
        ensemble's log ŷ, log of the members' mean probability."""
        batch, count = tf.shape(candidates)[0], tf.shape(candidates)[1]
        labels = tf.reshape(candidates, [batch * count, tf.shape(candidates)[2]])  # (batch * C, n)
        repeated = tf.repeat(log_probs, count, axis=0)  # (batch * C, [M,] T', K + 1)
        return -tf.reshape(sr.CTCLoss(reduction=None)(labels, repeated), [batch, count])

    def _choose(self, log_probs):
        """The most probable choice per utterance."""
        batch = tf.shape(log_probs)[0]
        candidates = tf.tile(self.choice_ids[None], [batch, 1, 1])  # (batch, k, n)
        scores = self._candidate_scores(log_probs, candidates)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        ids = tf.gather(self.choice_ids, best)
        return (ids, tf.reduce_sum(tf.cast(ids >= 0, tf.int32), axis=1),
                tf.gather(scores, best, batch_dims=1))

    def _ensemble(self, log_probs, lengths):
        """Every member's decoding as candidates, scored by the whole ensemble."""
        members = log_probs.shape[1]
        found = [self._paths(log_probs[:, m], lengths, self.top_paths
                             if self.strategy == "beam_search" else 1)[0]
                 for m in range(members)]  # each (paths, batch, frames)
        candidates = tf.transpose(tf.concat(found, 0), (1, 0, 2))  # (batch, C, frames)
        scores = self._candidate_scores(log_probs, candidates)  # (batch, C)
        decoded = tf.transpose(candidates, (1, 0, 2))  # (C, batch, frames)
        if self.lm is not None:
            return self._rescore(decoded, scores)
        best = tf.argmax(scores, axis=1, output_type=tf.int32)
        return tf.gather(candidates, best, batch_dims=1), tf.gather(scores, best, batch_dims=1)

    def _paths(self, log_probs, lengths, paths):
        """The decoder's ``paths`` best labellings (paths, batch, frames) of one model's
        log ŷ and their scores (batch, paths)."""
        batch = tf.shape(log_probs)[0]
        frames = tf.shape(log_probs)[1]
        # At least one frame: TensorFlow's beam search fails ("Less leaves in the beam
        # search than requested") when a 0-frame clip has fewer labellings than
        # top_paths; the extra frame is a padding one (the blank, certainly).
        lengths = tf.maximum(tf.cast(lengths, tf.int32), 1)

        def run():
            decoded, scores = keras.ops.ctc_decode(
                log_probs, lengths, strategy=self.strategy, beam_width=self.beam_width,
                top_paths=paths, merge_repeated=True, mask_index=data.BLANK)
            decoded = tf.reshape(decoded, [paths, batch, frames])
            scores = tf.reshape(tf.cast(scores, tf.float32), [batch, paths])
            if self.strategy == "greedy":
                scores = -scores  # the decoder returns -Σ max log ŷ: log P(best path)
            return decoded, scores

        def empty():
            return (tf.fill([paths, batch, frames], -1), tf.zeros([batch, paths], tf.float32))

        return tf.cond(batch > 0, run, empty)

    def __call__(self, log_probs, lengths):
        if self.strategy == "choices":
            return self._choose(log_probs)
        if len(log_probs.shape) == 4:
            decoded, scores = self._ensemble(log_probs, lengths)
            return decoded, tf.reduce_sum(tf.cast(decoded >= 0, tf.int32), axis=1), scores
        paths = 1 if self.strategy == "greedy" else (self.top_paths if self.lm else 1)
        decoded, scores = self._paths(log_probs, lengths, paths)
        if paths > 1:
            decoded, scores = self._rescore(decoded, scores)
        else:
            decoded, scores = decoded[0], scores[:, 0]
        return decoded, tf.reduce_sum(tf.cast(decoded >= 0, tf.int32), axis=1), scores

    def _rescore(self, decoded, scores):
        """The best of the top paths by log P_ctc + w log P_lm + bonus * characters."""
        paths = tf.shape(decoded)[0]
        batch = tf.shape(decoded)[1]
        texts = transcripts(tf.reshape(decoded, [paths * batch, -1]))
        lm = tf.reshape(self.lm(texts), [paths, batch])
        chars = tf.reshape(tf.strings.length(texts, unit="UTF8_CHAR"), [paths, batch])
        total = (tf.transpose(scores) + self.lm_weight * lm
                 + self.length_bonus * tf.cast(chars, tf.float32))  # (paths, batch)
        best = tf.argmax(total, axis=0, output_type=tf.int32)
        pick = tf.stack([best, tf.range(batch)], axis=1)
        return tf.gather_nd(decoded, pick), tf.gather_nd(total, pick)


def transcripts(ids):
    """(batch, n) character ids (-1 padding) -> (batch,) strings."""
    chars = tf.constant(list(data.ALPHABET) + [""])
    safe = tf.where((ids >= 0) & (ids < data.BLANK), ids, data.BLANK)
    return tf.strings.reduce_join(tf.gather(chars, safe), axis=-1)


class LanguageModelScorer:
    """log P_lm(text) (natural log, summed over characters and the end) of a char_lm
    run's model, in the graph: its export's ``score`` signature would need the
    char_lm code, so the Keras model is loaded and scored here."""

    def __init__(self, workdir):
        from pipelines.char_lm import TASK as CHAR_LM
        from pipelines.common import train

        model, lm_config, meta = train.load_trained(workdir, CHAR_LM.config_class)
        self.server = CHAR_LM.serving_model(model, lm_config, meta)

    def __call__(self, texts):
        return tf.cast(self.server.score(texts)["log_prob"], tf.float32)


def load_lm(config):
    if not config.lm_workdir:
        return None
    if not os.path.exists(os.path.join(config.lm_workdir, "model.keras")):
        from pipelines.common.textio import DataError

        raise DataError(config.lm_workdir, "lm_workdir holds no trained char_lm model "
                        "(python -m pipelines.char_lm train --workdir DIR)")
    return LanguageModelScorer(config.lm_workdir)


# --------------------------------------------------------------------------- serving


class Recognizer(keras.layers.Layer):
    """WAV bytes -> transcripts, features and decoding in the graph.

    Args:
        model: a ``build_model`` model (shared); config: its ``SpeechConfig``; lm: an
            optional ``LanguageModelScorer``; meta: the run's (the default choices).
    """

    def __init__(self, model, config, lm=None, meta=None, **kwargs):
        super().__init__(**kwargs)
        self.model = model
        self.rate, self.n_mels, self.max_seconds = config.sample_rate, config.n_mels, config.max_seconds
        self.frame_ms, self.step_ms = config.frame_ms, config.step_ms
        self.time_reduction = config.time_reduction
        self.decoder = Decoder(config, lm, meta)
        self.lm_server = lm.server if lm is not None else None  # tracked for the export

    def features(self, wavs):
        return audio.batch_wav_features(wavs, self.rate, self.n_mels, self.max_seconds,
                                        frame_ms=self.frame_ms, step_ms=self.step_ms)

    def transcribe(self, wavs):
        """(batch,) WAV bytes -> {"transcript": (batch,) string, "score": log-probability
        of the transcript (see ``Decoder``), "ok": bool, "error": "" or why the clip
        could not be read, "truncated": bool, "seconds": float32}. An unreadable clip
        gives "" with ok false."""
        wavs = tf.convert_to_tensor(wavs, tf.string)
        n = tf.shape(wavs)[0]
        # An empty batch runs one empty clip (the convolutions refuse batch 0), then drops it.
        wavs = tf.concat([wavs, [b""]], 0)[:tf.maximum(n, 1)]
        f = self.features(wavs)
        log_probs = self.model({"features": f["features"], "length": f["length"]}, training=False)
        ids, _, scores = self.decoder(log_probs, sr.reduced_lengths(f["length"], self.time_reduction))
        out = {"transcript": tf.where(f["ok"], transcripts(ids), ""),
               "score": tf.where(f["ok"], scores, 0.0),
               "ok": f["ok"], "error": f["reason"], "truncated": f["truncated"],
               "seconds": f["seconds"]}
        return {k: v[:n] for k, v in out.items()}

    def endpoints(self):
        wavs = tf.TensorSpec([None], tf.string, name="audio")
        return {"serving_default": Endpoint(fn=self.transcribe, inputs=[wavs],
                                            example={"audio": [_example_wav(), b""]})}


def _example_wav():
    """0.3 s of a 440 Hz tone as 16-bit WAV bytes (the export's test request)."""
    t = np.arange(2400) / 8000.0
    pcm = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[:, None]
    return tf.audio.encode_wav(pcm, 8000).numpy()


def serving_model(model, config, meta):
    return Recognizer(model, config, load_lm(config), meta)


# ------------------------------------------------------------------------ evaluation


def evaluate(model, dataset, config, meta, examples=3):
    """WER and CER (jiwer), utterance accuracy (the whole transcript right: digit
    accuracy for FSDD), the mean CTC loss; a few transcripts and, for the first
    ``examples`` utterances, what the picture needs (log-mel frames and the frames where
    the greedy path emits each character)."""
    jiwer = data._require("jiwer")
    decoder = Decoder(config, load_lm(config), meta)
    loss_fn = sr.CTCLoss(reduction=None)

    @tf.function(reduce_retracing=True)
    def step(inputs, labels):
        log_probs = model(inputs, training=False)
        lengths = sr.reduced_lengths(inputs["length"], config.time_reduction)
        ids, _, _ = decoder(log_probs, lengths)
        return transcripts(ids), loss_fn(labels, log_probs), log_probs

    references, hypotheses, losses, shown = [], [], [], []
    for inputs, labels in dataset:
        texts, loss, log_probs = step(inputs, labels)
        log_probs = frame_posteriors(log_probs)
        refs = [data.decode_ids(row) for row in labels.numpy()]
        hyps = [t.decode("utf-8") for t in texts.numpy()]
        references += refs
        hypotheses += hyps
        losses += loss.numpy().tolist()
        for i in range(min(examples - len(shown), len(refs))):
            n = int(inputs["length"][i])
            m = int(sr.reduced_lengths(np.array([n]), config.time_reduction)[0])
            best = np.argmax(log_probs[i, :m].numpy(), axis=-1)
            emits = [(int(t) * config.time_reduction, data.ALPHABET[c])
                     for t, c in enumerate(best)
                     if c != data.BLANK and (t == 0 or best[t - 1] != c)]
            shown.append({"reference": refs[i], "transcript": hyps[i],
                          "features": np.round(inputs["features"][i, :n].numpy(), 3).tolist(),
                          "emissions": emits})
    if not references:
        raise ValueError("The dataset holds no clips to evaluate.")
    return {
        "wer": float(jiwer.wer(references, hypotheses)),
        "cer": float(jiwer.cer(references, hypotheses)),
        "utterance_accuracy": float(np.mean([h == r for h, r in zip(hypotheses, references)])),
        "ctc_loss": float(np.mean(losses)), "utterances": len(references),
        "decoder": config.decoder + (" + char_lm" if config.lm_workdir else ""),
        "transcripts": [{"reference": r, "transcript": h}
                        for r, h in list(zip(references, hypotheses))[:5]],
        "mistakes": [{"reference": r, "transcript": h}
                     for r, h in zip(references, hypotheses) if r != h][:20],
        "spectrogram_examples": shown,
    }


def format_report(report):
    lines = [f"WER {report['wer']:.4f}  CER {report['cer']:.4f}  utterance accuracy "
             f"{report['utterance_accuracy']:.4f}  CTC loss {report['ctc_loss']:.3f}  "
             f"utterances {report['utterances']}  ({report['decoder']} decoding)"]
    lines += [f"  {t['reference']!r} -> {t['transcript']!r}" for t in report["transcripts"]]
    return "\n".join(lines)


def draw_report(report, out_dir, title):
    """spectrogram_<k>.png: the log-mel frames of an utterance, the decoded characters
    written above the frames where CTC's best path emits them."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for k, example in enumerate(report.get("spectrogram_examples", []), 1):
        frames = np.asarray(example["features"])
        if not frames.size:
            continue
        fig, ax = plt.subplots(figsize=(max(4, frames.shape[0] / 25), 3))
        ax.imshow(frames.T, origin="lower", aspect="auto", cmap="magma")
        for frame, char in example["emissions"]:
            ax.axvline(frame, color="white", lw=0.5, alpha=0.6)
            ax.text(frame, frames.shape[1] + 0.5, "␣" if char == " " else char,
                    ha="center", va="bottom", fontsize=9)
        ax.set_xlabel("frame")
        ax.set_ylabel("mel bin")
        ax.set_title(f"{title}: {example['transcript']!r} (reference {example['reference']!r})",
                     fontsize=9, pad=16)
        fig.tight_layout()
        path = os.path.join(out_dir, f"spectrogram_{k}.png")
        fig.savefig(path, dpi=80)
        plt.close(fig)
        paths.append(path)
    return paths


def example_inputs(config, meta):
    """WAV paths the main job transcribes: a few held-out clips."""
    return list(meta.get("examples") or [])


def format_prediction(row):
    """The transcript, its score; or why the clip could not be read."""
    if not row["ok"]:
        error = row["error"].decode() if isinstance(row["error"], bytes) else row["error"]
        return f"(not transcribed: {error})"
    text = row["transcript"].decode() if isinstance(row["transcript"], bytes) else row["transcript"]
    note = "  [first max_seconds only]" if row["truncated"] else ""
    return f"{text!r}  score {float(row['score']):.2f}{note}"
