"""How ``predict`` reads a user's input: the usual ``PredictInput``s.

``text_lines`` (a string per request row: ``--text`` values, the lines of ``--file``)
and ``whole_files`` (each ``--file`` is one request row, its bytes: a WAV or MIDI
file). A task whose input is neither builds its own ``PredictInput``.
"""

import os

import numpy as np

from pipelines.common import textio
from pipelines.common.task import PredictInput


def shorten(text, width=70):
    """``text`` on one line, at most ``width`` characters."""
    text = text.replace("\n", "\\n")
    return text if len(text) <= width else text[:width - 3] + "..."


def text_lines(input_name="text", endpoint="serving_default"):
    """One string per row: each ``--text`` value, each line of a UTF-8 ``--file``."""

    def read_file(path):
        if not os.path.exists(path):  # an empty file is an empty request, not an error
            raise textio.DataError(path, "no such file")
        if os.path.getsize(path) == 0:
            return []
        return textio.read_text(path).splitlines()

    return PredictInput(
        endpoint=endpoint,
        read_text=str,
        read_file=read_file,
        feed=lambda items: {input_name: np.array(items, dtype=object).reshape(len(items))},
        show=shorten,
    )


def whole_files(input_name, endpoint="serving_default", suffixes=()):
    """One row per ``--file`` (its bytes), or per file of a folder given as ``--file``
    (those ending in ``suffixes``, sorted, symbolic links followed); ``--text`` takes
    a path too."""

    def read_one(path):
        if suffixes and not path.lower().endswith(tuple(suffixes)):
            raise textio.DataError(path, f"expected a file ending in {', '.join(suffixes)}")
        with open(path, "rb") as f:
            return (path, f.read())

    def read_file(path):
        if os.path.isdir(path):
            found = sorted(os.path.join(root, name)
                           for root, _, names in os.walk(path, followlinks=True)
                           for name in names
                           if not suffixes or name.lower().endswith(tuple(suffixes)))
            if not found:
                raise textio.DataError(path, "the folder holds no files ending in "
                                       f"{', '.join(suffixes) or 'anything'}")
            return [read_one(p) for p in found]
        if not os.path.isfile(path):
            raise textio.DataError(path, "no such file")
        return [read_one(path)]

    def read_text(path):
        if os.path.isdir(path):
            raise textio.DataError(path, "--text takes one file; give a folder with --file")
        return read_file(path)[0]

    return PredictInput(
        endpoint=endpoint,
        read_text=read_text,
        read_file=read_file,
        feed=lambda items: {input_name: np.array([data for _, data in items], dtype=object)
                            .reshape(len(items))},
        show=lambda item: shorten(os.path.basename(item[0])),
        stdin=False,
    )
