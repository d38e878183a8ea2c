"""Per-label decision thresholds that maximise F1 on the validation split (known labels only)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from cockatoo_ml.artifacts import DEFAULT_THRESHOLD
from cockatoo_ml.metrics.multilabel import f1_from_counts
from cockatoo_ml.registry import training as defaults


def threshold_grid(step: float = defaults.THRESHOLD_GRID_STEP) -> np.ndarray:
    """Candidate thresholds ``step .. 1 - step``; a coarse grid keeps the choice from fitting single scores."""
    return np.round(np.arange(step, 1.0 - step / 2, step), 6)


def f1_curve(probs: np.ndarray, truth: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """F1 of ``probs >= t`` against boolean ``truth`` for every ``t`` in ``grid`` (one label's known rows)."""
    predicted = np.asarray(probs)[:, None] >= grid[None, :]
    truth = np.asarray(truth, dtype=bool)[:, None]
    tp = (predicted & truth).sum(axis=0)
    fp = (predicted & ~truth).sum(axis=0)
    fn = (~predicted & truth).sum(axis=0)
    return f1_from_counts(tp, fp, fn)


def best_threshold(curve: np.ndarray, grid: np.ndarray) -> float:
    """The grid point of highest F1; among ties the one closest to 0.5, so a flat curve keeps the default."""
    best = np.flatnonzero(curve >= curve.max() - 1e-12)
    return float(grid[best[np.argmin(np.abs(grid[best] - DEFAULT_THRESHOLD))]])


def tune_thresholds(
    probs: np.ndarray,
    labels: np.ndarray,
    label_mask: np.ndarray,
    label_names: Sequence[str],
    grid: np.ndarray | None = None,
) -> dict[str, float]:
    """``{label: threshold}``; a label without a known positive on validation keeps 0.5 (nothing to tune on)."""
    grid = threshold_grid() if grid is None else grid
    truth = np.asarray(labels) > 0.5
    known = np.asarray(label_mask) > 0
    tuned: dict[str, float] = {}
    for j, name in enumerate(label_names):
        rows = known[:, j]
        if not truth[rows, j].any():
            tuned[name] = DEFAULT_THRESHOLD
            continue
        tuned[name] = best_threshold(f1_curve(np.asarray(probs)[rows, j], truth[rows, j], grid), grid)
    return tuned
