"""The small NER run (train, evaluate, export), shared with the contract test."""

import pytest


@pytest.fixture(scope="session")
def ner_run(small_run):
    """``python -m pipelines.ner --preset small`` once; returns workdir, export_dir,
    version_dir."""
    return small_run("ner")
