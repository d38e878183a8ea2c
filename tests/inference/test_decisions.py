"""Scores to decisions (cockatoo_ml/inference/decisions.py): positive labels, flagged, the top label."""

from __future__ import annotations

import pytest

from cockatoo_ml.inference.decisions import decide

LABELS = ("scam", "violence", "nsfw", "harassment", "unsafe")
THRESHOLDS = {"scam": 0.5, "violence": 0.3, "nsfw": 0.9, "harassment": 0.5, "unsafe": 0.4}


def test_a_label_at_its_threshold_is_positive_and_flags_the_text() -> None:
    decision = decide([0.1, 0.3, 0.95, 0.2, 0.1], LABELS, THRESHOLDS)
    assert decision.positive_labels == ["violence", "nsfw"]  # 0.3 reaches 0.3: thresholds are inclusive
    assert decision.flagged and decision.top_label == "nsfw" and decision.max_score == pytest.approx(0.95)


def test_unsafe_alone_flags_a_text_no_narrow_label_catches() -> None:
    decision = decide([0.1, 0.2, 0.1, 0.2, 0.45], LABELS, THRESHOLDS)
    assert decision.positive_labels == ["unsafe"] and decision.flagged


def test_nothing_over_its_threshold_is_not_flagged_but_still_has_a_top_label() -> None:
    decision = decide([0.49, 0.29, 0.89, 0.1, 0.39], LABELS, THRESHOLDS)
    assert decision.positive_labels == [] and not decision.flagged and decision.top_label == "nsfw"


def test_a_model_without_unsafe_flags_from_the_labels_it_has() -> None:
    four = LABELS[:4]
    assert decide([0.6, 0.0, 0.0, 0.0], four, THRESHOLDS).flagged
    assert not decide([0.4, 0.0, 0.0, 0.0], four, THRESHOLDS).flagged


def test_scores_and_labels_must_pair_up() -> None:
    with pytest.raises(ValueError):
        decide([0.1, 0.2], LABELS, THRESHOLDS)
