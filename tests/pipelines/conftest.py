"""Shared fixtures: the small sentiment run (tests/conftest.py trains it once)."""

import pytest

from pipelines.common.cli import main


def run_cli(task, *argv):
    """Runs the task CLI in-process; returns the exit code."""
    return main(task, list(argv))


@pytest.fixture(scope="session")
def sentiment_run(small_run):
    """The small sentiment preset trained, evaluated and exported once (shared with the
    contract test). Returns a dict with ``workdir``, ``export_dir`` and ``version_dir``."""
    return small_run("sentiment")
