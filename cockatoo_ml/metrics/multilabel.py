"""Multi-label classification metrics counted on known labels only (``label_mask`` = 1).

Names follow the seed's telemetry: ``precision``/``recall``/``f1`` are macro averages over labels,
``precision_<label>`` etc. are per label; ``micro_*`` pool every known cell; ``roc_auc``/``pr_auc`` are macro
averages of the per-label areas (a label whose known rows hold only one class has no area and is left out).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit
from sklearn.metrics import average_precision_score, roc_auc_score

from cockatoo_ml.artifacts import DEFAULT_THRESHOLD

log = logging.getLogger(__name__)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return expit(np.asarray(logits, dtype=np.float64))


def f1_from_counts(tp: ArrayLike, fp: ArrayLike, fn: ArrayLike) -> np.ndarray:
    """F1 = 2TP / (2TP + FP + FN), 0 where there is nothing to count (elementwise over arrays)."""
    tp, fp, fn = (np.asarray(x, dtype=np.float64) for x in (tp, fp, fn))
    denom = 2 * tp + fp + fn
    return np.divide(2 * tp, denom, out=np.zeros_like(denom), where=denom > 0)


def _ratio(num: float, denom: float) -> float:
    return float(num / denom) if denom > 0 else 0.0


def threshold_vector(label_names: Sequence[str], thresholds: Mapping[str, float] | float | None) -> np.ndarray:
    if thresholds is None or isinstance(thresholds, (int, float)):
        value = DEFAULT_THRESHOLD if thresholds is None else float(thresholds)
        return np.full(len(label_names), value)
    return np.array([float(thresholds.get(name, DEFAULT_THRESHOLD)) for name in label_names])


def multilabel_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    label_mask: np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float] | float | None = None,
) -> dict[str, float]:
    """Per-label and averaged precision, recall, F1, ROC-AUC and PR-AUC at the given thresholds."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(labels) > 0.5
    known = np.asarray(label_mask) > 0
    cut = threshold_vector(label_names, thresholds)
    predicted = probs >= cut[None, :]

    out: dict[str, float] = {}
    per_label: dict[str, list[float]] = {"precision": [], "recall": [], "f1": [], "roc_auc": [], "pr_auc": []}
    totals = np.zeros(3)  # micro tp, fp, fn
    for j, name in enumerate(label_names):
        rows = known[:, j]
        y, p, yhat = truth[rows, j], probs[rows, j], predicted[rows, j]
        tp, fp, fn = float((yhat & y).sum()), float((yhat & ~y).sum()), float((~yhat & y).sum())
        totals += (tp, fp, fn)
        out[f"support_{name}"] = float(y.sum())
        if not rows.any():
            continue  # no row annotates this label: it has no metrics and stays out of the averages
        values = {
            "precision": _ratio(tp, tp + fp),
            "recall": _ratio(tp, tp + fn),
            "f1": float(f1_from_counts(tp, fp, fn)),
        }
        if 0 < y.sum() < len(y):
            values["roc_auc"] = float(roc_auc_score(y, p))
            values["pr_auc"] = float(average_precision_score(y, p))
        for metric, value in values.items():
            out[f"{metric}_{name}"] = value
            per_label[metric].append(value)

    for metric, scores in per_label.items():
        if scores:
            out[metric] = float(np.mean(scores))
    tp, fp, fn = totals
    out["micro_precision"] = _ratio(tp, tp + fp)
    out["micro_recall"] = _ratio(tp, tp + fn)
    out["micro_f1"] = float(f1_from_counts(tp, fp, fn))
    return out
