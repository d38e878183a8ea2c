"""Applying a student's sure bands: per label, the scores below ``low`` and above ``high`` where the student's
decision can be trusted (fitted by ``cockatoo_ml.distillation.bands``, stored in ``cascade.json``), and the
cascade's arithmetic on window score tables. Pure functions.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import MISSING, asdict, dataclass, fields
from typing import Any

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
    texts_low: int = 0  # texts below ``low``
    texts_high: int = 0  # texts above ``high``
    bound_low: float = 1.0  # the lower confidence bound on ``agreement_low`` (1.0 when none)
    bound_high: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def sure(scores: np.ndarray, bands: Sequence[Band]) -> np.ndarray:
    """Per text and label: is the student's score inside the label's band?"""
    scores = np.asarray(scores, dtype=np.float64)
    low = np.array([band.low for band in bands])
    high = np.array([band.high for band in bands])
    return (scores < low) | (scores > high)


def text_maxima(window_scores: np.ndarray, owner: np.ndarray, texts: int) -> np.ndarray:
    """Per text, each label's maximum over its windows (``owner``: each window's text)."""
    window_scores = np.asarray(window_scores, dtype=np.float64)
    out = np.full((texts, window_scores.shape[1] if window_scores.ndim == 2 else 0), -np.inf)
    np.maximum.at(out, np.asarray(owner, dtype=np.int64), window_scores)
    return out


def cascade_scores(
    student: np.ndarray, teacher: np.ndarray, sure_windows: np.ndarray, owner: np.ndarray, texts: int
) -> tuple[np.ndarray, np.ndarray]:
    """The cascade on windows: per text, each label's maximum over its windows, each window scored by the student
    where it is sure on every label and by the teacher elsewhere (only those rows of ``teacher`` are read); and
    whether the student answered the text alone (sure of all its windows)."""
    sure_windows = np.asarray(sure_windows, dtype=bool)
    mixed = np.where(sure_windows[:, None], student, teacher)
    unsure_per_text = np.bincount(np.asarray(owner, dtype=np.int64), weights=~sure_windows, minlength=texts)
    return text_maxima(mixed, owner, texts), unsure_per_text == 0


def cascade_agreement(
    cascade: np.ndarray, teacher: np.ndarray, thresholds: Sequence[float], answered: np.ndarray
) -> dict[str, float]:
    """How the cascade does on texts: the share the student answers alone, the share of those whose decisions on
    every label equal the teacher's, and the share of all texts whose decisions equal the teacher's
    (``cascade``: the cascade's scores per text, ``teacher``: the teacher's alone)."""
    limits = np.asarray(thresholds, dtype=np.float64)
    same = ((np.asarray(cascade) >= limits) == (np.asarray(teacher) >= limits)).all(axis=1)
    answered = np.asarray(answered, dtype=bool)
    n, answered_n = len(same), int(answered.sum())
    return {
        "texts": n,
        "answered_share": answered_n / n if n else 0.0,
        "answered_agreement": float(same[answered].mean()) if answered_n else 1.0,
        "decision_agreement": float(same.mean()) if n else 1.0,
    }


def bands_from_dict(labels: Sequence[str], raw: Mapping[str, Mapping[str, float]]) -> list[Band]:
    """Bands as stored in cascade.json, in the model's label order; raises ValueError naming what is wrong."""
    bands = []
    for label in labels:
        if label not in raw:
            raise ValueError(f"no band for label {label!r}")
        # Counts and bounds (fields with a default) are missing from a student written before they existed.
        given = {f.name: raw[label][f.name] for f in fields(Band) if f.name in raw[label] or f.default is MISSING}
        values: dict[str, Any] = {
            name: int(value) if name.startswith("texts_") else float(value) for name, value in given.items()
        }
        band = Band(**values)
        if not 0.0 <= band.low <= band.high <= 1.0:
            raise ValueError(f"band of {label!r} is not 0 <= low <= high <= 1")
        bands.append(band)
    return bands
