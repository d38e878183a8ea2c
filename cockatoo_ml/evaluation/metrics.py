"""Metrics of one system's scores per label, overall and per source x label, on known labels only.

Precision, recall, F1, ROC-AUC and PR-AUC (average precision) come from the training stage's
``multilabel_metrics``; this module adds what an evaluation needs beyond it: row and positive counts, the best
F1 over the threshold grid (the one ``--tune-thresholds`` would pick) and the expected calibration error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from cockatoo_ml.metrics.multilabel import f1_from_counts, multilabel_metrics, threshold_vector
from cockatoo_ml.metrics.thresholds import best_threshold, f1_curve, threshold_grid
from cockatoo_ml.registry import evaluation as defaults
from cockatoo_ml.registry.labels import UMBRELLA_LABEL

ALL_SOURCES = "all"  # the group of every row, beside one group per source


@dataclass(frozen=True)
class LabelMetrics:
    """One label on one group of rows (known rows only). Areas are None when the rows hold one class only."""

    rows: int
    positives: int
    threshold: float
    precision: float | None = None
    recall: float | None = None
    f1: float | None = None
    pr_auc: float | None = None
    roc_auc: float | None = None
    best_f1: float | None = None
    best_threshold: float | None = None
    ece: float | None = None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


# group ("all" or a source name) -> label -> metrics
GroupedMetrics = dict[str, dict[str, LabelMetrics]]


def expected_calibration_error(probs: np.ndarray, truth: np.ndarray, bins: int = defaults.ECE_BINS) -> float:
    """ECE with ``bins`` equal-width bins over [0, 1]: the row-weighted mean of |mean score - positive rate|."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if probs.size == 0:
        return 0.0
    index = np.minimum((probs * bins).astype(np.int64), bins - 1)  # a score of 1.0 belongs to the last bin
    count = np.bincount(index, minlength=bins)
    gap = np.abs(np.bincount(index, weights=probs, minlength=bins) - np.bincount(index, weights=truth, minlength=bins))
    return float(gap.sum() / count.sum())


def reliability_bins(probs: np.ndarray, truth: np.ndarray, bins: int = defaults.ECE_BINS) -> tuple[np.ndarray, ...]:
    """Per bin: mean score, positive rate and row count (NaN for empty bins), for the reliability diagram."""
    probs = np.asarray(probs, dtype=np.float64)
    index = np.minimum((probs * bins).astype(np.int64), bins - 1)
    count = np.bincount(index, minlength=bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_score = np.bincount(index, weights=probs, minlength=bins) / count
        positive_rate = np.bincount(index, weights=np.asarray(truth, dtype=np.float64), minlength=bins) / count
    return mean_score, positive_rate, count


def label_metrics(probs: np.ndarray, truth: np.ndarray, threshold: float, name: str = "label") -> LabelMetrics:
    """Metrics of one label's scores against boolean ``truth`` (its known rows only)."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(truth, dtype=bool)
    if probs.size == 0:
        return LabelMetrics(rows=0, positives=0, threshold=threshold)
    at = multilabel_metrics(probs[:, None], truth[:, None], np.ones((len(probs), 1)), [name], {name: threshold})
    grid = threshold_grid()
    curve = f1_curve(probs, truth, grid)
    best = best_threshold(curve, grid)
    return LabelMetrics(
        rows=len(probs),
        positives=int(truth.sum()),
        threshold=float(threshold),
        precision=at[f"precision_{name}"],
        recall=at[f"recall_{name}"],
        f1=at[f"f1_{name}"],
        pr_auc=at.get(f"pr_auc_{name}"),
        roc_auc=at.get(f"roc_auc_{name}"),
        best_f1=float(curve[np.flatnonzero(grid == best)[0]]) if truth.any() else None,
        best_threshold=best if truth.any() else None,
        ece=expected_calibration_error(probs, truth),
    )


def grouped_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    label_mask: np.ndarray,
    sources: Sequence[str] | np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float],
) -> GroupedMetrics:
    """Per label over all rows (``"all"``) and per source x label, counting only rows where the label is known.
    A source that knows nothing of a label has no entry for it."""
    probs = np.asarray(probs, dtype=np.float64)
    truth = np.asarray(labels) > 0.5
    known = np.asarray(label_mask) > 0
    source_of = np.asarray(sources, dtype=object)
    groups: dict[str, np.ndarray] = {ALL_SOURCES: np.ones(len(probs), dtype=bool)}
    groups.update({str(name): source_of == name for name in sorted(set(source_of.tolist()))})
    result: GroupedMetrics = {}
    for group, in_group in groups.items():
        per_label: dict[str, LabelMetrics] = {}
        for j, name in enumerate(label_names):
            rows = in_group & known[:, j]
            if rows.any() or group == ALL_SOURCES:
                per_label[name] = label_metrics(probs[rows, j], truth[rows, j], thresholds[name], name)
        result[group] = per_label
    return result


def metrics_to_dict(metrics: GroupedMetrics) -> dict[str, dict[str, dict[str, float | int | None]]]:
    return {group: {label: m.to_dict() for label, m in per_label.items()} for group, per_label in metrics.items()}


@dataclass(frozen=True)
class FlaggedMetrics:
    """The ``flagged`` decision (any label at its threshold) on one group's rows where it is known."""

    rows: int
    positives: int  # rows that should be flagged
    flagged: int  # rows the system flagged
    precision: float | None
    recall: float | None
    f1: float | None

    def to_dict(self) -> dict[str, float | int | None]:
        return asdict(self)


def flagged_truth(
    labels: np.ndarray, label_mask: np.ndarray, label_names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Per row: whether it should be flagged, and whether that is known. It should where any known label is
    positive; it should not where the umbrella label (``unsafe``) is known negative, or, in a label set without
    it, where every label is known negative. Elsewhere nobody knows (a tweet that is not hate)."""
    known: np.ndarray = np.asarray(label_mask) > 0
    positive: np.ndarray = known & (np.asarray(labels) > 0.5)
    truth = np.asarray(positive.any(axis=1))
    clean: np.ndarray
    if UMBRELLA_LABEL in label_names:
        column = list(label_names).index(UMBRELLA_LABEL)
        clean = known[:, column] & ~positive[:, column]
    else:
        clean = known.all(axis=1) & ~truth
    return truth, truth | clean


def flagged_decisions(probs: np.ndarray, label_names: Sequence[str], thresholds: Mapping[str, float]) -> np.ndarray:
    """Per row: does any label reach its threshold (the server's ``flagged``)."""
    reached: np.ndarray = np.asarray(probs, dtype=np.float64) >= threshold_vector(label_names, thresholds)
    return np.asarray(reached.any(axis=1))


def flagged_metrics(
    probs: np.ndarray,
    labels: np.ndarray,
    label_mask: np.ndarray,
    sources: Sequence[str] | np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float],
) -> dict[str, FlaggedMetrics]:
    """Precision, recall and F1 of ``flagged`` over all rows (``"all"``) and per source, on rows where the truth
    is known; a source where it never is has no entry."""
    truth, known = flagged_truth(labels, label_mask, label_names)
    decided = flagged_decisions(probs, label_names, thresholds)
    source_of = np.asarray(sources, dtype=object)
    groups: dict[str, np.ndarray] = {ALL_SOURCES: np.ones(len(truth), dtype=bool)}
    groups.update({str(name): source_of == name for name in sorted(set(source_of.tolist()))})
    result: dict[str, FlaggedMetrics] = {}
    for group, in_group in groups.items():
        rows = in_group & known
        if not rows.any() and group != ALL_SOURCES:
            continue
        tp = int((decided & truth & rows).sum())
        fp = int((decided & ~truth & rows).sum())
        fn = int((~decided & truth & rows).sum())
        positives = tp + fn
        result[group] = FlaggedMetrics(
            rows=int(rows.sum()),
            positives=positives,
            flagged=tp + fp,
            precision=tp / (tp + fp) if tp + fp else None,
            recall=tp / positives if positives else None,
            f1=float(f1_from_counts(tp, fp, fn)) if positives else None,
        )
    return result
