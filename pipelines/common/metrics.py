"""Classification metrics from label indices, and the confusion-matrix picture.

Shared by many-to-one tasks (one label per sequence) and many-to-many tasks (one
label per step: pass the unmasked steps flattened).
"""

import os

import numpy as np

from pipelines.common.task import ReportView


def classification_report(y_true, y_pred, labels):
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix.

    Args:
        y_true, y_pred: int arrays of shape (n,), indices into ``labels``.
        labels: the class names, list of K strings.
    Returns a JSON-able dict; ``confusion[i][j]`` counts true class i predicted as j.
    """
    y_true = np.asarray(y_true, dtype=np.int64).reshape(-1)
    y_pred = np.asarray(y_pred, dtype=np.int64).reshape(-1)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"Expected equal shapes. Received: {y_true.shape} and {y_pred.shape}")
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_true, y_pred), 1)
    tp = np.diag(confusion).astype(float)
    predicted = confusion.sum(axis=0)
    actual = confusion.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros(k), where=predicted > 0)
    recall = np.divide(tp, actual, out=np.zeros(k), where=actual > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros(k), where=denom > 0)
    n = int(y_true.size)
    return {
        "examples": n,
        "accuracy": float(tp.sum() / n) if n else 0.0,
        "macro_f1": float(f1[actual > 0].mean()) if (actual > 0).any() else 0.0,
        "per_class": {
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(actual[i]),
            }
            for i, label in enumerate(labels)
        },
        "labels": list(labels),
        "confusion": confusion.tolist(),
    }


def format_report(report):
    """The report as a text table (what the CLI prints)."""
    width = max(8, *(len(label) for label in report["labels"]))
    lines = [
        f"accuracy {report['accuracy']:.4f}   macro F1 {report['macro_f1']:.4f}   "
        f"({report['examples']} examples)",
        f"{'class':<{width}}  precision  recall      f1  support",
    ]
    for label, m in report["per_class"].items():
        lines.append(
            f"{label:<{width}}  {m['precision']:9.4f}  {m['recall']:6.4f}  {m['f1']:6.4f}"
            f"  {m['support']:7d}"
        )
    return "\n".join(lines)


def plot_confusion(report, path, title="confusion matrix"):
    """Writes the confusion matrix (rows: true, columns: predicted) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confusion = np.asarray(report["confusion"])
    labels = report["labels"]
    size = 1.5 + 0.6 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(confusion, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = confusion.max() / 2 if confusion.size else 0
    for i in range(confusion.shape[0]):
        for j in range(confusion.shape[1]):
            ax.text(j, i, str(confusion[i, j]), ha="center", va="center",
                    color="white" if confusion[i, j] > threshold else "black")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def format_scalars(report):
    """The report's numbers on one line: ``name value`` pairs."""
    return "  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in report.items()
                     if isinstance(v, (int, float)) and not isinstance(v, bool))


def _draw_confusion(report, out_dir, title):
    return [plot_confusion(report, os.path.join(out_dir, "confusion.png"), title)]


SCALARS = ReportView(format=format_scalars)
"""A report of plain numbers (a loss, perplexity): printed on one line, nothing drawn."""

CLASSIFICATION = ReportView(format=format_report, draw=_draw_confusion)
"""A ``classification_report``: a table of classes, and confusion.png."""
