"""From a text's scores to its decisions: which labels reach their thresholds, whether the text is flagged, and
the top label. One place, so the server's routes and bulk scoring answer alike."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    """One text's decisions; thresholds compare the unrounded scores."""

    scores: dict[str, float]
    positive_labels: list[str]
    flagged: bool  # any label, ``unsafe`` included where the model has it, reaches its threshold
    top_label: str | None  # the highest-scoring label, positive or not
    max_score: float | None


def decide(scores: Sequence[float], labels: Sequence[str], thresholds: Mapping[str, float]) -> Decision:
    """The decisions for one text's ``scores`` (in ``labels`` order) at ``thresholds`` (one per label)."""
    by_label = dict(zip(labels, map(float, scores), strict=True))
    positive = [label for label, value in by_label.items() if value >= thresholds[label]]
    top = max(by_label, key=by_label.__getitem__) if by_label else None
    return Decision(
        scores=by_label,
        positive_labels=positive,
        flagged=bool(positive),
        top_label=top,
        max_score=by_label[top] if top is not None else None,
    )
