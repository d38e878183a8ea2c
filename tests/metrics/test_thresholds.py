"""Per-label F1-optimal thresholds on validation."""

from __future__ import annotations

import numpy as np
import pytest

from cockatoo_ml.metrics.thresholds import best_threshold, f1_curve, threshold_grid, tune_thresholds


def test_grid_spans_open_unit_interval() -> None:
    grid = threshold_grid(0.01)
    assert grid[0] == pytest.approx(0.01) and grid[-1] == pytest.approx(0.99) and len(grid) == 99


def test_finds_the_separating_threshold_per_label() -> None:
    # label a separates at 0.3 (positives score 0.31..0.4), label b at 0.7
    pos_a, neg_a = np.linspace(0.31, 0.4, 10), np.linspace(0.0, 0.29, 30)
    pos_b, neg_b = np.linspace(0.71, 0.9, 10), np.linspace(0.1, 0.69, 30)
    probs = np.column_stack([np.r_[pos_a, neg_a], np.r_[pos_b, neg_b]])
    labels = np.zeros((40, 2))
    labels[:10] = 1
    tuned = tune_thresholds(probs, labels, np.ones_like(labels), ["a", "b"])
    assert 0.29 < tuned["a"] <= 0.31
    assert 0.69 < tuned["b"] <= 0.71
    for j, name in enumerate("ab"):
        assert f1_curve(probs[:, j], labels[:, j] > 0, np.array([tuned[name]]))[0] == 1.0


def test_unknown_rows_are_ignored_and_no_positive_keeps_default() -> None:
    probs = np.array([[0.2, 0.9], [0.1, 0.8], [0.9, 0.1]])
    labels = np.array([[1, 0], [0, 0], [0, 0]], dtype=float)
    mask = np.array([[1, 1], [1, 1], [0, 1]], dtype=float)  # row 2 (a high-scoring negative) unknown for a
    tuned = tune_thresholds(probs, labels, mask, ["a", "b"])
    assert 0.1 < tuned["a"] <= 0.2
    assert tuned["b"] == 0.5


def test_ties_prefer_the_threshold_nearest_half() -> None:
    grid = threshold_grid(0.1)
    assert best_threshold(np.ones(len(grid)), grid) == pytest.approx(0.5)
