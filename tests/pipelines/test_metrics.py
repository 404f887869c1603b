"""The classification report against scikit-learn, and the report views."""

import numpy as np
import pytest
from sklearn import metrics as sk

from pipelines.common import metrics


@pytest.mark.parametrize("seed", range(5))
def test_classification_report_matches_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    labels = ["negative", "neutral", "positive", "never"]
    y_true = rng.integers(0, 3, size=200)  # class 3 never occurs
    y_pred = np.where(rng.random(200) < 0.6, y_true, rng.integers(0, 4, size=200))
    report = metrics.classification_report(y_true, y_pred, labels)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y_true, y_pred, labels=range(4), zero_division=0)
    assert report["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    assert report["confusion"] == sk.confusion_matrix(y_true, y_pred, labels=range(4)).tolist()
    for i, label in enumerate(labels):
        row = report["per_class"][label]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]
    # Macro F1 over the classes that occur in y_true (sklearn: labels=those classes).
    assert report["macro_f1"] == pytest.approx(
        sk.f1_score(y_true, y_pred, labels=range(3), average="macro", zero_division=0))


def test_report_views_print_and_draw(tmp_path):
    report = metrics.classification_report([0, 1, 1], [0, 1, 0], ["a", "b"])
    table = metrics.CLASSIFICATION.format(report)
    assert table.splitlines()[0].startswith("accuracy 0.6667   macro F1 0.6667")
    (path,) = metrics.CLASSIFICATION.draw(report, str(tmp_path), "title")
    assert path == str(tmp_path / "confusion.png") and (tmp_path / "confusion.png").stat().st_size
    assert metrics.SCALARS.format({"loss": 1.5, "examples": 3, "name": "x"}) == "loss 1.5000  examples 3"
    assert metrics.SCALARS.draw({"loss": 1.5}, str(tmp_path), "t") == []
