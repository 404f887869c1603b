"""Throughput and peak memory of the zoo recurrent layers against Keras and PyTorch.

    python benchmarks/recurrent.py                 # full run (about 30 min on 2 busy cores)
    python benchmarks/recurrent.py --quick         # sanity run, about 2 minutes
    python benchmarks/recurrent.py --only lstm --shapes 64x100x128x256 --modes train
    python benchmarks/recurrent.py --precision ...  # + rows under the mixed_bfloat16 policy

For every shape and mode (``forward`` only; ``train`` = forward + backward + Adam step
with ``model(x, training=True)``, as ``fit`` calls it; ``train-noflag`` the same step
as a custom training loop usually writes it, ``model(x)`` under a GradientTape) all
layers of one family (zoo, stock Keras, torch.nn when installed) are built, warmed up
and then timed in turns, ``--repeats`` rounds, so load from other processes hits all
peers alike; the table shows medians and the ratios zoo/keras and zoo/torch (> 1 means
the zoo is faster). Throughput is in sequence-steps per second (batch x time /
seconds). GFLOP/s counts the matrix products only (``flops``: forward 2·B·T·G·n·(in + n)
per layer and direction; training adds the backward products, without ∂L/∂x for the
bottom layer). Two ceilings are measured in the same run: the float32 peak (chained
2048² products) and, per row, "step GEMM": the (B, n) @ (n, G·n) product every
recurrent step must do, chained T times in a while loop. At small batches that
product, not the big ones, bounds any float32 implementation of the recurrence. Peak memory is the growth of the process' peak resident set during one
training step (Linux only: ``/proc/self/clear_refs``), with glibc told to return
large blocks to the system at once so earlier steps do not hide it.

torch.nn runs in a child process (``TorchWorker``): in the TensorFlow process its OpenMP
threads, spinning after each op, starve TensorFlow's thread pool and are starved by it
(measured here: torch.nn.LSTM at 1,600 steps/s in-process against about 40,000 alone).
Rounds still alternate between the two processes, so only one computes at a time.

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
MODES = ["train", "train-noflag", "forward"]


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="one small shape, few rows and repeats")
    p.add_argument("--shapes", nargs="+", help="BxTxINxUNITS shapes (default: the three of issue 3)")
    p.add_argument("--modes", nargs="+", default=["train", "train-noflag", "forward"], choices=MODES)
    p.add_argument("--only", default="", help="regex on the zoo row name, e.g. 'lstm$|gru$'")
    p.add_argument("--repeats", type=int, default=7, help="timed rounds per layer (median)")
    p.add_argument("--min-seconds", type=float, default=0.5, help="minimum time of one round")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-torch", action="store_true", help="skip the torch.nn rows")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory probe")
    p.add_argument("--precision", action="store_true",
                   help="extra rows: each zoo row built under the mixed_bfloat16 policy")
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
    """Matrix-product FLOPs of one forward (or training) pass of a zoo-row layer.

    A layer with input width d does 2·B·T·G·n·(d + n) forward. Training adds ∂L/∂U,
    ∂L/∂a<t-1> (2·B·T·G·n·n each), ∂L/∂K (2·B·T·G·n·d) and, except for the bottom
    layer (the benchmark's input takes no gradient, so every framework skips it),
    ∂L/∂x (2·B·T·G·n·d).
    """
    cell, form = row
    b, t, d, n = shape
    g = GATES[cell]

    def layer(inp, bottom):
        forward = 2 * b * t * g * n * (inp + n)
        if mode == "forward":
            return forward
        return forward + 2 * b * t * g * n * (2 * n + inp * (1 if bottom else 2))

    if form == "single":
        return layer(d, True)
    if form == "bi":
        return 2 * layer(d, True)
    return layer(d, True) + layer(n, False)


def tf_runner(tf, keras, build_layer, shape, mode):
    b, t, d, n = shape
    x = tf.random.stateless_normal((b, t, d), seed=(1, 2))
    inputs = keras.Input((t, d))
    model = keras.Model(inputs, build_layer()(inputs))
    if mode == "forward":
        fn = tf.function(lambda x: model(x, training=False))
        return lambda: fn(x).numpy()
    optimizer = keras.optimizers.Adam(1e-3)
    flag = {"training": True} if mode == "train" else {}  # train-noflag: plain model(x)

    @tf.function
    def train_step(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(x, **flag), "float32")))
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


def under_policy(keras, policy, build):
    """``build`` with the layers it makes under the Keras dtype ``policy``."""
    def make():
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(policy)
        try:
            return build()
        finally:
            keras.config.set_dtype_policy(previous)
    return make


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


class TorchWorker:
    """torch.nn rows in a child process; the parent asks for one timed round at a time."""

    def __init__(self, threads):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.process = ctx.Process(target=_torch_child, args=(child, threads), daemon=True)
        self.process.start()
        self.version = self.conn.recv()  # None when torch is not installed

    def _ask(self, *message):
        self.conn.send(message)
        return self.conn.recv()

    def runner(self, key, row, shape, mode):
        """A (round, memory) pair of callables for one torch row, built and warmed up."""
        self._ask("build", key, row, shape, mode)
        return (lambda min_seconds: self._ask("round", key, min_seconds),
                lambda: self._ask("memory", key))

    def close(self):
        self.conn.send(("stop",))
        self.process.join(timeout=10)


def _torch_child(conn, threads):
    try:
        import torch
    except ImportError:
        conn.send(None)
        return
    torch.set_num_threads(threads)
    conn.send(torch.__version__)
    runners, shapes = {}, {}
    while True:
        command, *rest = conn.recv()
        if command == "stop":
            return
        if command == "build":
            key, row, shape, mode = rest
            fn = runners[key] = torch_runner(torch, row, shape, mode)
            shapes[key] = shape
            fn()
            fn()
            conn.send(True)
        elif command == "round":
            key, min_seconds = rest
            conn.send(time_round(runners[key], shapes[key], min_seconds))
        elif command == "memory":
            conn.send(peak_memory_mb(runners[rest[0]]))


# ---------------------------------------------------------------- timing


def tf_timers(fn, shape):
    """(round, memory) callables of a TensorFlow runner, traced and warmed up."""
    fn()
    fn()
    return (lambda min_seconds: time_round(fn, shape, min_seconds), lambda: peak_memory_mb(fn))


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


def _best_rate(fn, flop, rounds=3, min_seconds=0.3):
    fn()
    best = 0.0
    for _ in range(rounds):
        calls, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_seconds:
            fn()
            calls += 1
        best = max(best, calls * flop / (time.perf_counter() - start) / 1e9)
    return best


def measure_peak_gflops(tf, chain=8):
    """GFLOP/s of a chain of 2048^2 float32 products in one graph call (a scalar comes
    back, so neither the call nor a copy of the result is timed)."""
    a = tf.random.stateless_normal((2048, 2048), seed=(3, 4)) / 2048**0.5

    @tf.function
    def products(a):
        x = a
        for _ in range(chain):
            x = tf.matmul(x, a)
        return tf.reduce_sum(x)

    return _best_rate(lambda: products(a).numpy(), chain * 2 * 2048**3)


def measure_step_gemm(tf, batch, units, gates, steps=100):
    """GFLOP/s of the product no recurrent step avoids, (batch, n) @ (n, G·n), run
    ``steps`` times in sequence in a while loop (each step's input is the last one's
    output): the ceiling of a float32 recurrence of this shape on this machine."""
    h0 = tf.random.stateless_normal((batch, units), seed=(5, 6))
    u = tf.random.stateless_normal((units, gates * units), seed=(7, 8)) / units**0.5

    @tf.function
    def chain(h):
        _, h = tf.while_loop(lambda i, h: i < steps,
                             lambda i, h: (i + 1, tf.matmul(h, u)[:, :units]), (0, h))
        return tf.reduce_sum(h)

    return _best_rate(lambda: chain(h0).numpy(), steps * 2 * batch * units * gates * units)


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
        torch = TorchWorker(args.threads)
        if torch.version is None:
            print("torch not installed: torch.nn rows skipped (pip install torch==2.13.0)")
            torch.close()
            torch = None
    rows = [r for r in ZOO_ROWS if re.search(args.only, row_name(r))]
    if not rows:
        raise SystemExit(f"--only {args.only!r} matches no row of {[row_name(r) for r in ZOO_ROWS]}")

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    peak = measure_peak_gflops(tf)
    print(
        f"threads {args.threads}, tensorflow {tf.__version__}, keras {keras.__version__}, "
        f"torch {torch.version if torch else '-'} (own process); load average at start {load:.1f}; "
        f"float32 peak (chained 2048^2 products) {peak:.0f} GFLOP/s"
    )
    print(
        "steps/s = batch*time/s (median of rounds); zoo/keras, zoo/torch > 1: zoo faster; "
        "mem = peak RSS growth of one step, MiB"
    )
    results = []
    for shape in args.shapes:
        for mode in args.modes:
            results.extend(run_group(args, tf, keras, zoo, torch, rows, shape, mode, peak))
    if torch is not None:
        torch.close()
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at end {load_end:.1f}; peak {measure_peak_gflops(tf):.0f} GFLOP/s at end")
    return 0


def row_name(row):
    return row[0] if row[1] == "single" else f"{row[0]} {row[1]}"


def run_group(args, tf, keras, zoo, torch, rows, shape, mode, peak):
    """Builds every layer of one shape and mode, times them interleaved, prints a table."""
    b, t, d, n = shape
    runners = {}  # (framework, row name) -> (one timed round, peak memory of one step)
    for row in rows:
        runners[("zoo", row_name(row))] = tf_timers(tf_runner(tf, keras, lambda: zoo_layer(keras, zoo, row, n), shape, mode), shape)
        if args.precision:
            runners[("zoo-bf16", row_name(row))] = tf_timers(tf_runner(
                tf, keras, under_policy(keras, "mixed_bfloat16", lambda: zoo_layer(keras, zoo, row, n)),
                shape, mode), shape)
        peer = (FAMILY[row[0]], row[1])
        if ("keras", row_name(peer)) not in runners:
            runners[("keras", row_name(peer))] = tf_timers(
                tf_runner(tf, keras, lambda: keras_layer(keras, peer, n), shape, mode), shape
            )
            if torch is not None:
                runners[("torch", row_name(peer))] = torch.runner(row_name(peer), peer, shape, mode)
    memory = {}
    if mode != "forward" and not args.no_memory:
        for key, (_, probe) in runners.items():
            memory[key] = probe()
    speeds = {key: [] for key in runners}
    for _ in range(args.repeats):
        for key, (timed_round, _) in runners.items():
            speeds[key].append(timed_round(args.min_seconds))
    med = {key: statistics.median(v) for key, v in speeds.items()}

    print(f"\n### {mode}, batch {b} x time {t} x in {d}, units {n}\n")
    header = (
        "| layer | zoo steps/s | keras steps/s | torch steps/s | zoo/keras | zoo/torch "
        f"| cost vs zoo plain | zoo GFLOP/s (peak {peak:.0f}) | step GEMM GFLOP/s | zoo / step GEMM |"
    )
    if memory:
        header += " zoo mem | keras mem | torch mem |"
    print(header)
    print("|" + "---|" * (header.count("|") - 1))
    out, ceilings = [], {}
    for row in rows:
        name, peer = row_name(row), row_name((FAMILY[row[0]], row[1]))
        z, k = med[("zoo", name)], med[("keras", peer)]
        tr = med.get(("torch", peer))
        gflops = flops(row, shape, mode) / (b * t) * z / 1e9
        if row[0] not in ceilings:
            ceilings[row[0]] = measure_step_gemm(tf, b, n, GATES[row[0]])
        plain = med.get(("zoo", row_name((PLAIN.get(row[0], row[0]), row[1]))))
        cost = plain / z if row[0] in PLAIN and plain else None  # time relative to the plain cell
        line = (
            f"| {name} | {z:,.0f} | {k:,.0f} | {_fmt(tr, ',.0f')} | {z / k:.2f} | "
            f"{_fmt(tr and z / tr, '.2f')} | {_fmt(cost, '.2f')} | {gflops:.1f} | "
            f"{ceilings[row[0]]:.1f} | {gflops / ceilings[row[0]]:.2f} |"
        )
        if memory:
            line += (
                f" {_fmt(memory[('zoo', name)], '.0f')} | {_fmt(memory[('keras', peer)], '.0f')} |"
                f" {_fmt(memory.get(('torch', peer)), '.0f')} |"
            )
        print(line)
        out.append({"shape": shape, "mode": mode, "row": name, "zoo": z, "keras": k, "torch": tr})
    if args.precision:
        print("\n| layer | zoo float32 steps/s | zoo mixed_bfloat16 steps/s | bf16 / float32 |")
        print("|---|---|---|---|")
        for row in rows:
            name = row_name(row)
            z, h = med[("zoo", name)], med[("zoo-bf16", name)]
            print(f"| {name} | {z:,.0f} | {h:,.0f} | {h / z:.2f} |")
            out.append({"shape": shape, "mode": mode, "row": name + " mixed_bfloat16", "zoo": h})
    sys.stdout.flush()
    return out


def _fmt(value, spec):
    return "-" if value is None else format(value, spec)


if __name__ == "__main__":
    sys.exit(main())
