"""The user cache, where tasks keep what they derive once from their embedded data
(parsed chorales, synthetic speech, the labelled genome, the watch recordings)."""

import os


def user_cache_dir(task):
    """``$SEQZOO_CACHE/<task>``, else ``$XDG_CACHE_HOME/seqzoo/<task>``, else
    ``~/.cache/seqzoo/<task>``."""
    root = os.environ.get("SEQZOO_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "seqzoo")
    return os.path.join(root, task)
