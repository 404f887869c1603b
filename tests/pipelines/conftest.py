"""Shared fixtures: one small sentiment run trained once per test session."""

import os

import pytest

from pipelines.common.cli import main


def run_cli(task, *argv):
    """Runs the task CLI in-process; returns the exit code."""
    return main(task, list(argv))


@pytest.fixture(scope="session")
def sentiment_run(tmp_path_factory):
    """Trains, evaluates and exports the small sentiment preset once.

    Returns a dict with ``workdir``, ``export_dir`` and the export ``version_dir``.
    """
    from pipelines.sentiment import TASK

    root = tmp_path_factory.mktemp("sentiment_run")
    workdir, export_dir = str(root / "work"), str(root / "saved_models")
    code = run_cli(TASK, "--preset", "small", "--workdir", workdir, "--export-dir", export_dir, "-q")
    assert code == 0
    return {
        "workdir": workdir,
        "export_dir": export_dir,
        "version_dir": os.path.join(export_dir, "sentiment", "1"),
    }
