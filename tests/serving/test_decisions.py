"""The thresholded decisions every route shares (cockatoo_ml/serving/decisions.py)."""

from __future__ import annotations

import pytest

from cockatoo_ml.serving.decisions import decide

LABELS = ("scam", "violence", "nsfw", "harassment")
THRESHOLDS = {"scam": 0.4, "violence": 0.5, "nsfw": 0.6, "harassment": 0.5}


@pytest.mark.parametrize(
    ("scores", "positive"),
    [
        ((0.1, 0.2, 0.3, 0.4), []),
        ((0.4, 0.2, 0.3, 0.4), ["scam"]),  # a score reaching its threshold exactly is positive
        ((0.39999, 0.49999, 0.59999, 0.49999), []),
        ((0.9, 0.1, 0.7, 0.5), ["scam", "nsfw", "harassment"]),  # label order, not score order
    ],
)
def test_positive_labels_and_flagged(scores: tuple[float, ...], positive: list[str]) -> None:
    assert decide(LABELS, scores, THRESHOLDS) == (positive, bool(positive))


def test_unsafe_alone_flags_a_text_and_a_model_without_it_is_flagged_from_its_own_labels() -> None:
    labels = (*LABELS, "unsafe")
    assert decide(labels, (0.0, 0.0, 0.0, 0.0, 0.8), {**THRESHOLDS, "unsafe": 0.5}) == (["unsafe"], True)
    assert decide(LABELS, (0.0, 0.9, 0.0, 0.0), THRESHOLDS) == (["violence"], True)
    assert decide(("toxic",), (0.2,), {"toxic": 0.3}) == ([], False)
