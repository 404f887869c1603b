"""``tune --distributed``: keras-tuner's own distributed mode, with bounded failures.

keras-tuner runs one search over several processes when each has three environment
variables: ``KERASTUNER_TUNER_ID`` ("chief" for the process holding the oracle,
"tuner0", "tuner1"... for the workers), ``KERASTUNER_ORACLE_IP`` and
``KERASTUNER_ORACLE_PORT`` (where the chief's gRPC oracle listens). The chief hands
out trials and records every result; each worker asks for a trial, trains it and
reports back, until the oracle has ``max_trials``. All processes use the same
``--workdir``, on a filesystem they share (trial checkpoints are written there).
A restarted worker with the same tuner id gets its unfinished trial back.

This module only checks the variables and bounds the waits keras-tuner leaves open
(a worker waits up to an hour for an absent chief): ``prepare`` refuses a port in
use on the chief and a chief that does not answer within ``--connect-timeout``
seconds on a worker; ``watch`` ends a worker whose chief stops answering for that
long.
"""

import contextlib
import dataclasses
import os
import sys
import threading
import time

from pipelines.common.cluster import DistributeError, answers, port_in_use, wait_for

VARIABLES = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@dataclasses.dataclass(frozen=True)
class Role:
    tuner_id: str
    address: str

    @property
    def is_chief(self):
        return "chief" in self.tuner_id  # keras-tuner's own rule


def add_arguments(parser):
    """The ``tune`` flags: --distributed, --connect-timeout."""
    parser.add_argument("--distributed", action="store_true",
                        help="keras-tuner's distributed mode (KERASTUNER_TUNER_ID, "
                        "KERASTUNER_ORACLE_IP, KERASTUNER_ORACLE_PORT)")
    parser.add_argument("--connect-timeout", type=float, default=120.0, metavar="S",
                        help="--distributed: seconds a worker waits for the chief "
                        "(default %(default)s)")


def is_worker(environ=None):
    """True in keras-tuner's distributed mode on a worker (the chief records results)."""
    environ = os.environ if environ is None else environ
    return "KERASTUNER_ORACLE_IP" in environ and "chief" not in environ.get(
        "KERASTUNER_TUNER_ID", "chief")


def read_role(environ=None):
    """The checked variables as a Role. Raises DistributeError naming the bad one."""
    environ = os.environ if environ is None else environ
    missing = [v for v in VARIABLES if not environ.get(v, "").strip()]
    if missing:
        raise DistributeError(
            f"tune --distributed needs {', '.join(VARIABLES)}; missing: {', '.join(missing)}. "
            "Example: KERASTUNER_TUNER_ID=chief (or tuner0, tuner1...) "
            "KERASTUNER_ORACLE_IP=10.0.0.1 KERASTUNER_ORACLE_PORT=8000.")
    port = environ["KERASTUNER_ORACLE_PORT"].strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise DistributeError(f"KERASTUNER_ORACLE_PORT must be a port number. Received: {port!r}")
    ip = environ["KERASTUNER_ORACLE_IP"].strip()
    return Role(environ["KERASTUNER_TUNER_ID"].strip(), f"{ip}:{int(port)}")


def prepare(args, environ=None):
    """The Role for ``tune`` (None without --distributed), after the bounded checks."""
    environ = os.environ if environ is None else environ
    if not getattr(args, "distributed", False):
        if "KERASTUNER_ORACLE_IP" in environ:
            raise DistributeError("KERASTUNER_ORACLE_IP is set: pass --distributed to join "
                                  "the distributed search, or unset it.")
        return None
    role = read_role(environ)
    port = int(role.address.rpartition(":")[2])
    if role.is_chief:
        if port_in_use(port):
            raise DistributeError(f"chief: port {port} (KERASTUNER_ORACLE_PORT) is in use on "
                                  "this machine.")
    elif not wait_for(role.address, args.connect_timeout):
        raise DistributeError(
            f"{role.tuner_id}: the chief oracle at {role.address} did not answer within "
            f"{args.connect_timeout:.0f} s. Start the chief (KERASTUNER_TUNER_ID=chief) with "
            "the same KERASTUNER_ORACLE_IP/PORT, check the address, or raise --connect-timeout.")
    return role


@contextlib.contextmanager
def watch(role, timeout=120.0, poll=2.0):
    """On a worker: ends the process (exit code 3) if the chief stops answering for
    ``timeout`` seconds during the search; elsewhere does nothing."""
    if role is None or role.is_chief:
        yield
        return
    done = threading.Event()

    def probe():
        silent_since = None
        while not done.wait(poll):
            if answers(role.address):
                silent_since = None
            elif silent_since is None:
                silent_since = time.monotonic()
            elif time.monotonic() - silent_since > timeout:
                sys.stderr.write(f"error: {role.tuner_id}: the chief oracle at {role.address} "
                                 f"stopped answering for {timeout:.0f} s; restart it (its "
                                 "state is in the work directory) and this worker.\n")
                sys.stderr.flush()
                os._exit(3)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
