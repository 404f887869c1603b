"""Serving speed of every task's export, loaded as TensorFlow Serving loads it.

    python benchmarks/serving.py --export-dir DIR [--tasks sentiment,ner,...] [--calls 200] [--out FILE]
    python benchmarks/serving.py --train-small WORKDIR [--tasks ...] [--calls 20]
    python benchmarks/serving.py --train-small WORKDIR --train-preset default \
        --train-set epochs=1 --train-set sentiment:max_examples=3000 ...

For the newest version of each task under ``--export-dir`` (default ``saved_models``):
``serving_default`` latency of one request (batch 1, p50 / p99 of ``--calls`` calls after
``--warmup``) and examples per second at batch 64 and 256 (at least 3 calls and
``--min-seconds``, at most ``--calls``). Generative exports, found by their signatures
(taking ``max_length`` or ``steps``: char_lm, music ``generate``; returning
``target_tokens``: translation ``attention``, which decodes as serving_default does):
tokens per second (characters, time steps, target tokens with ``<end>``) for 1 and 32
rows, and the latency of ``--gen-length`` tokens for one row.

Requests are the export's own examples: the task's ``example_inputs`` on the config and
meta in the export's ``assets.extra/``, read by the task's ``predict`` reader bound to
them (rows padded as ``predict`` pads them); scalar inputs (char_lm's ``max_length``...)
from ``assets.extra/signature_defaults.json``. Examples this machine cannot read (a WAV
path of another machine) are skipped; if none is left, the contract example of the
serving_default endpoint (of an untrained model built from the config) is used. Batches
cycle through the rows; batch 1 is the first. Only building requests imports the
project: each export is measured in a fresh process importing only TensorFlow (and
tensorflow_text if installed), with ``zoo``, ``pipelines`` and ``benchmarks`` blocked;
``tf.saved_model.load``, then signature calls on tensors built before the clock starts.

``--train-small WORKDIR`` first trains the ``small`` preset of each task into
``WORKDIR/<task>`` and exports it into ``WORKDIR/saved_models`` (or ``--export-dir``)
through the command line; a task already trained there and exported is not redone.
``--train-preset`` trains another preset instead (``default``: the architecture users
get, so its latency is theirs), and ``--train-set [task:]KEY=VALUE`` shortens the run
(latency depends on the architecture, not on how long it trained).
A table, then one JSON line with the CPU and load average (also ``--out``).
"""

import argparse
import importlib
import importlib.abc
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TASKS = ("sentiment", "char_lm", "ner", "music", "translation", "speech", "dna", "activity")
BLOCKED = ("zoo", "pipelines", "benchmarks")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--export-dir", help="base of <task>/<version>/ (default saved_models, "
                   "or WORKDIR/saved_models with --train-small)")
    p.add_argument("--tasks", default=",".join(TASKS), help="comma-separated")
    p.add_argument("--calls", type=int, default=200, help="timed batch-1 calls")
    p.add_argument("--warmup", type=int, default=10, help="untimed calls first")
    p.add_argument("--min-seconds", type=float, default=2.0, help="per throughput figure")
    p.add_argument("--gen-length", type=int, default=200, help="tokens per generated row")
    p.add_argument("--gen-calls", type=int, default=3, help="timed calls per generation figure")
    p.add_argument("--train-small", metavar="WORKDIR", help="train and export the small presets first")
    p.add_argument("--train-preset", default="small", help="the preset --train-small trains")
    p.add_argument("--train-set", action="append", default=[], metavar="[TASK:]KEY=VALUE",
                   help="a config change for --train-small (repeatable; TASK: for one task)")
    p.add_argument("--out", help="also write the JSON result here")
    return p.parse_args(argv)


# ----------------------------------------------------------- the child: TensorFlow only


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: exports must run without project code")


def child(request_path):
    """Measures one export (the request pickled by ``measure``); prints ``RESULT {json}``."""
    sys.meta_path.insert(0, _Block())
    with open(request_path, "rb") as f:
        req = pickle.load(f)
    import numpy as np
    import tensorflow as tf

    try:
        import tensorflow_text  # noqa: F401 -- registers its ops (subword translation)
    except ImportError:
        pass
    loaded = tf.saved_model.load(req["dir"])

    def inputs(name, rows, **scalars):
        """{input: tensor} of signature ``name``: ``rows`` example rows cycled, scalars
        from the export's defaults unless given."""
        specs = loaded.signatures[name].structured_input_signature[1]
        values = {**req["defaults"].get(name, {}), **scalars}
        feed = req["feed"]
        return {key: tf.constant(feed[key][np.arange(rows) % len(feed[key])]
                                 if spec.shape.rank else values[key], spec.dtype)
                for key, spec in specs.items()}

    def run(name, feed):
        return {k: v.numpy() for k, v in loaded.signatures[name](**feed).items()}

    def timed(name, feed, calls, warmup=1, seconds=None):
        for _ in range(warmup):
            out = run(name, feed)
        times, start = [], time.perf_counter()
        while len(times) < calls and (seconds is None or len(times) < 3
                                      or time.perf_counter() - start < seconds):
            t = time.perf_counter()
            out = run(name, feed)
            times.append(time.perf_counter() - t)
        return np.array(times), out

    result = {"signatures": sorted(loaded.signatures)}
    one, _ = timed("serving_default", inputs("serving_default", 1), req["calls"], req["warmup"])
    result["serving_default"] = {"p50_ms": 1e3 * np.percentile(one, 50),
                                 "p99_ms": 1e3 * np.percentile(one, 99), "calls": len(one)}
    for batch in (64, 256):
        times, _ = timed("serving_default", inputs("serving_default", batch), req["calls"],
                         seconds=req["min_seconds"])
        result["serving_default"][f"batch{batch}_ex_per_s"] = batch * len(times) / times.sum()
    for name, fn in sorted(loaded.signatures.items()):  # the generation signature, if any
        knob = next((k for k in ("max_length", "steps")
                     if k in fn.structured_input_signature[1]), None)
        if name == "serving_default" or not (knob or "target_tokens" in fn.structured_outputs):
            continue
        gen = result["generation"] = {"signature": name, "length_input": knob,
                                      "gen_length": req["gen_length"] if knob else None}
        for rows in (1, 32):
            lengths = {knob: req["gen_length"]} if knob else {}
            times, out = timed(name, inputs(name, rows, **lengths), req["gen_calls"])
            if knob:
                tokens = int(out["length"].sum()) if "length" in out else rows * req["gen_length"]
            else:
                tokens = int((out["target_tokens"] != b"").sum())
            gen[f"rows{rows}_tok_per_s"] = tokens / np.median(times)
            gen[f"rows{rows}_tokens"] = tokens
            if rows == 1:
                gen["rows1_ms"] = 1e3 * np.median(times)
        break
    result["project_modules"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    print("RESULT " + json.dumps(result, default=float), flush=True)
    return 0


# ----------------------------------------------------------- the parent: project code


def train_small(task, workdir, export_dir, preset="small", changes=()):
    """``train`` then ``export`` of ``preset`` through the command line, with the
    ``[task:]KEY=VALUE`` changes meant for this task."""
    from pipelines.common import export

    work = os.path.join(workdir, task)
    if os.path.exists(os.path.join(work, "model.keras")) and export.versions(
            os.path.join(export_dir, task)):
        print(f"[{task}] already trained in {work} and exported: kept", flush=True)
        return
    sets = []
    for change in changes:
        owner, setting = change.split(":", 1) if ":" in change.split("=")[0] else ("", change)
        if owner in ("", task):
            sets += ["--set", setting]
    for command in ("train", "export"):
        start = time.time()
        code = subprocess.run([sys.executable, "-m", f"pipelines.{task}", command, "--preset",
                               preset, *(sets if command == "train" else []), "--workdir", work,
                               "--export-dir", export_dir, "-q"], cwd=ROOT).returncode
        print(f"[{task}] {command} ({preset} preset {' '.join(sets[1::2])}): exit {code}, "
              f"{time.time() - start:.0f} s", flush=True)
        if code:
            return


def requests(task_name, version_dir):
    """({input: batched array}, {signature: {input: default}}, notes) from the export."""
    import numpy as np
    from pipelines.common import cli, config as config_lib

    task = importlib.import_module(f"pipelines.{task_name}").TASK
    extra = os.path.join(version_dir, "assets.extra")
    config = config_lib.load(task.config_class, os.path.join(extra, "config.json"))
    meta = config_lib.read_json(os.path.join(extra, "meta.json"))
    path = os.path.join(extra, "signature_defaults.json")
    defaults = config_lib.read_json(path) if os.path.exists(path) else {}
    reader, items, skipped = cli.export_reader(task, version_dir), [], []
    for value in task.example_inputs(config, meta):
        try:
            items.append(reader.read_text(value))
        except Exception as e:  # noqa: BLE001 -- e.g. a file of the training machine
            skipped.append(f"{str(value)[:40]!r}: {type(e).__name__}")
    if items:
        return dict(reader.feed(items)), defaults, {"examples": len(items), "skipped": skipped,
                                                    "defaults": defaults}
    model = task.build_model(config, meta)  # untrained: only the contract example is used
    example = task.serving_model(model, config, meta).endpoints()["serving_default"].example
    feed = {k: np.array(v, dtype=object if isinstance(np.ravel(v)[0], (str, bytes)) else None)
            for k, v in example.items() if isinstance(v, (list, tuple))}
    return feed, defaults, {"examples": 0, "skipped": skipped, "defaults": defaults,
                            "fallback": "contract example"}


def measure(task, version_dir, args):
    """The child's result for one export, with how its requests were made."""
    try:
        feed, defaults, notes = requests(task, version_dir)
    except Exception as e:  # noqa: BLE001 -- reported in the table, the others still run
        return {"task": task, "version_dir": version_dir, "error": f"requests: {e!r}"}
    req = {"dir": os.path.abspath(version_dir), "feed": feed, "defaults": defaults,
           "calls": args.calls, "warmup": args.warmup, "min_seconds": args.min_seconds,
           "gen_length": args.gen_length, "gen_calls": args.gen_calls}
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    with tempfile.TemporaryDirectory() as cwd:
        with open(os.path.join(cwd, "request.pkl"), "wb") as f:
            pickle.dump(req, f)
        proc = subprocess.run([sys.executable, "-s", os.path.abspath(__file__), "--child",
                               os.path.join(cwd, "request.pkl")],
                              cwd=cwd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"task": task, "version_dir": version_dir, **notes, **json.loads(line[7:])}
    return {"task": task, "version_dir": version_dir, **notes,
            "error": f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"}


def table(rows):
    """The Markdown table: a row per serving_default and per generation signature."""
    def f(value, digits=1):
        return "-" if value is None else f"{value:,.{digits}f}"

    lines = ["| task | signature | p50 ms | p99 ms | batch-64 ex/s | batch-256 ex/s "
             "| gen tok/s, 1 row | gen tok/s, 32 rows | gen ms, 1 row |", "|" + "---|" * 9]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | failed: {r['error'].splitlines()[-1][:80]} |" + " |" * 7)
            continue
        s, g = r["serving_default"], r.get("generation")
        lines.append(f"| {r['task']} | serving_default | {f(s['p50_ms'], 2)} | {f(s['p99_ms'], 2)} "
                     f"| {f(s['batch64_ex_per_s'])} | {f(s['batch256_ex_per_s'])} | - | - | - |")
        if g:
            name = g["signature"] + (f" ({g['length_input']}={g['gen_length']})"
                                     if g["length_input"] else "")
            lines.append(f"| {r['task']} | {name} | - | - | - | - | {f(g['rows1_tok_per_s'])} "
                         f"| {f(g['rows32_tok_per_s'])} | {f(g['rows1_ms'])} |")
    return "\n".join(lines)


def main(argv=None):
    args = parse_args(argv)
    sys.path.insert(0, ROOT)
    from benchmarks.report import emit
    from pipelines.common import export

    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"error: unknown task(s) {unknown}; known: {', '.join(TASKS)}")
    export_dir = args.export_dir or (os.path.join(args.train_small, "saved_models")
                                     if args.train_small else os.path.join(ROOT, "saved_models"))
    if args.train_small:
        for task in tasks:
            train_small(task, os.path.abspath(args.train_small), os.path.abspath(export_dir),
                        args.train_preset, args.train_set)
    rows = []
    for task in tasks:
        if not export.versions(os.path.join(export_dir, task)):
            print(f"[{task}] no export under {export_dir}: skipped", flush=True)
            continue
        start = time.time()
        row = measure(task, export.latest_version_dir(export_dir, task), args)
        rows.append(row)
        print(f"[{task}] measured in {time.time() - start:.0f} s"
              + (f": {row['error'].splitlines()[-1]}" if "error" in row else ""), flush=True)
    print("\n" + table(rows) + "\n", flush=True)
    return emit({"benchmark": "serving (tf.saved_model.load, no project code)",
                 "export_dir": os.path.abspath(export_dir), "calls": args.calls,
                 "warmup": args.warmup, "gen_length": args.gen_length, "tasks": rows}, args.out)


if __name__ == "__main__":
    raise SystemExit(child(sys.argv[2]) if sys.argv[1:2] == ["--child"] else main())
