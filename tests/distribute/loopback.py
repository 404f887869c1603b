"""Loopback clusters for the tests: free ports, TF_CONFIG, worker processes that are
always killed, and waiting with a deadline."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def free_port():
    """A port nobody listens on now (bound to 0, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tf_config(ports, index):
    return json.dumps({"cluster": {"worker": [f"127.0.0.1:{p}" for p in ports]},
                       "task": {"type": "worker", "index": index}})


def env(**extra):
    out = {k: v for k, v in os.environ.items()
           if k not in ("TF_CONFIG",) and not k.startswith("KERASTUNER_")}
    out.update(PYTHONPATH=ROOT + os.pathsep + out.get("PYTHONPATH", ""),
               TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
    out.update({k: str(v) for k, v in extra.items()})
    return out


def start(args, log, **extra_env):
    """``python -m pipelines.<args>`` with its output in the file ``log``."""
    out = open(log, "w")
    return subprocess.Popen([sys.executable, "-m", *args], stdout=out, stderr=subprocess.STDOUT,
                            env=env(**extra_env), cwd=ROOT)


def kill(procs):
    """SIGKILL (the strategy catches SIGTERM) and reap every process still running."""
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGKILL)
    for p in procs:
        p.wait(timeout=30)


def wait_all(procs, timeout):
    """Exit codes of ``procs``; raises AssertionError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    for p in procs:
        remaining = deadline - time.monotonic()
        try:
            p.wait(timeout=max(0.1, remaining))
        except subprocess.TimeoutExpired:
            raise AssertionError(f"process {p.args} still running after {timeout} s") from None
    return [p.returncode for p in procs]


def wait_until(predicate, timeout, poll=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(poll)
    return False


def read(path):
    with open(path, encoding="utf-8", errors="replace") as f:
        return f.read()
