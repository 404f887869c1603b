"""Music model quality under a CPU time budget: JSB Chorales piano roll, chorale melodies.

    python benchmarks/music.py --data PATH/jsb-chorales-quarter.json [--minutes 30]
    python benchmarks/music.py --melody [--minutes 10]          # the chorale soprano lines

``--data`` (the JSB layout: the Boulanger-Lewandowski split, pitches 21..108 at the
quarter-note grid) trains the music pipeline's piano-roll model
(``pipelines.music``: the ``jsb`` preset and the flags below) on the file's train split
and scores its valid split after every epoch: the negative log-likelihood per frame,
summed over the 88 pitches, in nats (the published tables' figure). ``--melody`` trains
the ``melody`` preset on the music21 chorales' soprano lines (16th-note events, the
pipeline's own split) and reports the validation NLL per step and perplexity.

Training stops when ``--minutes`` of wall time have passed (the epoch under way is
finished); the learning rate is halved after ``--halve-after`` epochs without a better
validation score. Reported: the best and last validation scores, the epochs, the
training time, frames per second, the load average (the CPU is shared) and the CPU.
One JSON line at the end (also written to ``--out``).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="a JSB-layout JSON file (jsb-chorales-quarter.json)")
    source.add_argument("--melody", action="store_true", help="the chorale soprano lines")
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-time budget")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="a config field of the preset (repeatable): cell=gru units=512 ...")
    p.add_argument("--halve-after", type=int, default=3,
                   help="epochs without improvement before the learning rate is halved")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from benchmarks.report import emit
    from pipelines.common import config as config_lib
    from pipelines.music import config as music_config
    from pipelines.music import data, model as music_model

    preset = "melody" if args.melody else "jsb"
    config = music_config.PRESETS[preset]
    config = config_lib.override(config, args.overrides,
                                 **({} if args.melody else {"data": args.data}))
    keras.utils.set_random_seed(config.seed)
    datasets = data.make_datasets(config)
    model = music_model.build_model(config, datasets.meta)
    key = "nll_per_frame" if config.encoding == "piano_roll" else "nll_per_step"
    print(f"{preset}: {json.dumps(config_lib.to_dict(config))}", flush=True)
    print(f"data: {json.dumps(datasets.sizes)}", flush=True)

    started, history, best, waited = time.time(), [], None, 0
    train_steps = datasets.sizes["train steps"]
    while time.time() - started < args.minutes * 60:
        epoch_start = time.time()
        model.fit(datasets.train, epochs=1, verbose=0)
        report = music_model.evaluate(model, datasets.valid, config, datasets.meta)
        elapsed = time.time() - started
        history.append({"epoch": len(history) + 1, "minutes": round(elapsed / 60, 2),
                        key: round(report[key], 4),
                        "steps_per_s": round(train_steps / (time.time() - epoch_start), 1)})
        print(json.dumps(history[-1]), flush=True)
        if best is None or report[key] < best[key]:
            best, waited = dict(report, epoch=len(history), minutes=round(elapsed / 60, 2)), 0
        else:
            waited += 1
            if waited >= args.halve_after:
                model.optimizer.learning_rate.assign(model.optimizer.learning_rate * 0.5)
                waited = 0
    result = {
        "benchmark": "music " + ("melody (chorale sopranos)" if args.melody else "JSB piano roll"),
        "config": config_lib.to_dict(config),
        "best_valid": best,
        "last_valid": history[-1],
        "epochs": len(history),
        "train_minutes": round((time.time() - started) / 60, 2),
    }
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
