"""Thresholded decisions on one text's scores: which labels are positive, and whether the text is flagged.

One function, so that ``/predict``, ``/batch`` and ``/v1/moderations`` can never disagree on what a threshold
means (a score *reaching* it is positive) or on ``flagged``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


def decide(labels: Sequence[str], scores: Sequence[float], thresholds: Mapping[str, float]) -> tuple[list[str], bool]:
    """The labels whose (unrounded) score reaches its threshold, in label order, and whether the text is flagged:
    any label positive. ``unsafe``, where the model has it, is one label among the others; a model without it
    (an older four-label directory, a custom label set) is flagged from the labels it has."""
    positive = [label for label, value in zip(labels, scores, strict=True) if value >= thresholds[label]]
    return positive, bool(positive)
