"""Child program of test_serving_properties.py: one export, every signature, any input.

Run as ``python -I properties_child.py ARGS_JSON`` (by path, isolated, PYTHONPATH
cleared by the parent), in a process where ``zoo`` and ``pipelines`` cannot be imported
(a ``sys.meta_path`` finder placed first, the idea of
``pipelines/common/serving_check.py``). ARGS_JSON:

    {"dir": version dir, "blocked": ["zoo", "pipelines"], "max_examples": int,
     "call_limit": seconds after which a call counts as a hang,
     "signatures": {name: {"inputs": [{"name", "dtype", "shape"}],
                           "example": {input: value}, "ranges": {input: [lo, hi]}}}}

``ranges``: the serving model's ``input_ranges()`` (inclusive, null = unbounded, floats
also finite); a scalar with no range must accept every value of its dtype.

Batched inputs (first dimension None) hold strings or numbers; those of one request
share the batch. For each signature it runs, once loaded: fixed edge requests (each
batched input's edges, the other batched inputs the example's rows repeated to the same
batch, with the example's scalars; then every scalar at, below and above its range with
the example's batches), then ``max_examples`` hypothesis requests (batches of 0, 1, a
few and several hundred; strings: arbitrary unicode and bytes, empty and
whitespace-only strings, very long strings; numbers: any values of the dtype, the edge
values favoured; scalars anywhere). Numeric edge values: 0, +-1, the integer extremes,
for floats also 0.5, +-0.9 x the largest (3e38 in float32), NaN, +-inf and subnormals;
numeric edge requests: batch 0, time (every None dimension past the batch) 0, 1 and
1000 (batch 1), 300 rows of time 2, and each edge value everywhere. Hypothesis draws
each None dimension past the batch per input (0 to 1000, at most 8 for a big batch, at
most 2 million elements an input); static dimensions are as declared.
Subnormal scalars count as 0 (TensorFlow flushes them on CPU). Every
call must return the signature's outputs with their declared
dtypes and shapes, one row per input row, finite floats, or, when a scalar is out of its
range, raise InvalidArgumentError saying "Expected ... Received: <input>=...".
Large batches are paired with small in-range scalars (and short numeric time dimensions)
so that each call stays short; the range edges are met with small batches. Then 8
threads call the loaded signature at once (each request the example's batched rows
rotated and repeated) and must give what sequential calls gave.

A call still running after ``call_limit`` seconds is reported as a hang (with its
request) and ends the child. Prints one line ``RESULT {json}``: blocked, modules, and per signature the number of
calls, the slowest call (s), failures (at most a few, each with the request shown short)
and concurrency mismatches.
"""

import importlib.abc
import json
import sys

def _from_json(value):
    """{"b64": text} -> bytes (binary examples, TensorFlow Serving's REST convention)."""
    import base64

    if isinstance(value, dict) and set(value) == {"b64"}:
        return base64.b64decode(value["b64"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    return value


ARGS = json.loads(sys.argv[1])
for _info in ARGS["signatures"].values():
    _info["example"] = _from_json(_info["example"])
BLOCKED = tuple(ARGS["blocked"])


class _Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked: exports must run without project code")
        return None


sys.meta_path.insert(0, _Block())
blocked = {}
for _name in BLOCKED:
    try:
        __import__(_name)
        blocked[_name] = False
    except ImportError:
        blocked[_name] = _name not in sys.modules

import math  # noqa: E402
import os  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
try:  # TensorFlow Text's ops, as TensorFlow Serving's model server has them built in
    import tensorflow_text  # noqa: E402, F401
except ImportError:
    pass
from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

INT32 = (-2**31, 2**31 - 1)
WHITESPACE = " \t\n\r\x0b\x0c\x85\xa0\u1680\u2003\u2028\u3000"
MAX_FAILURES = 5


# ------------------------------------------------------------------------ strings


def _long():
    """Very long strings: 5,000 to 30,000 characters, words or one long run."""
    return st.builds(lambda piece, n: piece * n,
                     st.sampled_from(["a ", "Obama visited Paris . ", "é", "\xa0", "x", "😀 ",
                                      "\n"]),
                     st.integers(5000, 30000 // 6))


SHORT = st.one_of(st.just(""), st.text(alphabet=WHITESPACE, max_size=6), st.text(max_size=12),
                  st.binary(max_size=12))
ANY = st.one_of(SHORT, st.text(max_size=80), st.binary(max_size=80), _long())
KINDS = {"empty": (0, 0), "one": (1, 1), "few": (2, 6), "many": (200, 400)}


def _strings(draw, kind, batch, rank):
    """A (batch,) or (batch, width) object array of str/bytes for a batch ``kind``."""
    item = SHORT if kind == "many" else ANY
    if rank == 1:
        return _array(draw(st.lists(item, min_size=batch, max_size=batch)), (batch,))
    width = draw(st.sampled_from([0, 1, 3, 8] + ([] if kind == "many" else [1000])))
    token = SHORT if (kind == "many" or width > 8) else st.one_of(SHORT, _long())
    rows = [draw(st.lists(token, min_size=0, max_size=width)) for _ in range(batch)]
    return _array([r + [""] * (width - len(r)) for r in rows], (batch, width))


def _array(values, shape):
    """An object array of ``shape`` from nested lists (bytes and str kept as given)."""
    out = np.empty(shape, dtype=object)
    for index in np.ndindex(*shape):
        row = values[index[0]]
        out[index] = row if len(shape) == 1 else row[index[1]]
    return out


STRING_EDGES = {
    1: [[], [""], ["   "], [" \t\n"], ["Obama"], ["a", "b"], ["", "Obama", ""],
        [b"\xff\xfe", b"caf\xe9"], ["x" * 20000], ["a " * 6000], ["Obama ."] * 300],
    2: [np.empty((0, 0), object), np.empty((0, 3), object), np.empty((2, 0), object),
        [[""]], [["Obama"]], [["a"], ["b"]], [["", ""]], [[b"\xff", "x" * 20000]],
        [["a"] * 1000], [["Paris", ""]] * 300],
}


# ------------------------------------------------------------------------ numbers

MAX_ELEMENTS = 2_000_000  # per numeric input of a hypothesis request: each call stays short
EDGE_SHAPES = [(0, 0), (0, 5), (2, 0), (1, 1), (3, 7), (1, 1000), (300, 2)]  # (batch, time)


def _specials(dtype):
    """Edge values of a numeric dtype: 0, +-1 and the extremes; floats also 0.5, +-huge,
    NaN, +-inf and subnormals."""
    if dtype.kind in "iu":
        lo, hi = int(np.iinfo(dtype).min), int(np.iinfo(dtype).max)
        return [v for v in (0, 1, -1, 2, 127, 128, lo, hi) if lo <= v <= hi]
    huge, sub = 0.9 * float(np.finfo(dtype).max), float(np.finfo(dtype).smallest_subnormal)
    return [0.0, -0.0, 1.0, 0.5, -1.0, huge, -huge, math.nan, math.inf, -math.inf, sub,
            -sub, 3 * sub]


def _numbers(draw, spec, kind, batch):
    """A (batch, ...) array of the input's dtype: each None dimension drawn (at most 8
    for a big batch, 1000 else, and ``MAX_ELEMENTS`` in all), static ones as declared;
    the values a drawn palette of up to 8 (edge values or any), placed at random."""
    dtype = np.dtype(spec["dtype"])
    room = MAX_ELEMENTS // max(batch, 1) // max(math.prod(d for d in spec["shape"][1:] if d), 1)
    shape = [batch]
    for dim in spec["shape"][1:]:
        if dim is None:
            top = min(8 if kind == "many" else 1000, room)
            dim = draw(st.one_of(st.sampled_from([0, min(1, top), top]), st.integers(0, top)))
            room //= max(dim, 1)
        shape.append(dim)
    if dtype.kind in "iu":
        any_value = st.integers(int(np.iinfo(dtype).min), int(np.iinfo(dtype).max))
    else:
        any_value = st.floats(width=8 * dtype.itemsize)
    value = st.one_of(st.sampled_from(_specials(dtype)), any_value)
    palette = np.array(draw(st.lists(value, min_size=1, max_size=8)), dtype)
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1))).choice(palette, size=shape)


def _number_edges(spec):
    """The edge shapes (every None dimension past the batch = time) filled with the
    edge values in turn, then each edge value everywhere in a (2, 3, ...) array."""
    dtype = np.dtype(spec["dtype"])
    specials = np.array(_specials(dtype), dtype)

    def shape(batch, time):
        return (batch, *(time if d is None else d for d in spec["shape"][1:]))

    return ([np.resize(specials, s) for s in dict.fromkeys(shape(*e) for e in EDGE_SHAPES)]
            + [np.full(shape(2, 3), v, dtype) for v in specials])


# ------------------------------------------------------------------------ batched inputs


def _batched(spec, value):
    """``value`` as the input's array (strings: an object array)."""
    return np.asarray(value, object if spec["dtype"] == "string" else spec["dtype"])


def _rows(array, count, start=0):
    """``count`` rows of ``array``: its rows in turn from row ``start``, repeated."""
    return array[(np.arange(count) + start) % len(array)]


def _batch_edges(spec):
    if spec["dtype"] != "string":
        return _number_edges(spec)
    return [v if isinstance(v, np.ndarray) else _array(v, np.shape(np.array(v, dtype=object)))
            for v in STRING_EDGES[len(spec["shape"])]]


# ------------------------------------------------------------------------ scalars


def _bounds(dtype, rng):
    lo, hi = (rng or (None, None))
    if dtype == "int32":
        return (INT32[0] if lo is None else int(lo)), (INT32[1] if hi is None else int(hi))
    return (-math.inf if lo is None else float(lo)), (math.inf if hi is None else float(hi))


def _in_range(value, dtype, rng):
    lo, hi = _bounds(dtype, rng)
    if dtype != "int32":
        if not math.isfinite(value) and rng is not None:
            return False
        if abs(value) < np.finfo(np.float32).tiny:  # TensorFlow flushes subnormals to 0
            value = 0.0
    return lo <= value <= hi


def _edges(dtype, rng):
    """Values at, just below and just above the range, and the dtype's extremes."""
    lo, hi = _bounds(dtype, rng)
    if dtype == "int32":
        values = {lo, hi, lo - 1, hi + 1, 0, 1, -1, INT32[0], INT32[1], 100000}
        return sorted(v for v in values if INT32[0] <= v <= INT32[1])
    f32 = np.float32
    tiny = float(np.finfo(np.float32).tiny)  # the smallest normal float32
    values = [0.0, -0.0, 1.0, -1.0, 1e-30, 1e30, -1e30, tiny, -tiny, math.nan, math.inf,
              -math.inf]
    for edge in (lo, hi):
        if math.isfinite(edge):
            values += [edge, float(np.nextafter(f32(edge), f32(-np.inf))),
                       float(np.nextafter(f32(edge), f32(np.inf)))]
    return values


def _scalar(draw, spec, rng, small):
    dtype = spec["dtype"]
    lo, hi = _bounds(dtype, rng)
    if small:  # a big batch: a cheap value inside the range
        if dtype == "int32":
            start = max(lo, 0) if lo <= 0 <= hi or lo > 0 else hi - 3
            return draw(st.integers(start, min(hi, start + 3)))
        top = min(hi, max(lo, 0.0) + 2.0)
        return draw(st.floats(max(lo, 0.0), top, width=32))
    if dtype == "int32":
        return draw(st.one_of(st.sampled_from(_edges(dtype, rng)),
                              st.integers(max(lo, INT32[0]), min(hi, INT32[1])),
                              st.integers(*INT32)))
    return draw(st.one_of(st.sampled_from(_edges(dtype, rng)), st.floats(width=32)))


# ------------------------------------------------------------------------ checks


def _short(value, width=160):
    text = repr(value)
    return text if len(text) <= width else text[:width] + f"... ({len(text)} chars)"


def _describe(feeds):
    out = {}
    for name, value in feeds.items():
        if isinstance(value, np.ndarray) and value.dtype == object:
            lengths = [len(v) for v in value.reshape(-1)]
            out[name] = (f"shape {value.shape}, longest {max(lengths, default=0)}, first "
                         f"{_short(value.reshape(-1)[:3].tolist(), 120)}")
        elif isinstance(value, np.ndarray):
            values = np.unique(value).tolist()
            values = values if len(values) <= 8 else values[:4] + ["..."] + values[-4:]
            out[name] = f"{value.dtype} shape {value.shape}, values {_short(values, 120)}"
        else:
            out[name] = _short(value)
    return out


class Checker:
    def __init__(self, name, signature, info):
        self.name, self.fn, self.info = name, signature, info
        self.specs = {s["name"]: s for s in info["inputs"]}
        self.outputs = signature.structured_outputs
        self.calls, self.slowest, self.failures = 0, 0.0, []

    def out_of_range(self, feeds):
        ranges = self.info["ranges"]
        return [name for name, spec in self.specs.items() if not spec["shape"]
                and not _in_range(feeds[name], spec["dtype"], ranges.get(name))]

    def call(self, feeds):
        tensors = {name: tf.constant(value, tf.as_dtype(self.specs[name]["dtype"]))
                   for name, value in feeds.items()}
        start = time.perf_counter()
        RUNNING[threading.get_ident()] = (self.name, feeds, start)
        try:
            return self.fn(**tensors), None
        except Exception as e:  # noqa: BLE001 - judged by check()
            return None, e
        finally:
            RUNNING.pop(threading.get_ident(), None)
            elapsed = time.perf_counter() - start
            self.calls += 1
            self.slowest = max(self.slowest, elapsed)

    def problem(self, feeds):
        """None if the call behaved, else what went wrong."""
        bad = self.out_of_range(feeds)
        out, error = self.call(feeds)
        if bad:
            if error is None:
                return f"accepted out-of-range {bad}"
            message = getattr(error, "message", str(error))
            if not isinstance(error, tf.errors.InvalidArgumentError):
                return f"out-of-range {bad} raised {type(error).__name__}: {message[:300]}"
            if "Expected" not in message or not any(f"Received: {n}=" in message for n in bad):
                return f"out-of-range {bad}: unreadable message {message[:300]!r}"
            return None
        if error is not None:
            return f"{type(error).__name__}: {getattr(error, 'message', str(error))[:400]}"
        batches = {np.shape(v)[0] for n, v in feeds.items() if self.specs[n]["shape"]}
        if set(out) != set(self.outputs):
            return f"outputs {sorted(out)} != declared {sorted(self.outputs)}"
        for key, spec in self.outputs.items():
            value = out[key]
            if value.dtype != spec.dtype:
                return f"{key}: dtype {value.dtype.name} != declared {spec.dtype.name}"
            if not spec.shape.is_compatible_with(value.shape):
                return f"{key}: shape {value.shape} != declared {spec.shape}"
            if value.shape.rank and batches and value.shape[0] not in batches:
                return f"{key}: {value.shape[0]} rows for a batch of {sorted(batches)}"
            if value.dtype.is_floating and not np.isfinite(value.numpy()).all():
                return f"{key}: not finite"
        return None

    def record(self, feeds, where):
        problem = self.problem(feeds)
        if problem and len(self.failures) < MAX_FAILURES:
            self.failures.append({"where": where, "problem": problem, "request": _describe(feeds)})
        return problem


def _edge_requests(info):
    """Each batched input's edges (the other batched inputs: the example's rows, as many)
    with the example's scalars, then each scalar's edges."""
    example = info["example"]
    vector = [s for s in info["inputs"] if s["shape"]]
    base = {s["name"]: _batched(s, example[s["name"]]) for s in vector}
    scalars = {n: v for n, v in example.items() if n not in base}
    requests = []
    for spec in vector:
        for value in _batch_edges(spec):
            feeds = {n: _rows(v, len(value)) for n, v in base.items()}
            requests.append({**feeds, spec["name"]: value, **scalars})
    for spec in info["inputs"]:
        if not spec["shape"]:
            for value in _edges(spec["dtype"], info["ranges"].get(spec["name"])):
                requests.append({**base, **scalars, spec["name"]: value})
    return requests


def check_signature(loaded, name, info, max_examples):
    checker = Checker(name, loaded.signatures[name], info)
    for i, feeds in enumerate(_edge_requests(info)):
        checker.record(feeds, f"edge request {i}")

    vector = [s for s in info["inputs"] if s["shape"]]
    scalar_specs = [s for s in info["inputs"] if not s["shape"]]

    @st.composite
    def requests(draw):
        kind = draw(st.sampled_from(sorted(KINDS)))
        batch = draw(st.integers(*KINDS[kind]))
        feeds = {s["name"]: _strings(draw, kind, batch, len(s["shape"]))
                 if s["dtype"] == "string" else _numbers(draw, s, kind, batch) for s in vector}
        for s in scalar_specs:
            feeds[s["name"]] = _scalar(draw, s, info["ranges"].get(s["name"]), kind == "many")
        return feeds

    @settings(max_examples=max_examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck), print_blob=False)
    @given(requests())
    def prop(feeds):
        problem = checker.record(feeds, "hypothesis")
        assert problem is None, problem

    try:
        prop()
    except Exception as e:  # noqa: BLE001 - reported, with the shrunk request recorded
        if not checker.failures:
            checker.failures.append({"where": "hypothesis", "problem": repr(e)[:400],
                                     "request": {}})
    return checker


# ------------------------------------------------------------------------ threads


def _plain(out):
    return {k: v.numpy() for k, v in out.items()}


def concurrency(loaded, name, info, threads=8):
    """Requests from 8 threads released at once vs. the same requests one by one."""
    checker = Checker(name, loaded.signatures[name], info)
    example = info["example"]
    vector = {s["name"]: _batched(s, example[s["name"]]) for s in info["inputs"] if s["shape"]}
    # each request its own rows: the example's, rotated and repeated
    requests = [{**example, **{key: _rows(rows, len(rows) * (1 + i % 3), i)
                               for key, rows in vector.items()}} for i in range(threads * 2)]
    sequential = []
    for feeds in requests:
        out, error = checker.call(feeds)
        if error is not None:
            return [f"sequential request {feeds}: {error}"]
        sequential.append(_plain(out))
    results, errors = [None] * len(requests), []
    barrier = threading.Barrier(threads)

    def worker(k):
        barrier.wait()
        for i in range(k, len(requests), threads):
            out, error = checker.call(requests[i])
            if error is not None:
                errors.append(f"request {i}: {error}")
            else:
                results[i] = _plain(out)

    pool = [threading.Thread(target=worker, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    mismatches = list(errors)
    for i, (want, got) in enumerate(zip(sequential, results)):
        if got is None:
            continue
        for key in want:
            a, b = want[key], got[key]
            same = (np.allclose(a, b, rtol=1e-5, atol=1e-6) if a.dtype.kind == "f"
                    else np.array_equal(a, b))
            if a.shape != b.shape or not same:
                mismatches.append(f"request {i}, output {key}: threads differ from sequential")
    return mismatches[:MAX_FAILURES]


RUNNING = {}  # thread id -> (signature, request, start) of the calls in progress


def _result(report):
    return "RESULT " + json.dumps({
        "blocked": blocked,
        "modules": sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED),
        "signatures": report,
    })


def _watchdog(limit):
    """A call running longer than ``limit`` seconds is a hang: report it and stop."""
    while True:
        time.sleep(0.5)
        for name, feeds, start in list(RUNNING.values()):
            if time.perf_counter() - start > limit:
                failure = {"where": "hang", "problem": f"no answer after {limit} s",
                           "request": _describe(feeds)}
                print(_result({name: {"calls": 0, "slowest": limit, "concurrency": [],
                                      "failures": [failure]}}), flush=True)
                os._exit(3)


def main():
    threading.Thread(target=_watchdog, args=(ARGS["call_limit"],), daemon=True).start()
    loaded = tf.saved_model.load(ARGS["dir"])
    report = {}
    for name, info in ARGS["signatures"].items():
        start = time.perf_counter()
        try:
            checker = check_signature(loaded, name, info, ARGS["max_examples"])
            threads = concurrency(loaded, name, info)
            report[name] = {"calls": checker.calls, "slowest": checker.slowest,
                            "failures": checker.failures, "concurrency": threads,
                            "seconds": time.perf_counter() - start}
        except Exception:  # noqa: BLE001 - the parent shows it
            report[name] = {"calls": 0, "slowest": 0.0, "concurrency": [],
                            "failures": [{"where": "child", "problem": traceback.format_exc()[-2000:],
                                          "request": {}}]}
    print(_result(report))


if __name__ == "__main__":
    main()
