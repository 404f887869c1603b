"""Throughput and peak memory of the zoo recurrent layers against Keras and PyTorch.

    python benchmarks/recurrent.py                 # full run (about 30 min on 2 busy cores)
    python benchmarks/recurrent.py --quick         # sanity run, about 2 minutes
    python benchmarks/recurrent.py --only lstm --shapes 64x100x128x256 --modes train

For every shape and mode (forward only; training = forward + backward + Adam step) all
layers of one family (zoo, stock Keras, torch.nn when installed) are built, warmed up
and then timed in turns, ``--repeats`` rounds, so load from other processes hits all
peers alike; the table shows medians and the ratios zoo/keras and zoo/torch (> 1 means
the zoo is faster). Throughput is in sequence-steps per second (batch x time /
seconds). GFLOP/s counts the matrix products only (forward 2·B·T·G·n·(in + n) per
layer and direction; training 3x that, the backward pass being two more products of
the same sizes); the machine's rough peak is a large float32 matmul measured in the
same run. Peak memory is the growth of the process' peak resident set during one
training step (Linux only: ``/proc/self/clear_refs``), with glibc told to return
large blocks to the system at once so earlier steps do not hide it.

Rows: every zoo cell (rnn, simplified_gru, gru, lstm, peephole_lstm) as one layer, and
lstm and gru bidirectional ("bi") and as two stacked layers ("x2"). The Keras and torch
peer of a zoo row is the layer of the same family and form: SimpleRNN / nn.RNN for rnn,
GRU / nn.GRU for both GRUs, LSTM / nn.LSTM for both LSTMs. Keras' GRU is its default
(reset_after=True, the cuDNN form); torch has only that form.
"""

import argparse
import ctypes
import gc
import os
import re
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

SHAPES = ["64x100x128x256", "32x500x64x128", "1x100x128x256"]  # batch x time x in x units
QUICK_SHAPES = ["16x50x32x64"]
ZOO_ROWS = [
    ("rnn", "single"),
    ("simplified_gru", "single"),
    ("gru", "single"),
    ("lstm", "single"),
    ("peephole_lstm", "single"),
    ("lstm", "bi"),
    ("gru", "bi"),
    ("lstm", "x2"),
    ("gru", "x2"),
]
FAMILY = {"rnn": "rnn", "simplified_gru": "gru", "gru": "gru", "lstm": "lstm", "peephole_lstm": "lstm"}
PLAIN = {"simplified_gru": "gru", "peephole_lstm": "lstm"}  # the 1.2x cost target
GATES = {"rnn": 1, "simplified_gru": 2, "gru": 3, "lstm": 4, "peephole_lstm": 4}


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one small shape, few rows and repeats")
    p.add_argument("--shapes", nargs="+", help="BxTxINxUNITS shapes (default: the three of issue 3)")
    p.add_argument("--modes", nargs="+", default=["train", "forward"], choices=["train", "forward"])
    p.add_argument("--only", default="", help="regex on the zoo row name, e.g. 'lstm$|gru$'")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per layer (median)")
    p.add_argument("--min-seconds", type=float, default=0.5, help="minimum time of one round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-torch", action="store_true", help="skip the torch.nn rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    args = p.parse_args(argv)
    if args.quick:
        args.shapes = args.shapes or QUICK_SHAPES
        args.repeats = min(args.repeats, 3)
        args.min_seconds = min(args.min_seconds, 0.2)
        args.only = args.only or "^(rnn|gru|lstm|lstm bi)$"
    args.shapes = [tuple(int(v) for v in s.split("x")) for s in (args.shapes or SHAPES)]
    return args


# ---------------------------------------------------------------- memory probe


def _libc():
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: big blocks mmapped, freed at once
        libc.mallopt(-1, 128 * 1024)  # M_TRIM_THRESHOLD
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


def _status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return None


def peak_memory_mb(fn):
    """Growth of the peak resident set (MiB) while ``fn()`` runs, or None off Linux."""
    try:
        gc.collect()
        if _LIBC is not None:
            _LIBC.malloc_trim(0)
        base = _status_kb("VmRSS")
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
        fn()
        return (_status_kb("VmHWM") - base) / 1024.0
    except OSError:
        return None


# ---------------------------------------------------------------- layers


def flops(row, shape, mode):
    """Matrix-product FLOPs of one forward (or training) pass of a zoo-row layer."""
    cell, form = row
    b, t, d, n = shape
    g = GATES[cell]
    per = lambda inp: 2 * b * t * g * n * (inp + n)  # noqa: E731
    if form == "single":
        f = per(d)
    elif form == "bi":
        f = 2 * per(d)
    else:
        f = per(d) + per(n)
    return f * (3 if mode == "train" else 1)


def tf_runner(tf, keras, build_layer, shape, mode):
    b, t, d, n = shape
    x = tf.random.stateless_normal((b, t, d), seed=(1, 2))
    inputs = keras.Input((t, d))
    model = keras.Model(inputs, build_layer()(inputs))
    if mode == "forward":
        fn = tf.function(lambda x: model(x, training=False))
        return lambda: fn(x).numpy()
    optimizer = keras.optimizers.Adam(1e-3)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True)))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)
        return loss

    return lambda: train_step(x).numpy()


def zoo_layer(keras, zoo, row, units):
    cell, form = row
    if form == "single":
        return zoo.layers.Recurrent(zoo.cells.get(cell, units))
    if form == "bi":
        return keras.layers.Bidirectional(zoo.layers.Recurrent(zoo.cells.get(cell, units)))
    return zoo.layers.DeepRNN(cell, units=units, num_layers=2)


def keras_layer(keras, row, units):
    family, form = FAMILY[row[0]], row[1]
    cls = {"rnn": keras.layers.SimpleRNN, "gru": keras.layers.GRU, "lstm": keras.layers.LSTM}[family]
    if form == "single":
        return cls(units)
    if form == "bi":
        return keras.layers.Bidirectional(cls(units))
    return keras.Sequential([cls(units, return_sequences=True), cls(units)])


def torch_runner(torch, row, shape, mode):
    family, form = FAMILY[row[0]], row[1]
    b, t, d, n = shape
    cls = {"rnn": torch.nn.RNN, "gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[family]
    model = cls(d, n, num_layers=2 if form == "x2" else 1, bidirectional=form == "bi", batch_first=True)
    x = torch.randn(b, t, d)
    if mode == "forward":
        model.eval()

        def forward():
            with torch.inference_mode():
                model(x)

        return forward
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def train_step():
        optimizer.zero_grad(set_to_none=True)
        _, h = model(x)
        h = h[0] if family == "lstm" else h  # h_n (layers*directions, batch, units)
        top = h[-2:] if form == "bi" else h[-1]  # the top layer's last outputs
        loss = top.square().mean()
        loss.backward()
        optimizer.step()
        return float(loss.detach())

    return train_step


# ---------------------------------------------------------------- timing


def time_round(fn, shape, min_seconds):
    """Sequence-steps per second of calls of ``fn`` over at least ``min_seconds``."""
    b, t = shape[0], shape[1]
    calls, start = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            return b * t * calls / elapsed


def measure_peak_gflops(tf, rounds=3):
    a = tf.random.stateless_normal((2048, 2048), seed=(3, 4))
    mm = tf.function(lambda a: tf.matmul(a, a))
    mm(a).numpy()
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for _ in range(3):
            mm(a).numpy()
        best = max(best, 3 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
    return best


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    import keras
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import zoo

    torch = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
        except ImportError:
            print("torch not installed: torch.nn rows skipped (pip install torch==2.13.0)")
    rows = [r for r in ZOO_ROWS if re.search(args.only, row_name(r))]
    if not rows:
        raise SystemExit(f"--only {args.only!r} matches no row of {[row_name(r) for r in ZOO_ROWS]}")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    peak = measure_peak_gflops(tf)
    print(
        f"threads {args.threads}, tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"torch {torch.__version__ if torch else '-'}; load average at start {load:.1f}; "
        f"rough peak (2048^2 matmul) {peak:.0f} GFLOP/s"
    )
    print(
        "steps/s = batch*time/s (median of rounds); zoo/keras, zoo/torch > 1: zoo faster; "
        "mem = peak RSS growth of one step, MiB"
    )
    results = []
    for shape in args.shapes:
        for mode in args.modes:
            results.extend(run_group(args, tf, keras, zoo, torch, rows, shape, mode, peak))
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at end {load_end:.1f}; peak {measure_peak_gflops(tf):.0f} GFLOP/s at end")
    return 0


def row_name(row):
    return row[0] if row[1] == "single" else f"{row[0]} {row[1]}"


def run_group(args, tf, keras, zoo, torch, rows, shape, mode, peak):
    """Builds every layer of one shape and mode, times them interleaved, prints a table."""
    b, t, d, n = shape
    runners = {}  # (framework, row name) -> callable
    for row in rows:
        runners[("zoo", row_name(row))] = tf_runner(tf, keras, lambda: zoo_layer(keras, zoo, row, n), shape, mode)
        peer = (FAMILY[row[0]], row[1])
        if ("keras", row_name(peer)) not in runners:
            runners[("keras", row_name(peer))] = tf_runner(
                tf, keras, lambda: keras_layer(keras, peer, n), shape, mode
            )
            if torch is not None:
                runners[("torch", row_name(peer))] = torch_runner(torch, peer, shape, mode)
    for fn in runners.values():  # trace, compile and warm up
        fn()
        fn()
    memory = {}
    if mode == "train" and not args.no_memory:
        for key, fn in runners.items():
            memory[key] = peak_memory_mb(fn)
    speeds = {key: [] for key in runners}
    for _ in range(args.repeats):
        for key, fn in runners.items():
            speeds[key].append(time_round(fn, shape, args.min_seconds))
    med = {key: statistics.median(v) for key, v in speeds.items()}

    print(f"\n### {mode}, batch {b} x time {t} x in {d}, units {n}\n")
    header = (
        "| layer | zoo steps/s | keras steps/s | torch steps/s | zoo/keras | zoo/torch "
        f"| cost vs zoo plain | zoo GFLOP/s (peak {peak:.0f}) |"
    )
    if memory:
        header += " zoo mem | keras mem | torch mem |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    out = []
    for row in rows:
        name, peer = row_name(row), row_name((FAMILY[row[0]], row[1]))
        z, k = med[("zoo", name)], med[("keras", peer)]
        tr = med.get(("torch", peer))
        gflops = flops(row, shape, mode) / (b * t) * z / 1e9
        plain = med.get(("zoo", row_name((PLAIN.get(row[0], row[0]), row[1]))))
        cost = plain / z if row[0] in PLAIN and plain else None  # time relative to the plain cell
        line = (
            f"| {name} | {z:,.0f} | {k:,.0f} | {_fmt(tr, ',.0f')} | {z / k:.2f} | "
            f"{_fmt(tr and z / tr, '.2f')} | {_fmt(cost, '.2f')} | {gflops:.1f} |"
        )
        if memory:
            line += (
                f" {_fmt(memory[('zoo', name)], '.0f')} | {_fmt(memory[('keras', peer)], '.0f')} |"
                f" {_fmt(memory.get(('torch', peer)), '.0f')} |"
            )
        print(line)
        out.append({"shape": shape, "mode": mode, "row": name, "zoo": z, "keras": k, "torch": tr})
    sys.stdout.flush()
    return out


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
