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


def unweighted_average_recall(predictions, references) -> np.ndarray | float:
    """UA / UAR: the mean over classes present in ``references`` of each class's recall (Schuller et al. 2009).

    The one UA of ser_hf: metrics, per-speaker / per-gender breakdowns and the bootstrap all call it.

    Args:
        predictions / references: class indices (or labels) of shape ``(num_utterances,)``, or
            ``(num_rows, num_utterances)`` to score many rows at once (bootstrap resamples); classes absent from a
            row's references are left out of that row's mean.

    Returns:
        A float for 1-D inputs, else ``(num_rows,)`` floats.
    """
    pred, ref = np.asarray(predictions), np.asarray(references)
    correct = pred == ref
    recalls = []
    for c in np.unique(ref):
        m = ref == c
        n = m.sum(-1)
        recalls.append(np.where(n > 0, (correct & m).sum(-1) / np.maximum(n, 1), np.nan))
    ua = np.nanmean(np.stack(recalls, -1), axis=-1)
    return float(ua) if ua.ndim == 0 else ua


def mean_std(values) -> dict:
    """``{"mean", "std"}`` of per-fold (or per-seed) scores; ``std`` is the sample standard deviation (ddof=1),
    ``None`` when there is a single value (a spread of one run is not zero, it is unknown)."""
    vals = np.asarray(list(values), dtype=float)
    if vals.size == 0:
        raise ValueError("mean_std needs at least one value")
    return {"mean": float(vals.mean()), "std": float(vals.std(ddof=1)) if vals.size > 1 else None}


def format_mean_std(m: dict, digits: int = 3, scale: float = 1.0) -> str:
    """``"0.612 +- 0.034"`` (or ``"0.612 (1 run)"`` when ``std`` is ``None``) for reports and cards."""
    mean = f"{scale * m['mean']:.{digits}f}"
    return f"{mean} +- {scale * m['std']:.{digits}f}" if m.get("std") is not None else f"{mean} (1 run)"


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
            "ua": unweighted_average_recall(y_pred, y_true),
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


def test_side_scores(pred, ref, side, num_labels: int) -> dict:
    """:func:`ser_hf.metrics.compute_ser_metrics` of a test side; when it spans several corpora (a ``corpus``
    column), also ``per_corpus`` and ``per_language`` (:func:`per_group_scores`; ``und``, ISO 639 undetermined,
    for a user's folder, which has no language).

    Args:
        pred / ref: class indices, shape ``(num_clips,)``.
        side: the test side's rows, in the order of ``pred``, with their ``corpus`` / ``language`` columns if any.
    """
    test = compute_ser_metrics(pred, ref, num_labels)
    if "corpus" in side.column_names:
        test["per_corpus"] = per_group_scores(pred, ref, side["corpus"], num_labels)
        if "language" in side.column_names:
            test["per_language"] = per_group_scores(pred, ref, [x or "und" for x in side["language"]], num_labels)
    return test


def per_group_scores(pred, ref, groups: list[str], num_labels: int) -> dict[str, dict]:
    """WA / UA / macro-F1 and clip count of each group of clips (the corpus of each clip, or its language) of a
    side spanning several corpora, over the labels that group has (a corpus without, say, ``calm`` is not scored
    on it; a wrong ``calm`` answer still counts as wrong). Two corpora of one language (RAVDESS and EmoV-DB, EYASE
    and ANAD) make one language group.

    Args:
        pred / ref: class indices, shape ``(num_clips,)``.
        groups: the group of every clip (a corpus name or a language code), shape ``(num_clips,)``.
    """
    out = {}
    groups = np.asarray(groups)
    for name in sorted(set(groups.tolist())):
        rows = groups == name
        scores = compute_ser_metrics(pred[rows], ref[rows], num_labels)  # UA and macro-F1 over classes present
        out[name] = {k: scores[k] for k in ("wa", "ua", "macro_f1")} | {"clips": int(rows.sum())}
    return out
