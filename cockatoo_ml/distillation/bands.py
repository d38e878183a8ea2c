"""Sure bands: per label, the student's scores below ``low`` and above ``high`` where its decision agreed with the
teacher's on a held-out split at least ``target`` of the time. Pure functions over score tables.

A decision is ``score >= threshold`` (the teacher's tuned threshold) for both models. ``low`` never exceeds the
threshold and ``high`` never falls below it, so a score inside a band always means the same decision. A text the
student is sure of on every label is one the cascade answers without the teacher.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class Band:
    """One label's sure band: negative when ``score < low``, positive when ``score > high``.

    An empty side is ``low = 0`` (no score is below 0) or ``high = 1`` (none is above 1)."""

    low: float
    high: float
    agreement_low: float  # share of the texts below ``low`` the teacher also called negative (1.0 when none)
    agreement_high: float  # share of the texts above ``high`` the teacher also called positive (1.0 when none)
    share_low: float  # share of the split's texts below ``low``
    share_high: float  # share of the split's texts above ``high``

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def sure_bands(
    student: np.ndarray, teacher: np.ndarray, thresholds: Sequence[float], target: float
) -> list[Band]:
    """The widest band per label (column) whose texts' decisions agree with the teacher's at least ``target``."""
    student, teacher = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    bands = []
    for j, threshold in enumerate(thresholds):
        s, agrees_negative = student[:, j], teacher[:, j] < threshold
        low, agreement_low, count_low = _widest_side(s, agrees_negative, threshold, target)
        # The upper side is the lower side of the negated scores.
        high, agreement_high, count_high = _widest_side(-s, ~agrees_negative, -threshold, target)
        n = max(len(s), 1)
        bands.append(
            Band(
                low=low if count_low else 0.0, high=-high if count_high else 1.0, agreement_low=agreement_low,
                agreement_high=agreement_high, share_low=count_low / n, share_high=count_high / n,
            )
        )
    return bands


def _widest_side(scores: np.ndarray, agrees: np.ndarray, limit: float, target: float) -> tuple[float, float, int]:
    """The largest cut ``c <= limit`` such that the texts with ``score < c`` agree at least ``target`` of the time:
    (cut, their agreement, how many). The cut is the first score left out (or ``limit``), so the band holds exactly
    the texts it was measured on; (limit, 1.0, 0) when no cut reaches the target."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_agrees = scores[order], agrees[order]
    below_limit = int(np.searchsorted(sorted_scores, limit, side="left"))  # only these can be in the band
    agreeing = np.cumsum(sorted_agrees[:below_limit])
    for count in range(below_limit, 0, -1):  # widest first
        if count < below_limit and sorted_scores[count] == sorted_scores[count - 1]:
            continue  # a cut must not split equal scores
        agreement = agreeing[count - 1] / count
        if agreement >= target:
            cut = float(sorted_scores[count]) if count < below_limit else float(limit)
            return cut, float(agreement), count
    return limit, 1.0, 0


def sure(scores: np.ndarray, bands: Sequence[Band]) -> np.ndarray:
    """Per text and label: is the student's score inside the label's band?"""
    scores = np.asarray(scores, dtype=np.float64)
    low = np.array([band.low for band in bands])
    high = np.array([band.high for band in bands])
    return (scores < low) | (scores > high)


def cascade_agreement(
    student: np.ndarray, teacher: np.ndarray, thresholds: Sequence[float], answered: np.ndarray
) -> dict[str, float]:
    """How the cascade does on a split: the share of texts the student answers, the share of those whose
    decisions on every label equal the teacher's, and the share of all texts (the teacher answering the rest)."""
    limits = np.asarray(thresholds, dtype=np.float64)
    same = ((np.asarray(student) >= limits) == (np.asarray(teacher) >= limits)).all(axis=1)
    n, answered_n = len(same), int(answered.sum())
    return {
        "texts": n,
        "answered_share": answered_n / n if n else 0.0,
        "answered_agreement": float(same[answered].mean()) if answered_n else 1.0,
        "decision_agreement": float((same | ~answered).mean()) if n else 1.0,
    }


def bands_from_dict(labels: Sequence[str], raw: Mapping[str, Mapping[str, float]]) -> list[Band]:
    """Bands as stored in cascade.json, in the model's label order; raises ValueError naming what is wrong."""
    bands = []
    for label in labels:
        if label not in raw:
            raise ValueError(f"no band for label {label!r}")
        band = Band(**{key: float(raw[label][key]) for key in Band.__dataclass_fields__})
        if not 0.0 <= band.low <= band.high <= 1.0:
            raise ValueError(f"band of {label!r} is not 0 <= low <= high <= 1")
        bands.append(band)
    return bands
