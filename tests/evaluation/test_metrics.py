"""Evaluation metrics on a hand-made fixture, checked against scikit-learn and hand arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score

from cockatoo_ml.evaluation.metrics import (
    ALL_SOURCES,
    expected_calibration_error,
    flagged_metrics,
    flagged_truth,
    grouped_metrics,
    label_metrics,
    reliability_bins,
)

PROBS = np.array([0.95, 0.81, 0.62, 0.55, 0.48, 0.33, 0.30, 0.12, 0.07, 0.91])
TRUTH = np.array([1, 1, 0, 1, 0, 1, 0, 0, 0, 0], dtype=bool)


def test_label_metrics_match_scikit_learn() -> None:
    m = label_metrics(PROBS, TRUTH, threshold=0.5)
    predicted = PROBS >= 0.5
    assert (m.rows, m.positives, m.threshold) == (10, 4, 0.5)
    assert m.pr_auc == pytest.approx(average_precision_score(TRUTH, PROBS))
    assert m.roc_auc == pytest.approx(roc_auc_score(TRUTH, PROBS))
    assert m.precision == pytest.approx(precision_score(TRUTH, predicted))  # 3 of 5 flagged are positive
    assert m.recall == pytest.approx(recall_score(TRUTH, predicted))  # 3 of 4 positives flagged
    assert m.f1 == pytest.approx(f1_score(TRUTH, predicted))
    # Best F1 over the 0.01 grid, searched by brute force with scikit-learn; ties go to the threshold nearest 0.5.
    grid = np.round(np.arange(0.01, 0.995, 0.01), 2)
    f1s = np.array([f1_score(TRUTH, PROBS >= t) for t in grid])
    assert m.best_f1 == pytest.approx(f1s.max())
    best = grid[np.isclose(f1s, f1s.max())]
    assert m.best_threshold == pytest.approx(best[np.argmin(np.abs(best - 0.5))])


def test_expected_calibration_error_by_hand() -> None:
    # Bins of width 0.1: [0.0,0.1) {0.07:0}, [0.1,0.2) {0.12:0}, [0.3,0.4) {0.33:1, 0.30:0},
    # [0.4,0.5) {0.48:0}, [0.5,0.6) {0.55:1}, [0.6,0.7) {0.62:0}, [0.8,0.9) {0.81:1}, [0.9,1.0] {0.95:1, 0.91:0}.
    gaps = [
        abs(0.07 - 0), abs(0.12 - 0), 2 * abs((0.33 + 0.30) / 2 - 0.5), abs(0.48 - 0), abs(0.55 - 1),
        abs(0.62 - 0), abs(0.81 - 1), 2 * abs((0.95 + 0.91) / 2 - 0.5),
    ]
    assert expected_calibration_error(PROBS, TRUTH) == pytest.approx(sum(gaps) / 10)
    assert label_metrics(PROBS, TRUTH, 0.5).ece == pytest.approx(sum(gaps) / 10)
    # A score of exactly 1.0 falls in the last bin, not past it; perfect calibration is 0.
    assert expected_calibration_error(np.array([1.0, 0.0]), np.array([1, 0])) == 0.0


def test_reliability_bins_count_rows_and_rates() -> None:
    mean_score, rate, count = reliability_bins(PROBS, TRUTH)
    assert count.tolist() == [1, 1, 0, 2, 1, 1, 1, 0, 1, 2]
    assert mean_score[3] == pytest.approx(0.315) and rate[3] == pytest.approx(0.5)
    assert np.isnan(mean_score[2]) and np.isnan(rate[7])


def test_one_class_rows_have_no_areas() -> None:
    m = label_metrics(np.array([0.2, 0.7]), np.array([False, False]), 0.5)
    assert (m.positives, m.pr_auc, m.roc_auc, m.best_f1, m.best_threshold) == (0, None, None, None, None)
    assert m.precision == 0.0 and m.ece == pytest.approx((0.2 + 0.7) / 2)


def test_grouped_metrics_count_known_rows_only_per_source() -> None:
    names = ("scam", "nsfw")
    probs = np.column_stack([PROBS, PROBS[::-1]])
    labels = np.column_stack([TRUTH, TRUTH[::-1]]).astype(np.float32)
    mask = np.ones_like(labels)
    sources = np.array(["a"] * 5 + ["b"] * 5, dtype=object)
    mask[5:, 1] = 0  # source b does not annotate nsfw
    mask[0, 0] = 0  # one unknown scam cell in source a
    grouped = grouped_metrics(probs, labels, mask, sources, names, {"scam": 0.5, "nsfw": 0.6})
    assert set(grouped) == {ALL_SOURCES, "a", "b"}
    assert "nsfw" not in grouped["b"]  # b knows nothing about nsfw: no entry, not an empty one
    assert grouped[ALL_SOURCES]["nsfw"].rows == 5 and grouped[ALL_SOURCES]["nsfw"].threshold == 0.6
    known = mask[:, 0] > 0
    assert grouped[ALL_SOURCES]["scam"].pr_auc == pytest.approx(average_precision_score(TRUTH[known], PROBS[known]))
    in_b = sources == "b"
    assert grouped["b"]["scam"].roc_auc == pytest.approx(roc_auc_score(TRUTH[in_b], PROBS[in_b]))
    assert grouped["a"]["scam"].rows == 4 and grouped["a"]["scam"].positives == 2  # rows 1-4: 0.81 and 0.55


# --- flagged: any label (unsafe included) at its threshold, against a hand computation ---------------------------

FLAG_LABELS = ("violence", "harassment", "unsafe")
FLAG_THRESHOLDS = {"violence": 0.5, "harassment": 0.7, "unsafe": 0.4}
NA = np.nan
# Truth (NaN = unknown) and scores for eight rows of two sources.
FLAG_TRUTH = np.array(
    [
        [1, NA, 1],  # a: should be flagged (a label is positive)
        [0, 0, 0],  # a: should not (unsafe known negative)
        [NA, NA, 0],  # a: should not
        [NA, 1, 1],  # a: should be
        [NA, 0, NA],  # b: unknown (not hate is not known safe): left out
        [NA, NA, 1],  # b: should be (the broad flag)
        [0, NA, 0],  # b: should not
        [NA, NA, NA],  # b: unknown
    ]
)
FLAG_SCORES = np.array(
    [
        [0.9, 0.1, 0.1],  # flagged by violence: TP
        [0.1, 0.1, 0.45],  # flagged by unsafe (0.45 >= 0.4): FP
        [0.1, 0.69, 0.1],  # harassment 0.69 < 0.7: not flagged, TN
        [0.1, 0.2, 0.3],  # not flagged: FN
        [0.9, 0.9, 0.9],  # unknown: ignored
        [0.1, 0.1, 0.4],  # unsafe exactly at its threshold: TP
        [0.6, 0.1, 0.1],  # violence: FP
        [0.9, 0.9, 0.9],  # unknown: ignored
    ]
)
FLAG_SOURCES = np.array(["a"] * 4 + ["b"] * 4, dtype=object)


def test_flagged_truth_is_known_where_a_label_is_positive_or_unsafe_known_negative() -> None:
    truth, known = flagged_truth(np.nan_to_num(FLAG_TRUTH), ~np.isnan(FLAG_TRUTH), FLAG_LABELS)
    assert known.tolist() == [True, True, True, True, False, True, True, False]
    assert truth[known].tolist() == [True, False, False, True, True, False]


def test_flagged_truth_without_unsafe_needs_every_label_known_negative() -> None:
    labels = np.array([[0, 0], [0, NA], [1, NA]])
    truth, known = flagged_truth(np.nan_to_num(labels), ~np.isnan(labels), ("violence", "harassment"))
    assert known.tolist() == [True, False, True] and truth.tolist() == [False, False, True]


def test_flagged_metrics_by_hand() -> None:
    got = flagged_metrics(
        FLAG_SCORES, np.nan_to_num(FLAG_TRUTH), ~np.isnan(FLAG_TRUTH), FLAG_SOURCES, FLAG_LABELS, FLAG_THRESHOLDS
    )
    # all: TP 2 (rows 0, 5), FP 2 (rows 1, 6), FN 1 (row 3), TN 1 (row 2).
    assert (got[ALL_SOURCES].rows, got[ALL_SOURCES].positives, got[ALL_SOURCES].flagged) == (6, 3, 4)
    assert got[ALL_SOURCES].precision == pytest.approx(2 / 4)
    assert got[ALL_SOURCES].recall == pytest.approx(2 / 3)
    assert got[ALL_SOURCES].f1 == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))
    # a: TP 1, FP 1, FN 1; b: TP 1, FP 1, FN 0.
    assert (got["a"].precision, got["a"].recall, got["a"].f1) == (0.5, 0.5, pytest.approx(0.5))
    assert (got["b"].rows, got["b"].precision, got["b"].recall) == (2, 0.5, 1.0)
    assert got["b"].f1 == pytest.approx(2 / 3)
