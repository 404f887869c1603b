"""Activity quality: the embedded smartwatch recordings, leave-subjects-out, next to a
1-nearest-neighbour DTW baseline on the same splits.

    python benchmarks/activity.py [--folds 5] [--epochs 30] [--set KEY=VALUE ...]

Protocol: the 10 subjects, permuted with the seed, form ``--folds`` groups; each fold
tests on one group's recordings (subjects never seen in training), validates on one
subject of the next group (early stopping on the validation loss; its weights kept) and
trains on the rest. Reported: accuracy and macro F1 over all 140 recordings (each
recording's prediction is the mean of its windows'), per fold, with the training time.
With ``--set ensemble=K`` each fold trains K members (seeds seed + fold + 1000 m) and
averages their probabilities, as the pipeline's ensemble does.
The baseline: every test recording labelled as its nearest training-or-validation
recording by multivariate DTW (``dtaidistance``, C implementation, no window
constraint) on readings z-normalised per channel with the training statistics and
averaged over ``--dtw-step`` frames. One JSON line at the end (also ``--out``).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--epochs", type=int, default=30, help="per fold (early stopping on valid)")
    p.add_argument("--dtw-step", type=int, default=5, help="frames averaged per DTW step")
    p.add_argument("--skip-dtw", action="store_true")
    p.add_argument("--monitor", default="val_loss", help="early stopping on val_loss or val_accuracy")
    p.add_argument("--only-folds", default="", help="comma-separated folds to run (development)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def fold_subjects(subjects, folds, seed):
    """[(test subjects, valid subject)] per fold (module docstring)."""
    import numpy as np

    order = [subjects[i] for i in np.random.RandomState(seed).permutation(len(subjects))]
    groups = [list(g) for g in np.array_split(order, folds)]
    return [(groups[k], groups[(k + 1) % folds][0]) for k in range(folds)]


def dtw_predict(train, test, step):
    """1-NN DTW labels of ``test`` Recordings against ``train`` Recordings."""
    import numpy as np
    from dtaidistance import dtw_ndim

    frames = np.concatenate([r.frames for r in train])
    mean, std = frames.mean(0), frames.std(0) + 1e-8

    def prepare(r):
        x = (r.frames - mean) / std
        n = len(x) // step * step
        return np.ascontiguousarray(x[:n].reshape(-1, step, x.shape[1]).mean(1), np.double)

    refs = [prepare(r) for r in train]
    labels = []
    for r in test:
        x = prepare(r)
        distances = [dtw_ndim.distance_fast(x, ref) for ref in refs]
        labels.append(train[int(np.argmin(distances))].label)
    return labels


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from benchmarks.report import emit, fit_best
    from pipelines.activity import data, model as activity_model, recordings
    from pipelines.activity.config import PRESETS
    from pipelines.common import config as config_lib, metrics

    everything = recordings.watch_recordings()
    subjects = sorted({r.subject for r in everything}, key=recordings.natural_key)
    plan = fold_subjects(subjects, args.folds, 0)
    truth, predicted, baseline, rows, seconds = [], [], [], [], 0.0
    classes = sorted({r.label for r in everything})
    wanted = {int(k) for k in args.only_folds.split(",") if k.strip()}
    for k, (test, valid) in enumerate(plan):
        if wanted and k not in wanted:
            continue
        config = config_lib.override(PRESETS["default"], args.overrides,
                                     test_subjects=tuple(test), valid_subjects=(valid,))
        datasets = data.make_datasets(config)
        member_probs, epochs, trained = [], [], 0.0
        for m in range(config.ensemble):  # member m: seed + fold + 1000 m
            keras.utils.set_random_seed(config.seed + k + 1000 * m)
            model = activity_model.build_model(config, datasets.meta)
            history, member_seconds = fit_best(model, datasets, args.epochs, config.patience,
                                               monitor=args.monitor)
            true_ids, probs = activity_model.recording_probabilities(model, datasets.test)
            member_probs.append(probs)
            epochs.append(len(history))
            trained += member_seconds
        member_accuracy = [round(float((p.argmax(-1) == true_ids).mean()), 4)
                           for p in member_probs]
        probs = np.mean(member_probs, axis=0)
        seconds += trained
        names = datasets.meta["classes"]
        truth += [names[i] for i in true_ids]
        predicted += [names[i] for i in probs.argmax(-1)]
        row = {"fold": k, "test_subjects": test, "valid_subject": valid,
               "recordings": len(true_ids), "accuracy": round(float(
                   (probs.argmax(-1) == true_ids).mean()), 4),
               "epochs": epochs if config.ensemble > 1 else epochs[0],
               "train_seconds": round(trained, 1)}
        if config.ensemble > 1:
            row["member_accuracy"] = member_accuracy
        if not args.skip_dtw:
            parts = data.splits(everything, config, "embedded")
            start = time.time()
            guess = dtw_predict(parts["train"] + parts["valid"], parts["test"], args.dtw_step)
            baseline += guess
            row["dtw_accuracy"] = round(float(np.mean(
                [g == r.label for g, r in zip(guess, parts["test"])])), 4)
            row["dtw_seconds"] = round(time.time() - start, 1)
        rows.append(row)
        print(json.dumps(row), flush=True)
    index = {c: i for i, c in enumerate(classes)}
    ours = metrics.classification_report([index[c] for c in truth],
                                         [index[c] for c in predicted], classes)
    result = {"benchmark": f"activity watch leave-subjects-out ({args.folds} folds)",
              "accuracy": round(ours["accuracy"], 4), "macro_f1": round(ours["macro_f1"], 4),
              "recordings": ours["examples"], "folds": rows,
              "train_minutes_total": round(seconds / 60, 2),
              "per_class_f1": {c: round(m["f1"], 4) for c, m in ours["per_class"].items()},
              "confusion": ours["confusion"], "labels": classes,
              "config": config_lib.to_dict(config)}
    if baseline:
        dtw = metrics.classification_report([index[c] for c in truth],
                                            [index[c] for c in baseline], classes)
        result["dtw_1nn"] = {"accuracy": round(dtw["accuracy"], 4),
                             "macro_f1": round(dtw["macro_f1"], 4), "step": args.dtw_step}
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
