"""DNA quality: UCI splice junctions by 10-fold cross-validation, and per-base gene tags.

    python benchmarks/dna.py --splice PATH/uci_splice/splice.csv [--folds 10] [--epochs 30]
    python benchmarks/dna.py --genome [--minutes 20] [--genbank PATH/genbank_annotated]
    python benchmarks/dna.py --mavenn mpsa|sortseq [--minutes 20]

``--splice``: the ``splice`` preset (per-sequence, EI / IE / N, 60 bases) trained on 9
folds (10% of them validate, early stopping on the validation loss) and tested on the
tenth, for every fold (seeded folds); ``--members K``: K models per fold, their mean
tested; reported: the error per class and the accuracy
over all folds, beside the UCI documentation's table (KBANN, BackProp).
``--genome``: the default preset (per-base BIO gene tags of the embedded C. diphtheriae
chromosome, labelled by pyrodigal's gene calls; its last 20% held out) trained for
``--minutes``; reported: per-base accuracy and CDS span precision / recall / F1 on the
held-out region; with ``--genbank``, the same model tested on every record of the
GenBank files there (curated annotation of other organisms).
``--mavenn``: the default preset's model as a per-sequence regression on a mavenn data
set (``pip install --no-deps mavenn``), mavenn's own training / validation / test split;
reported: Pearson and Spearman on test, beside ridge regression on one-hot bases
(scikit-learn, alpha picked on the validation split) in the same run.
One JSON line at the end (also ``--out``).
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

UCI_TABLE = {  # % error per class, from the UCI splice-junction documentation
    "KBANN": {"N": 4.62, "EI": 7.56, "IE": 8.47},
    "BackProp": {"N": 5.29, "EI": 5.74, "IE": 10.75},
}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--splice", help="the UCI splice-junction file (splice.csv)")
    what.add_argument("--genome", action="store_true", help="per-base tags of the embedded genome")
    what.add_argument("--mavenn", choices=["mpsa", "sortseq"], help="a mavenn data set")
    p.add_argument("--folds", type=int, default=10)
    p.add_argument("--only-folds", default="", help="comma-separated folds to run (development)")
    p.add_argument("--epochs", type=int, default=30, help="per fold (early stopping on valid)")
    p.add_argument("--minutes", type=float, default=20.0, help="--genome training budget")
    p.add_argument("--genbank", help="a folder of GenBank files to test the genome model on")
    p.add_argument("--members", type=int, default=0, help="--splice: train this many models "
                   "per fold (seeds seed+fold, +1, ...) and test their mean (dna.model.combine); "
                   "default: the config's ensemble")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def splice(args):
    import keras

    from benchmarks.report import fit_best
    import numpy as np

    from pipelines.common import config as config_lib
    from pipelines.dna import data, model as dna_model
    from pipelines.dna.config import PRESETS

    errors, correct, total, seconds, epochs = {}, 0, 0, 0.0, []
    wanted = {int(k) for k in args.only_folds.split(",") if k.strip()}
    for fold in range(args.folds):
        if wanted and fold not in wanted:
            continue
        config = config_lib.override(PRESETS["splice"], args.overrides, data=args.splice,
                                     fold=fold, folds=args.folds)
        datasets = data.make_datasets(config)
        members, trained, history = [], 0.0, []
        for k in range(args.members or config.ensemble):
            keras.utils.set_random_seed(config.seed + fold + 1000 * k)
            member = dna_model.build_model(config, datasets.meta)
            member_history, member_seconds = fit_best(member, datasets, args.epochs,
                                                      config.patience)
            members.append(member)
            trained += member_seconds
            history += member_history
        model = (members[0] if len(members) == 1
                 else dna_model.combine(members, config, datasets.meta))
        report = dna_model.evaluate(model, datasets.test, config, datasets.meta)
        seconds += trained
        epochs.append(len(history))
        n = report["sequences"]
        correct += round(report["accuracy"] * n)
        total += n
        confusion = np.asarray(report["confusion"])
        for i, c in enumerate(report["labels"]):
            wrong, count = errors.get(c, (0, 0))
            errors[c] = (wrong + int(confusion[i].sum() - confusion[i, i]),
                         count + int(confusion[i].sum()))
        print(json.dumps({"fold": fold, "accuracy": round(report["accuracy"], 4),
                          "epochs": len(history), "seconds": round(trained, 1)}), flush=True)
    per_class = {c: round(100 * w / n, 2) for c, (w, n) in errors.items()}
    return {"benchmark": "dna splice 10-fold", "accuracy": round(correct / total, 4),
            "error_percent": per_class, "uci_table": UCI_TABLE,
            "below_kbann": {c: per_class[c] < UCI_TABLE["KBANN"][c] for c in per_class},
            "train_minutes_total": round(seconds / 60, 2), "epochs_per_fold": epochs,
            "config": config_lib.to_dict(config)}


def genome(args):
    import keras

    from benchmarks.report import fit_best

    from pipelines.common import config as config_lib
    from pipelines.dna import data, model as dna_model
    from pipelines.dna.config import PRESETS

    config = config_lib.override(PRESETS["default"], args.overrides)
    keras.utils.set_random_seed(config.seed)
    datasets = data.make_datasets(config)
    print(f"data: {json.dumps(datasets.sizes)}", flush=True)
    model = dna_model.build_model(config, datasets.meta)
    history, trained = fit_best(model, datasets, 1000, config.patience, args.minutes)
    report = dna_model.evaluate(model, datasets.test, config, datasets.meta)
    result = {"benchmark": "dna genome per-base", "history": history,
              "train_minutes": round(trained / 60, 2), "held_out": report,
              "config": config_lib.to_dict(config)}
    if args.genbank:
        result["genbank"] = {}
        for name in sorted(os.listdir(args.genbank)):
            if name.endswith((".gb", ".gbk")):
                path = os.path.join(args.genbank, name)
                result["genbank"][name] = dna_model.evaluate(
                    model, data.read_split(config, datasets.meta, path), config, datasets.meta)
    return result


def mavenn(args):
    import keras
    import numpy as np
    from scipy import stats
    from sklearn.linear_model import Ridge

    from benchmarks.report import fit_best
    from pipelines.common import config as config_lib
    from pipelines.dna import data, model as dna_model
    from pipelines.dna.config import PRESETS

    config = config_lib.override(PRESETS["default"], ["task=per_sequence"] + args.overrides,
                                 data=f"mavenn:{args.mavenn}")
    keras.utils.set_random_seed(config.seed)
    datasets = data.make_datasets(config)
    print(f"data: {json.dumps(datasets.sizes)}", flush=True)
    model = dna_model.build_model(config, datasets.meta)
    history, trained = fit_best(model, datasets, args.epochs, config.patience, args.minutes)
    report = dna_model.evaluate(model, datasets.test, config, datasets.meta)
    found, values, given = data.read_labelled(config.data, config)
    splits = data.sequence_splits(found, values, config, given)

    def one_hot(seqs):
        ids = np.array([data.encode(s) for s in seqs]) - 1
        return np.eye(5, dtype=np.float32)[ids].reshape(len(seqs), -1)

    xy = {k: (one_hot(s), np.array(v, float)) for k, (s, v) in splits.items()}
    fits = {a: Ridge(alpha=a).fit(*xy["train"]) for a in (0.1, 1.0, 10.0, 100.0)}
    alpha = max(fits, key=lambda a: stats.pearsonr(fits[a].predict(xy["valid"][0]),
                                                  xy["valid"][1])[0])
    ridge = fits[alpha].predict(xy["test"][0])
    return {"benchmark": f"dna mavenn {args.mavenn}", "history": history,
            "train_minutes": round(trained / 60, 2), "test": report,
            "ridge_one_hot": {"alpha": alpha,
                              "pearson": round(float(stats.pearsonr(ridge, xy["test"][1])[0]), 4),
                              "spearman": round(float(stats.spearmanr(ridge, xy["test"][1])[0]), 4)},
            "config": config_lib.to_dict(config)}


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from benchmarks.report import emit

    result = splice(args) if args.splice else mavenn(args) if args.mavenn else genome(args)
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
