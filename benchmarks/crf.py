"""Speed of the zoo CRF: the loss with its gradient (forward algorithm) and Viterbi.

    python benchmarks/crf.py [--against REV] [--shapes 32x40x17 1x20x17 32x400x13]

Shapes are batch x time x tags (CoNLL NER with IOBES targets has 17 tags; DNA windows
13). Each function runs in a ``tf.function`` on random potentials; ``--against REV``
also times ``zoo/layers/crf.py`` as it was at git revision REV (read with ``git show``,
in the same process, in alternating rounds so load hits both alike) and checks that
both give the same values. Medians of ``--repeats`` rounds; a table, then one JSON line.
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--shapes", nargs="+", default=["32x40x17", "1x20x17", "32x400x13"])
    p.add_argument("--against", help="a git revision whose crf.py is timed beside")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--min-seconds", type=float, default=0.3)
    p.add_argument("--out")
    return p.parse_args(argv)


def load_revision(rev):
    source = subprocess.run(["git", "show", f"{rev}:zoo/layers/crf.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    # The old module registers the same Keras names: give its package another name.
    source = source.replace('package="zoo"', 'package="zoo_bench_old"')
    path = os.path.join(tempfile.mkdtemp(), "crf_old.py")
    with open(path, "w") as f:
        f.write(source)
    spec = importlib.util.spec_from_file_location("crf_old", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def functions(module):
    import tensorflow as tf

    @tf.function
    def loss_and_gradient(potentials, tags):
        with tf.GradientTape() as tape:
            tape.watch(potentials)
            loss = tf.reduce_sum(module.crf_loss(tags, potentials))
        return loss, tape.gradient(loss, potentials)

    return {"loss+grad": loss_and_gradient, "viterbi": tf.function(module.crf_decode)}


def timed(fn, *args, min_seconds):
    fn(*args)
    start, calls = time.perf_counter(), 0
    while time.perf_counter() - start < min_seconds:
        fn(*args)
        calls += 1
    return (time.perf_counter() - start) / calls * 1000


def main(argv=None):
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import numpy as np
    import tensorflow as tf

    from benchmarks.report import emit
    from zoo.layers import crf

    peers = {"zoo": functions(crf)}
    if args.against:
        peers[args.against] = functions(load_revision(args.against))
    rows = []
    for shape in args.shapes:
        b, t, k = (int(v) for v in shape.split("x"))
        rng = np.random.RandomState(0)
        potentials = tf.constant(rng.randn(b, t, k, k).astype(np.float32) * 3)
        tags = tf.constant(rng.randint(0, k, (b, t)).astype(np.int32))
        inputs = {"loss+grad": (potentials, tags), "viterbi": (potentials,)}
        if args.against:
            new, old = peers["zoo"], peers[args.against]
            for a, c in zip(new["loss+grad"](potentials, tags), old["loss+grad"](potentials, tags)):
                np.testing.assert_allclose(a.numpy(), c.numpy(), rtol=1e-3, atol=1e-3)
            np.testing.assert_array_equal(new["viterbi"](potentials).numpy(),
                                          old["viterbi"](potentials).numpy())
        for what in ("loss+grad", "viterbi"):
            times = {name: [] for name in peers}
            for _ in range(args.repeats):
                for name, fns in peers.items():
                    times[name].append(timed(fns[what], *inputs[what], min_seconds=args.min_seconds))
            row = {"shape": shape, "function": what,
                   **{f"{name}_ms": round(statistics.median(v), 3) for name, v in times.items()}}
            if args.against:
                row["speedup"] = round(row[f"{args.against}_ms"] / row["zoo_ms"], 2)
            rows.append(row)
            print(row, flush=True)
    names = list(peers)
    print("\n| shape (batch x time x tags) | function | "
          + " | ".join(f"{n} ms" for n in names) + (" | speedup |" if args.against else " |"))
    print("|---|---|" + "---|" * (len(names) + bool(args.against)))
    for r in rows:
        cells = " | ".join(f"{r[f'{n}_ms']:.2f}" for n in names)
        print(f"| {r['shape']} | {r['function']} | {cells} |"
              + (f" {r['speedup']:.2f}x |" if args.against else ""))
    return emit({"benchmark": "crf", "rows": rows, "against": args.against}, args.out)


if __name__ == "__main__":
    raise SystemExit(main())
