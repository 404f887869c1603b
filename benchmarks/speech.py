"""Speech recognition quality under a CPU time budget: the Free Spoken Digit Dataset.

    python benchmarks/speech.py --data PATH/fsdd/recordings [--minutes 15]          # official split
    python benchmarks/speech.py --data PATH/fsdd/recordings --holdout theo         # one speaker held out
    python benchmarks/speech.py --data PATH/fsdd/recordings --synthetic            # trained on synthetic speech only

FSDD (real recordings, 6 speakers, 8 kHz; ``{digit}_{speaker}_{take}.wav``). The
official protocol (the ``fsdd`` preset): takes 0-4 of every speaker and digit are the
test split (300 clips), takes 5-49 train (10% of them, seeded, validate). ``--holdout
SPEAKER``: that speaker's 500 clips are the test split, the other five speakers train
and validate. ``--synthetic``: the speech pipeline's default data (eSpeak NG voices,
digit strings and numbers) trains and validates; the FSDD test takes are only tested.

Training runs epoch by epoch until ``--minutes`` of wall time have passed (the epoch
under way finishes) or ``--patience`` epochs pass without a better validation loss;
the weights of the best validation epoch are tested; the learning rate halves after
every ``--halve-after`` epochs without a better validation loss. WER is the word error rate
(jiwer), which for single digits is 1 - digit accuracy; it is reported for the
config's decoder and for ``decoder=choices`` over the ten digit words (closed-vocabulary
decoding: the most probable word by CTC). One JSON line at the end (also ``--out``).
"""

import argparse
import dataclasses
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="the FSDD recordings folder")
    p.add_argument("--minutes", type=float, default=15.0, help="training wall-time budget")
    p.add_argument("--patience", type=int, default=8)
    p.add_argument("--halve-after", type=int, default=3,
                   help="epochs without a better validation loss before the learning rate halves")
    p.add_argument("--holdout", default="", help="a speaker held out as the test split")
    p.add_argument("--synthetic", action="store_true",
                   help="train on the synthetic default data, test on FSDD")
    p.add_argument("--word-lm", action="store_true",
                   help="also decode with a char_lm trained on the test words' vocabulary "
                        "(the ten digit words) rescoring the beam's top paths")
    p.add_argument("--members", type=int, default=1,
                   help="train this many models (seeds seed, seed+1, ...) and test their "
                        "ensemble (transcript probabilities averaged, speech.model.combine)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def word_lm_report(model, test, config, meta):
    """WER / CER with the beam's top 4 paths rescored by a char_lm (the small preset,
    trained here on the ten digit words, each a line, shuffled and repeated): the
    domain's language model, as a user with a known vocabulary would train it."""
    import dataclasses
    import random
    import tempfile

    from pipelines.char_lm import TASK as CHAR_LM
    from pipelines.common.cli import main as run_task
    from pipelines.speech import data, model as sp_model

    folder = tempfile.mkdtemp(prefix="digit_lm_")
    words = list(data.DIGITS) * 200
    random.Random(0).shuffle(words)
    text = os.path.join(folder, "digits.txt")
    with open(text, "w") as f:
        f.write("\n".join(words) + "\n")
    assert run_task(CHAR_LM, ["train", "--preset", "small", "--data", text, "--set", "epochs=3",
                              "--workdir", os.path.join(folder, "lm"), "-q"]) == 0
    scored = dataclasses.replace(config, lm_workdir=os.path.join(folder, "lm"), top_paths=4,
                                 beam_width=max(config.beam_width, 4))
    report = sp_model.evaluate(model, test, scored, meta)
    return {k: report[k] for k in ("wer", "cer", "utterance_accuracy", "decoder", "mistakes")}


def train_one(model, datasets, args):
    """(model with its best validation weights, history rows, best (val_loss, epoch)):
    epochs until ``--minutes`` or ``--patience``, the learning rate halved after every
    ``--halve-after`` epochs without progress."""
    trained, history, best, waited = 0.0, [], None, 0
    while trained < args.minutes * 60 and waited < args.patience:
        start = time.time()
        fit = model.fit(datasets.train, validation_data=datasets.valid, epochs=1, verbose=0)
        trained += time.time() - start
        row = {"epoch": len(history) + 1, "train_minutes": round(trained / 60, 2),
               "loss": round(fit.history["loss"][-1], 3),
               "val_loss": round(fit.history["val_loss"][-1], 3)}
        history.append(row)
        print(json.dumps(row), flush=True)
        if best is None or row["val_loss"] < best[0]:
            best, waited = (row["val_loss"], row["epoch"], model.get_weights()), 0
        else:
            waited += 1
            if waited % args.halve_after == 0:
                model.optimizer.learning_rate.assign(model.optimizer.learning_rate * 0.5)
    model.set_weights(best[2])
    return model, history, best[:2]


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from benchmarks.report import emit
    from pipelines.common import config as config_lib
    from pipelines.speech import data, model as sp_model
    from pipelines.speech.config import PRESETS

    fsdd = config_lib.override(PRESETS["fsdd"], args.overrides, data=args.data,
                               holdout_speaker=args.holdout)
    if args.synthetic:
        config = config_lib.override(PRESETS["default"], args.overrides)
        protocol = "trained on synthetic eSpeak NG speech, tested on FSDD takes 0-4"
    else:
        config = fsdd
        protocol = (f"speaker {args.holdout} held out (test), the other speakers train"
                    if args.holdout else "FSDD official split: takes 0-4 test, 5-49 train")
    keras.utils.set_random_seed(config.seed)
    datasets = data.make_datasets(config)
    test_clips = data.load_clips(fsdd)[0]["test"] if args.synthetic else None
    test = (data.make_dataset(test_clips, fsdd)[0] if args.synthetic else datasets.test)
    print(f"{protocol}: {json.dumps(config_lib.to_dict(config))}", flush=True)
    print(f"data: {json.dumps(datasets.sizes)}", flush=True)
    members, histories = [], []
    for k in range(args.members):
        member_config = dataclasses.replace(config, seed=config.seed + k)
        keras.utils.set_random_seed(member_config.seed)
        model, history, best = train_one(sp_model.build_model(member_config, datasets.meta),
                                         datasets, args)
        members.append(model)
        histories.append(history)
    model = members[0] if len(members) == 1 else sp_model.combine(members, config, datasets.meta)
    tested = fsdd if args.synthetic else config
    report = sp_model.evaluate(model, test, tested, datasets.meta)
    # Isolated-word decoding: the transcript is the most probable of the ten digit
    # words (decoder="choices"), the closed-vocabulary setting FSDD is.
    choices = sp_model.evaluate(model, test, dataclasses.replace(
        tested, decoder="choices", choices=data.DIGITS), datasets.meta)
    with_lm = None
    if args.word_lm:
        with_lm = word_lm_report(model, test, tested, datasets.meta)
    result = {"benchmark": "speech fsdd", "protocol": protocol, "config": config_lib.to_dict(config),
              "sizes": datasets.sizes, "members": len(members),
              "history": histories[0] if len(histories) == 1 else histories,
              "best_epoch": [max(h, key=lambda r: -r["val_loss"])["epoch"] for h in histories],
              "train_minutes": round(sum(h[-1]["train_minutes"] for h in histories), 2),
              **{k: report[k] for k in ("wer", "cer", "utterance_accuracy", "utterances", "decoder")},
              "transcripts": report["transcripts"], "mistakes": report["mistakes"]}
    result["with_choices"] = {k: choices[k] for k in ("wer", "cer", "utterance_accuracy",
                                                       "decoder", "mistakes")}
    if with_lm is not None:
        result["with_word_lm"] = with_lm
    if len(members) > 1:
        alone = []
        for member in members:
            r = sp_model.evaluate(member, test, tested, datasets.meta)
            c = sp_model.evaluate(member, test, dataclasses.replace(
                tested, decoder="choices", choices=data.DIGITS), datasets.meta)
            alone.append({"wer": r["wer"], "choices_wer": c["wer"]})
        result["members_alone"] = alone
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
