"""Data-parallel throughput: the multi-worker loop with 1 and 2 local workers.

    python benchmarks/distribute.py                        # 2 rounds, 3 epochs each
    python benchmarks/distribute.py --rounds 3 --set max_examples=4000

Each run is ``python -m pipelines.sentiment train --distribute multi-worker`` on
127.0.0.1 (a 1-worker TF_CONFIG is the baseline: the same custom loop, the same global
batch). Runs of 1 and 2 workers alternate, so machine load hits both alike. Throughput
is training examples per second of the epochs after the first (the first traces the
step); each worker is a separate process with its own TensorFlow thread pools.
Prints a Markdown table for benchmarks/RESULTS.md.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tests.distribute import cluster  # noqa: E402


def run(workers, workdir, overrides, timeout):
    ports = [cluster.free_port() for _ in range(workers)]
    args = ["pipelines.sentiment", "train", "--preset", "small", "--workdir", workdir,
            "--distribute", "multi-worker", "-q", *overrides]
    procs = [cluster.start(args, os.path.join(workdir + f".w{i}.txt"),
                           TF_CONFIG=cluster.tf_config(ports, i)) for i in range(workers)]
    try:
        codes = cluster.wait_all(procs, timeout)
    finally:
        cluster.kill(procs)
    if codes != [0] * workers:
        raise SystemExit(f"{workers} workers failed: {cluster.read(workdir + '.w0.txt')[-2000:]}")
    history = json.load(open(os.path.join(workdir, "history.json")))
    later = history[1:] or history
    return sum(h["examples"] for h in later) / sum(h["train_seconds"] for h in later)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--timeout", type=float, default=1200)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    settings = {"epochs": "3", "patience": "0", "max_examples": "2000"}
    settings.update(pair.split("=", 1) for pair in args.overrides)
    overrides = [x for k, v in settings.items() for x in ("--set", f"{k}={v}")]
    rates = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(args.rounds):
            for workers in (1, 2) if r % 2 == 0 else (2, 1):
                rate = run(workers, os.path.join(tmp, f"r{r}w{workers}"), overrides, args.timeout)
                rates[workers].append(rate)
                print(f"round {r + 1}: {workers} worker(s) {rate:.0f} examples/s", flush=True)
    one, two = statistics.median(rates[1]), statistics.median(rates[2])
    print(f"\nsentiment small preset, {' '.join(overrides[1::2])}; cpu count {os.cpu_count()}\n")
    print("| workers | training examples/s (median of rounds) | rounds | vs 1 worker |")
    print("|---|---|---|---|")
    print(f"| 1 | {one:.0f} | {', '.join(f'{x:.0f}' for x in rates[1])} | 1.00 |")
    print(f"| 2 | {two:.0f} | {', '.join(f'{x:.0f}' for x in rates[2])} | {two / one:.2f} |")


if __name__ == "__main__":
    main()
