"""What every quality benchmark ends with: the machine's state beside the figures, one
JSON line on stdout and, with ``--out``, the same as a file."""

import json
import os
import platform


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def emit(result, out=None):
    """Adds the load average and the CPU to ``result``, prints it as one JSON line and
    writes it (indented) to ``out`` when given; returns 0 (the exit code)."""
    result = {**result, "load_average": os.getloadavg(), "cpu": cpu_name()}
    print(json.dumps(result), flush=True)
    if out:
        with open(out, "w") as f:
            json.dump(result, f, indent=2)
    return 0
