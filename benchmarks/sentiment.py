"""Sentiment quality: the pipeline's model next to TF-IDF + logistic regression.

    python benchmarks/sentiment.py                       # embedded tweets, test split
    python benchmarks/sentiment.py --sst ../shared/data/sentiment/sst2_sentence_binary
    python benchmarks/sentiment.py --sst DIR --only sst --set units=128 ...

Both models see the same split: the pipeline's deterministic train/valid/test split of
the embedded tweets (the ``default`` preset); for SST-2 (the ``sst`` preset),
stsa.binary.train split 90/10 into train/valid (the valid part only picks the epoch)
and stsa.binary.dev as the held-out evaluation.
The baseline (scikit-learn, the ``bench`` extra) fits on the same training texts,
standardized by the same tokenizer, with word 1-2-grams, and C chosen on valid.
Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from pipelines.common import config as config_lib  # noqa: E402
from pipelines.common import train  # noqa: E402
from pipelines.sentiment import TASK, data  # noqa: E402

def tfidf_baseline(train, valid, test):
    """Test accuracy of TF-IDF (word 1-2-grams) + logistic regression, C picked on
    valid; returns (test accuracy, C, valid accuracy)."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    def words(texts):
        return [" ".join(w.decode("utf-8") for w in ws) for ws in data.tokenize(texts).to_list()]

    tr, va, te = words(train[0]), words(valid[0]), words(test[0])
    vec = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, token_pattern=r"\S+",
                          min_df=1)
    x_tr, x_va, x_te = vec.fit_transform(tr), vec.transform(va), vec.transform(te)
    best = None
    for c in (0.5, 1, 2, 4, 8, 16):
        clf = LogisticRegression(C=c, max_iter=2000).fit(x_tr, train[1])
        acc = float(np.mean(clf.predict(x_va) == np.asarray(valid[1])))
        if best is None or acc > best[0]:
            best = (acc, c, clf)
    return float(np.mean(best[2].predict(x_te) == np.asarray(test[1]))), best[1], best[0]


def run_model(config, test_split, workdir):
    """Trains the pipeline's model; returns (accuracy on test_split, seconds, epochs,
    the best epoch's valid accuracy, that epoch)."""
    started = time.time()
    datasets = data.make_datasets(config)
    model, info = train.fit(TASK, config, workdir, datasets, verbose=2, fresh=True)
    texts, labels, lines = test_split
    ids = data._label_ids(labels, lines, datasets.meta, "test")
    test_ds = data.to_dataset(texts, ids, datasets.meta, config)
    report = TASK.evaluate(model, test_ds, config, datasets.meta)
    histories = [m["history"] for m in info["members"]] if "members" in info else [info["history"]]
    best_epoch = "/".join(str(max(h, key=lambda e: e["val_accuracy"])["epoch"]) for h in histories)
    return report["accuracy"], time.time() - started, info["epochs_run"], info["best"], best_epoch


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sst", help="directory with stsa.binary.train and stsa.binary.dev")
    parser.add_argument("--only", choices=["embedded", "sst"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--baseline-only", action="store_true")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args(argv)
    rows = []
    workroot = args.workdir or tempfile.mkdtemp(prefix="sentiment_bench_")
    jobs = []
    if args.only in (None, "embedded"):
        config = config_lib.override(TASK.presets["default"], args.overrides)
        jobs.append(("embedded tweets (test split)", config, None))
    if args.sst and args.only in (None, "sst"):
        base = dataclasses.replace(TASK.presets["sst"],
                                   data=os.path.join(args.sst, "stsa.binary.train"))
        config = config_lib.override(base, args.overrides)
        jobs.append(("SST-2 sentences (dev)", config, os.path.join(args.sst, "stsa.binary.dev")))
    for name, config, test_file in jobs:
        splits = data.load_splits(config)
        test = data.read_file(test_file, config) if test_file else splits["test"]
        baseline, c, baseline_valid = tfidf_baseline(splits["train"], splits["valid"], test)
        print(f"{name}: TF-IDF + LR accuracy {baseline:.4f} (C={c}, valid {baseline_valid:.4f})",
              flush=True)
        if args.baseline_only:
            rows.append((name, len(test[0]), None, (baseline, baseline_valid), None, config))
            continue
        acc, seconds, epochs, valid, best_epoch = run_model(
            config, test, os.path.join(workroot, name.split()[0]))
        print(f"{name}: pipeline accuracy {acc:.4f}, valid {valid:.4f} (best epoch {best_epoch} "
              f"of {epochs}, {seconds:.0f} s)", flush=True)
        rows.append((name, len(test[0]), (acc, valid), (baseline, baseline_valid),
                     (seconds, epochs, best_epoch), config))

    print("\n| data | held-out examples | pipeline model valid / held-out | TF-IDF + LR valid / "
          "held-out | train time |")
    print("|---|---|---|---|---|")
    for name, n, acc, baseline, cost, config in rows:
        model = f"{acc[1]:.4f} / {acc[0]:.4f}" if acc is not None else "-"
        time_s = f"{cost[0]:.0f} s, {cost[1]} epochs (best {cost[2]})" if cost else "-"
        print(f"| {name} | {n} | {model} | {baseline[1]:.4f} / {baseline[0]:.4f} | {time_s} |")
    for name, *_, config in rows:
        print(f"\n{name} config: " + ", ".join(
            f"{k}={v}" for k, v in config_lib.to_dict(config).items()
            if k in ("cell", "units", "num_layers", "bidirectional", "embedding_dim", "dropout",
                     "embedding_dropout", "word_dropout", "pooling", "min_count", "epochs",
                     "ngram_buckets", "min_confidence", "confidence_weight", "label_smoothing",
                     "ensemble")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
