"""CoNLL-2003 English NER quality: valid entity F1 per type, softmax vs CRF, training time.

    python benchmarks/ner.py --train PATH/conll2003_train.txt --valid PATH/conll2003_valid.txt \
        --head crf --minutes 40 --out runs/bench_ner

Trains the ``conll`` preset of pipelines.ner (no pretrained word vectors) on the train
file, within a wall-clock budget (training stops after the first epoch that ends past
``--minutes``), keeps the weights of the best validation entity F1, and prints entity-level
(CoNLL) precision/recall/F1 per type on the valid file, plus valid F1 after every epoch.
Run one process per head (they can run side by side: compare them in the same run).
Writes ``<out>/<head>/bench.json``.
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import keras  # noqa: E402

from pipelines.common import config as config_lib  # noqa: E402
from pipelines.common import train  # noqa: E402
from pipelines.ner import TASK  # noqa: E402
from pipelines.ner import model as ner_model  # noqa: E402


class Budget(keras.callbacks.Callback):
    """Valid F1 after every epoch; stops when the wall-clock budget is spent."""

    def __init__(self, seconds, valid, config, meta, log):
        super().__init__()
        self.seconds, self.valid, self.config, self.meta, self.log = seconds, valid, config, meta, log
        self.started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        f1 = logs["val_f1"]  # computed by the task's validation_metrics before this callback
        elapsed = time.time() - self.started
        self.log.append({"epoch": epoch + 1, "seconds": round(elapsed), "valid_f1": f1,
                         **{k: float(v) for k, v in (logs or {}).items()}})
        print(f"epoch {epoch + 1}: {elapsed / 60:.1f} min, valid F1 {f1:.4f}, "
              f"loss {logs.get('loss', 0):.4f}, val_loss {logs.get('val_loss', 0):.4f}", flush=True)
        if elapsed > self.seconds:
            self.model.stop_training = True


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", required=True)
    parser.add_argument("--valid", required=True)
    parser.add_argument("--head", default="crf", choices=["crf", "softmax"])
    parser.add_argument("--minutes", type=float, default=40.0, help="training budget")
    parser.add_argument("--preset", default="conll")
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--out", default="runs/bench_ner")
    args = parser.parse_args(argv)

    config = config_lib.override(TASK.presets[args.preset], [f"head={args.head}", *args.overrides],
                                 train_file=args.train, valid_file=args.valid)
    workdir = os.path.join(args.out, args.head)
    started = time.time()
    datasets = TASK.make_datasets(config)
    print(f"data: {dict(datasets.sizes)}; {len(datasets.meta['vocabulary'])} words, "
          f"{len(datasets.meta['labels'])} labels; {time.time() - started:.0f} s", flush=True)
    log = []
    budget = Budget(args.minutes * 60, datasets.valid, config, datasets.meta, log)
    model, info = train.fit(TASK, config, workdir, datasets, verbose=2, callbacks=[budget],
                            fresh=True)
    train_seconds = time.time() - started
    report = ner_model.evaluate(model, datasets.valid, config, datasets.meta)
    result = {"head": args.head, "config": config_lib.to_dict(config),
              "train_seconds": round(train_seconds), "epochs": info["epochs_run"],
              f"best_{TASK.monitor}": info["best"], "valid": report, "per_epoch": log,
              "parameters": model.count_params()}
    config_lib.write_json(os.path.join(workdir, "bench.json"), result)
    print(f"\nhead {args.head}: {info['epochs_run']} epochs in {train_seconds / 60:.1f} min; "
          f"{model.count_params()} parameters; valid (best {TASK.monitor} epoch):")
    for kind, m in {**report["per_type"], "overall": report["overall"]}.items():
        print(f"  {kind:<8} P {m['precision']:.4f}  R {m['recall']:.4f}  F1 {m['f1']:.4f}  "
              f"({m['support']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
