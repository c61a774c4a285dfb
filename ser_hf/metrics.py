"""SER metrics through ``evaluate``: WA, UA (UAR), macro-F1, per-class recall and the confusion matrix.

Definitions (Schuller et al. 2009, "The INTERSPEECH 2009 Emotion Challenge"): WA (weighted accuracy) is
plain accuracy; UA/UAR (unweighted average recall) is the mean of the per-class recalls, each class counted
once whatever its size; macro-F1 is the unweighted mean of per-class F1. UA and macro-F1 average over the
classes present in the references, so a test set without some class is not penalised for it.

The metric is an ``evaluate.Metric`` defined here (``evaluate.load("accuracy")`` needs the Hub) and computed
with scikit-learn.
"""

from __future__ import annotations

import datasets
import evaluate
import numpy as np
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support


class SERMetrics(evaluate.Metric):
    """``compute(predictions, references, num_labels=None)`` -> dict.

    Args:
        predictions / references: class indices, shape ``(num_utterances,)``.
        num_labels: size of the label set (rows/columns of the confusion matrix); default: largest index + 1.

    Returns:
        ``wa``, ``ua``, ``macro_f1`` (floats in [0, 1]), ``per_class_recall`` / ``per_class_precision`` /
        ``per_class_f1`` (lists of length ``num_labels``, ``None`` for classes absent from the references),
        ``support`` and ``confusion_matrix`` (``num_labels x num_labels`` counts, rows = reference).
    """

    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="Schuller, Steidl, Batliner. The INTERSPEECH 2009 Emotion Challenge. Interspeech 2009.",
            inputs_description=self.__doc__,
            features=datasets.Features({"predictions": datasets.Value("int64"), "references": datasets.Value("int64")}),
        )

    def _compute(self, predictions, references, num_labels: int | None = None):
        y_pred, y_true = np.asarray(predictions), np.asarray(references)
        if num_labels is None:
            num_labels = int(max(y_pred.max(initial=0), y_true.max(initial=0))) + 1
        labels = list(range(num_labels))
        present = sorted(set(y_true.tolist()))
        p, r, f, support = precision_recall_fscore_support(y_true, y_pred, labels=labels, zero_division=0.0)
        absent = [i for i in labels if i not in present]
        return {
            "wa": float(accuracy_score(y_true, y_pred)),
            "ua": float(np.mean(r[present])),
            "macro_f1": float(f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0.0)),
            "per_class_recall": [None if i in absent else float(r[i]) for i in labels],
            "per_class_precision": [float(v) for v in p],
            "per_class_f1": [None if i in absent else float(f[i]) for i in labels],
            "support": [int(v) for v in support],
            "confusion_matrix": confusion_matrix(y_true, y_pred, labels=labels).tolist(),
        }


def compute_ser_metrics(predictions, references, num_labels: int | None = None) -> dict:
    """One-shot :class:`SERMetrics` computation (see its docstring for the returned keys)."""
    return SERMetrics().compute(predictions=predictions, references=references, num_labels=num_labels)


def trainer_compute_metrics(num_labels: int):
    """A ``compute_metrics`` callable for ``transformers.Trainer``: logits -> ``{"wa", "ua", "macro_f1"}``."""

    def compute(eval_pred):
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        logits = logits[0] if isinstance(logits, tuple) else logits
        m = compute_ser_metrics(np.argmax(logits, axis=-1), labels, num_labels)
        return {k: m[k] for k in ("wa", "ua", "macro_f1")}

    return compute


def plot_confusion_matrix(cm, label_names: list[str], path, title: str = "") -> None:
    """Save a row-normalised confusion matrix (rows = reference, columns = prediction) as a PNG.

    Args:
        cm: counts, shape ``(num_labels, num_labels)``.
        label_names: class names, length ``num_labels``.
        path: output PNG path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cm = np.asarray(cm, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    n = len(label_names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.75 * n, 0.8 + 0.7 * n))
    im = ax.imshow(norm, vmin=0, vmax=1, cmap="Blues")
    ax.set_xticks(range(n), label_names, rotation=45, ha="right")
    ax.set_yticks(range(n), label_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("reference")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    if title:
        ax.set_title(title)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
