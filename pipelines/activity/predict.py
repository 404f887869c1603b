"""``predict`` for activity. Sensor models: ``--file`` a recording (.csv with a header
line, or .npy) or a folder of them (its labels.csv is not a recording), ``--text`` a file or an embedded recording's name
(``watch_dataset.npy[17]``); the rows are padded to the longest and sent with their
lengths to the ``recordings`` signature. Video models: ``--file`` a GIF or a folder of
GIFs, sent as bytes to ``serving_default``."""

import os
import re

import numpy as np

from pipelines.common import inputs, textio
from pipelines.common.task import PredictInput

EMBEDDED = re.compile(r"^watch_dataset\.npy\[(\d+)\]$")
SENSOR_FILES = (".csv", ".npy")


def read_sensor(value, nan="refuse"):
    """(name, (T, C) frames) of an embedded recording's name or a recording file."""
    from pipelines.activity import recordings

    found = EMBEDDED.match(value.strip())
    if found:
        embedded = recordings.watch_recordings()
        index = int(found.group(1))
        if index >= len(embedded):
            raise textio.DataError(value, f"the embedded data has {len(embedded)} "
                                   f"recordings (0..{len(embedded) - 1})")
        return value, embedded[index].frames
    return value, recordings.read_sensor_file(value, nan)


def sensor_files(path, nan="refuse"):
    if not os.path.isdir(path):
        return [read_sensor(path, nan)]
    found = sorted(os.path.join(root, name) for root, _, names in os.walk(path, followlinks=True)
                   for name in names
                   if name.lower().endswith(SENSOR_FILES) and name.lower() != "labels.csv")
    if not found:
        raise textio.DataError(path, "the folder holds no .csv or .npy recordings")
    return [read_sensor(p, nan) for p in found]


def feed_sensor(items):
    """Rows padded with zeros to the longest, with their lengths."""
    longest = max((len(frames) for _, frames in items), default=0)
    channels = items[0][1].shape[1] if items else 0
    batch = np.zeros((len(items), longest, channels), np.float32)
    for i, (_, frames) in enumerate(items):
        batch[i, :len(frames)] = frames
    return {"frames": batch, "length": np.array([len(f) for _, f in items], np.int32)}


def bind(config, meta):
    """The reader of one trained model (sensor or video)."""
    if meta.get("kind") == "video":
        return inputs.whole_files("video", suffixes=(".gif",))
    return PredictInput(endpoint="recordings",
                        read_text=lambda value: read_sensor(value, config.nan),
                        read_file=lambda path: sensor_files(path, config.nan),
                        feed=feed_sensor, stdin=False,
                        show=lambda item: inputs.shorten(os.path.basename(item[0])))

