"""One small NER run (train, evaluate, export) per test session."""

import os

import pytest

from pipelines.common.cli import main


@pytest.fixture(scope="session")
def ner_run(tmp_path_factory):
    """``python -m pipelines.ner --preset small`` once; returns workdir, export_dir,
    version_dir."""
    from pipelines.ner import TASK

    root = tmp_path_factory.mktemp("ner_run")
    workdir, export_dir = str(root / "work"), str(root / "saved_models")
    assert main(TASK, ["--preset", "small", "--workdir", workdir, "--export-dir", export_dir,
                       "-q"]) == 0
    return {"workdir": workdir, "export_dir": export_dir,
            "version_dir": os.path.join(export_dir, "ner", "1")}
