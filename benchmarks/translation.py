"""Translation quality under a CPU time budget: CLDR dates, or Tatoeba sentence pairs.

    python benchmarks/translation.py --minutes 10                      # dates (held-out years and format)
    python benchmarks/translation.py --data PATH/fra-eng.zip --minutes 60 [--set attention=none]

Dates (the default preset): trains on the generated pairs and reports the test split's
exact match (dates of held-out years, half of them in a held-out format), BLEU and chrF
after every epoch. ``--data`` (a Tatoeba / manythings Anki .zip or .tsv; the ``tatoeba``
preset, word level) splits 90/5/5 by source sentence and reports the valid split; run it
once with attention and once with ``--set attention=none`` for the plain
encoder-decoder. Training stops when ``--minutes`` of wall time have passed (the epoch
under way is finished; the decoding after each epoch is not counted); the learning rate is halved after ``--halve-after`` epochs
without a better validation loss. ``--eval-pairs`` pairs, drawn at random (seeded) from the
split, are decoded after each epoch (beam search is the slow part). One JSON line at the end (also ``--out``).
"""

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", help="pairs file (.zip/.tsv); default: the generated dates")
    p.add_argument("--minutes", type=float, default=10.0, help="training wall-time budget")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--halve-after", type=int, default=2)
    p.add_argument("--eval-pairs", type=int, default=1000)
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras
    import numpy as np

    from benchmarks.report import emit
    from pipelines.common import config as config_lib
    from pipelines.translation import config as tr_config
    from pipelines.translation import data, model as tr_model

    preset = "tatoeba" if args.data else "default"
    config = config_lib.override(tr_config.PRESETS[preset], args.overrides,
                                 **({"data": args.data} if args.data else {}))
    keras.utils.set_random_seed(config.seed)
    splits, _ = data.load_pairs(config)
    datasets = data.make_datasets(config)
    split = "test" if not args.data else "valid"
    # A seeded sample: pairs files come sorted by length (Tatoeba's by the English side),
    # so the first pairs would be the shortest sentences.
    pick = np.random.RandomState(config.seed).permutation(len(splits[split]))[:args.eval_pairs]
    scored, _ = data.make_dataset([splits[split][i] for i in sorted(pick)], config, datasets.meta)
    model = tr_model.build_model(config, datasets.meta)
    print(f"{preset}: {json.dumps(config_lib.to_dict(config))}", flush=True)
    print(f"data: {json.dumps(datasets.sizes)}; scoring {split} ({args.eval_pairs} pairs at most)",
          flush=True)

    trained, history, best_loss, waited = 0.0, [], None, 0  # seconds of training (decoding not counted)
    while trained < args.minutes * 60:
        epoch_start = time.time()
        fit = model.fit(datasets.train, validation_data=datasets.valid, epochs=1, verbose=0)
        trained += time.time() - epoch_start
        train_minutes = trained / 60
        report = tr_model.evaluate(model, scored, config, datasets.meta)
        row = {"epoch": len(history) + 1, "train_minutes": round(train_minutes, 2),
               "val_loss": round(fit.history["val_loss"][-1], 4),
               **{k: round(report[k], 4) for k in ("exact_match", "bleu", "chrf", "token_accuracy")}}
        history.append(row)
        print(json.dumps(row), flush=True)
        if best_loss is None or row["val_loss"] < best_loss:
            best_loss, waited = row["val_loss"], 0
        else:
            waited += 1
            if waited >= args.halve_after:
                model.optimizer.learning_rate.assign(model.optimizer.learning_rate * 0.5)
                waited = 0
    result = {"benchmark": f"translation {preset}", "config": config_lib.to_dict(config),
              "split": split, "history": history, "last": history[-1],
              "best_bleu": max(history, key=lambda r: r["bleu"]),
              "signature": report["bleu_signature"], "examples": report["translations"],
}
    return emit(result, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
