"""What every quality benchmark ends with: the machine's state beside the figures, one
JSON line on stdout and, with ``--out``, the same as a file."""

import json
import os
import platform
import time


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


def fit_best(model, datasets, epochs, patience, minutes=None, monitor="val_loss"):
    """Trains ``model`` on ``datasets`` epoch by epoch for at most ``epochs`` (stopping
    after ``patience`` epochs without a better ``monitor``, lowest for a loss, else
    highest, or once ``minutes`` of training have passed) and keeps the best epoch's
    weights; (history, seconds of training)."""
    sign = 1.0 if monitor.endswith("loss") else -1.0
    best, waited, history, trained = None, 0, [], 0.0
    for epoch in range(epochs):
        start = time.time()
        fit = model.fit(datasets.train, validation_data=datasets.valid, epochs=1, verbose=0)
        trained += time.time() - start
        loss = sign * fit.history[monitor][-1]
        history.append({"epoch": epoch + 1, monitor: round(sign * loss, 4),
                        "minutes": round(trained / 60, 2)})
        if best is None or loss < best[0]:
            best, waited = (loss, model.get_weights()), 0
        else:
            waited += 1
        if waited >= patience or (minutes and trained > minutes * 60):
            break
    model.set_weights(best[1])
    return history, trained
