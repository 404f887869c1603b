"""The process behind ``cluster.watchdog``: ends a process stuck forming its cluster.

    python -m pipelines.common.watcher PID SECONDS MESSAGE [NAME=HOST:PORT ...]

Waits up to SECONDS for its standard input to close (the watched block ended in
time: it exits quietly with 0). Otherwise it writes one line to standard error,
``error: MESSAGE: no answer from NAME at HOST:PORT, ...`` naming the peers whose port
does not accept a connection now (or saying that they answer but the cluster did not
form), and sends SIGKILL to PID (exit code 1). It runs apart because TensorFlow's
collective setup blocks without releasing the GIL, so no thread of the stuck process
can step in, and the strategy catches SIGTERM.
"""

import os
import signal
import sys
import threading

from pipelines.common.cluster import answers


def explain(peers):
    """The reason the cluster did not form, from [(name, address)] of its peers."""
    quiet = [f"{name} at {address}" for name, address in peers if not answers(address)]
    if quiet:
        return f"no answer from {', '.join(quiet)}"
    return ("the peers answer but the cluster did not form (check that every task has the "
            "same TF_CONFIG cluster and its own task)")


def main(argv):
    if len(argv) < 3:
        sys.stderr.write(f"usage: python -m pipelines.common.watcher PID SECONDS MESSAGE "
                         f"[NAME=HOST:PORT ...]. Received: {argv!r}\n")
        return 2
    pid, seconds, message = int(argv[0]), float(argv[1]), argv[2]
    peers = [tuple(p.split("=", 1)) for p in argv[3:]]
    done = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    if done.wait(seconds):
        return 0
    sys.stderr.write(f"error: {message}: {explain(peers)}.\n")
    sys.stderr.flush()
    os.kill(pid, signal.SIGKILL)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
