"""Per-label and averaged metrics on known labels only."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, precision_score, recall_score, roc_auc_score
from transformers import EvalPrediction

from cockatoo_ml.training.metrics import TrainerMetrics

from cockatoo_ml.metrics.multilabel import multilabel_metrics

NAMES = ("a", "b")


def data():
    rng = np.random.default_rng(0)
    labels = (rng.random((40, 2)) > 0.6).astype(np.float32)
    probs = np.clip(labels * 0.5 + rng.random((40, 2)) * 0.6, 0, 1)
    mask = np.ones((40, 2), dtype=np.float32)
    mask[:10, 1] = 0  # label b unknown for the first 10 rows
    return probs, labels, mask


def test_matches_sklearn_on_known_rows() -> None:
    probs, labels, mask = data()
    out = multilabel_metrics(probs, labels, mask, NAMES, {"a": 0.5, "b": 0.4})
    for j, (name, cut) in enumerate(zip(NAMES, (0.5, 0.4))):
        rows = mask[:, j] > 0
        y, p = labels[rows, j], probs[rows, j]
        assert out[f"precision_{name}"] == pytest.approx(precision_score(y, p >= cut, zero_division=0))
        assert out[f"recall_{name}"] == pytest.approx(recall_score(y, p >= cut))
        assert out[f"f1_{name}"] == pytest.approx(f1_score(y, p >= cut))
        assert out[f"roc_auc_{name}"] == pytest.approx(roc_auc_score(y, p))
        assert out[f"pr_auc_{name}"] == pytest.approx(average_precision_score(y, p))
    assert out["f1"] == pytest.approx((out["f1_a"] + out["f1_b"]) / 2)
    known = mask > 0
    cut = np.array([0.5, 0.4])
    assert out["micro_f1"] == pytest.approx(f1_score(labels[known], (probs >= cut)[known]))


def test_unknown_cells_do_not_count() -> None:
    probs, labels, mask = data()
    before = multilabel_metrics(probs, labels, mask, NAMES)
    scrambled_probs, scrambled_labels = probs.copy(), labels.copy()
    scrambled_probs[:10, 1] = 1 - scrambled_probs[:10, 1]
    scrambled_labels[:10, 1] = 1 - scrambled_labels[:10, 1]
    assert multilabel_metrics(scrambled_probs, scrambled_labels, mask, NAMES) == before
    assert multilabel_metrics(scrambled_probs, scrambled_labels, np.ones_like(mask), NAMES) != before


def test_label_with_one_class_has_no_auc_and_never_known_label_is_left_out() -> None:
    probs = np.array([[0.9, 0.2], [0.1, 0.3], [0.8, 0.6]])
    labels = np.array([[1, 0], [0, 0], [1, 0]], dtype=float)
    mask = np.array([[1, 0], [1, 0], [1, 0]], dtype=float)
    out = multilabel_metrics(probs, labels, mask, NAMES)
    assert "roc_auc_b" not in out and "f1_b" not in out
    assert out["f1"] == out["f1_a"] == 1.0
    only_negatives = multilabel_metrics(probs, labels, np.ones_like(mask), NAMES)
    assert "roc_auc_b" not in only_negatives and only_negatives["f1_b"] == 0.0
    assert only_negatives["roc_auc"] == only_negatives["roc_auc_a"]


def test_trainer_metrics_reads_logits_and_label_mask() -> None:
    probs, labels, mask = data()
    logits = np.log(probs.clip(1e-6, 1 - 1e-6) / (1 - probs.clip(1e-6, 1 - 1e-6)))
    out = TrainerMetrics(NAMES)(EvalPrediction(predictions=logits, label_ids=(labels, mask)))
    assert out["f1"] == pytest.approx(multilabel_metrics(probs, labels, mask, NAMES)["f1"])
