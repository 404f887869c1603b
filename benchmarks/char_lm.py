"""Language model quality on tiny-shakespeare under a CPU time budget.

    python benchmarks/char_lm.py --data PATH/tinyshakespeare_input.txt [--minutes 30]
    python benchmarks/char_lm.py --data PATH --level word --minutes 10

The file is split by position: the first 90% of the characters train, the last 10%
validate (the nanoGPT convention). Training runs through the char_lm pipeline's data
chain and model (``pipelines.char_lm``) for at most ``--minutes`` of wall time, with
Adam and a learning rate following a cosine of the elapsed time (so the decay ends
when the budget does), validating every ``--eval-every`` steps. Reported: validation
nats per token and bits per token (char) or perplexity (word), for the last and the
best evaluation, the training time, tokens per second and the load average (the CPU
is shared; a busy machine lowers the numbers). The final model is scored twice: in
windows of ``--window`` tokens that each start from zero states (as the nanoGPT
convention scores blocks), and as ``--stream-rows`` contiguous streams with the states
carried across windows (``model.stream_cross_entropy``: every character sees all the
text before it, the way an RNN reads). ``--eval-windows`` adds windowed scores at other
window lengths (256 is nanoGPT's block size). One JSON line is printed at the end (and
written to ``--out``); ``--save`` keeps the trained model as a .keras file.
"""

import argparse
import dataclasses
import json
import math
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", required=True, help="tinyshakespeare_input.txt (UTF-8 text)")
    p.add_argument("--level", default="char", choices=["char", "word"])
    p.add_argument("--minutes", type=float, default=30.0, help="training wall-time budget")
    p.add_argument("--cell", default="lstm")
    p.add_argument("--units", type=int, default=256)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--embedding-dim", type=int, default=64)
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--window", type=int, default=100)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=4e-3, help="peak learning rate")
    p.add_argument("--min-lr-fraction", type=float, default=0.05)
    p.add_argument("--clipnorm", type=float, default=5.0)
    p.add_argument("--vocab-size", type=int, default=10000)
    p.add_argument("--eval-every", type=int, default=200, help="steps between validations")
    p.add_argument("--carry-state", action="store_true", help="truncated BPTT batch layout")
    p.add_argument("--stream-rows", type=int, default=16, help="rows of the streamed validation")
    p.add_argument("--eval-windows", default="256",
                   help="comma-separated extra window lengths for the final windowed score")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--save", help="write the trained model to this .keras file")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from pipelines.char_lm import config as config_lib, data, model as model_lib

    config = dataclasses.replace(
        config_lib.CharLMConfig(),
        data=args.data, level=args.level, vocab_size=args.vocab_size, window=args.window,
        carry_state=args.carry_state, embedding_dim=args.embedding_dim, cell=args.cell,
        units=args.units, num_layers=args.layers, dropout=args.dropout,
        learning_rate=args.lr, clipnorm=args.clipnorm, batch_size=args.batch_size,
        steps_per_epoch=args.eval_every, epochs=100000, seed=args.seed,
    )
    started = time.time()
    datasets = data.make_datasets(config)
    keras.utils.set_random_seed(args.seed)
    model = model_lib.build_model(config, datasets.meta)
    budget = args.minutes * 60.0
    clock = TimeBudget(budget, args.lr, args.min_lr_fraction)
    evals = []

    class Validate(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            evals.append({"step": clock.steps,
                          "seconds": round(clock.elapsed(), 1),
                          "train_loss": float(logs["loss"]), "val_loss": float(logs["val_loss"]),
                          "load": round(os.getloadavg()[0], 2)})
            print(json.dumps(evals[-1]), flush=True)

    model.fit(datasets.train, validation_data=datasets.valid, epochs=config.epochs,
              callbacks=[clock, Validate()], verbose=0)
    train_seconds = clock.elapsed()
    report = model_lib.evaluate(model, datasets.valid, config, datasets.meta)
    valid_ids = data.token_stream(data.split_corpus(data.read_text(config, config.data),
                                                    config.valid_fraction)[1],
                                  config.level, data.make_vectorizer(datasets.meta["vocabulary"]))
    stream_nats, stream_tokens = model_lib.stream_cross_entropy(
        model, valid_ids, window=args.window, rows=args.stream_rows)
    by_window = {}
    for window in sorted({int(w) for w in args.eval_windows.split(",") if w.strip()}):
        nats, _ = model_lib.cross_entropy(
            model, data.make_dataset(valid_ids, window, args.batch_size))
        by_window[str(window)] = nats
    if args.save:
        model.save(args.save)
    steps = clock.steps
    tokens_per_second = steps * args.batch_size * args.window / train_seconds
    result = {
        "benchmark": "char_lm", "level": args.level, "data": os.path.basename(args.data),
        "config": {k: v for k, v in vars(args).items() if k not in ("data", "out", "save")},
        "vocabulary": len(datasets.meta["vocabulary"]), **dict(datasets.sizes),
        "val_nats_per_token": report["nats_per_token"],
        "val_bits_per_token": report["bits_per_token"],
        "val_stream_nats_per_token": stream_nats,
        "val_stream_bits_per_token": stream_nats / model_lib.LOG2,
        "val_stream_tokens": stream_tokens,
        "val_nats_per_token_by_window": by_window,
        "best_val_nats_per_token": min([e["val_loss"] for e in evals] + [report["nats_per_token"]]),
        "train_seconds": round(train_seconds, 1), "steps": steps,
        "tokens_per_second": round(tokens_per_second),
        "total_seconds": round(time.time() - started, 1),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "evaluations": evals,
    }
    if args.level == "word":
        result["val_perplexity"] = report["perplexity"]
    line = json.dumps(result)
    print("RESULT " + line, flush=True)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as f:
            f.write(line + "\n")
    return 0


def _callback_base():
    import keras

    return keras.callbacks.Callback


class TimeBudget(_callback_base()):
    """Stops training when ``budget`` seconds have passed; sets the learning rate to a
    cosine of the elapsed fraction: lr = min + (peak - min) (1 + cos(pi f)) / 2."""

    def __init__(self, budget, peak, min_fraction):
        super().__init__()
        self.budget, self.peak, self.min = budget, peak, peak * min_fraction
        self.start, self.steps = None, 0

    def elapsed(self):
        return time.time() - self.start

    def on_train_begin(self, logs=None):
        self.start = time.time()

    def on_train_batch_begin(self, batch, logs=None):
        f = min(self.elapsed() / self.budget, 1.0)
        self.model.optimizer.learning_rate.assign(
            self.min + (self.peak - self.min) * 0.5 * (1.0 + math.cos(math.pi * f))
        )

    def on_train_batch_end(self, batch, logs=None):
        self.steps += 1
        if self.elapsed() >= self.budget:
            self.model.stop_training = True


if __name__ == "__main__":
    sys.exit(main())
