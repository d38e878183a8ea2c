"""Sure bands: per label, the student's scores below ``low`` and above ``high`` where its decision agrees with the
teacher's on held-out texts at least ``target`` of the time. Pure functions over score tables.

A decision is ``score >= threshold`` (the teacher's tuned threshold) for both models. ``low`` never exceeds the
threshold and ``high`` never falls below it, so a score inside a band always means the same decision.

The unit is the transformer's window: a text longer than one window is scored per window and each label keeps its
maximum, so the student is taught, banded and trusted window by window. A window the student is sure of on every
label is one the teacher never sees; a text whose windows are all sure is answered by the student alone.

A band's agreement is measured on a sample, so a band is only as wide as the sample can vouch for: its
one-sided Clopper-Pearson lower bound (at ``confidence``) on the agreement must reach ``target``, and it must
hold at least ``min_texts`` texts. With no disagreement at all, 95% confidence in 99.5% takes 598 texts.
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


@dataclass(frozen=True)
class BandRule:
    """What a band must show on the texts it is fitted on (see the module's docstring)."""

    target: float  # the lower confidence bound on the band's agreement must reach this
    confidence: float = 0.95  # of that one-sided bound; 0: the measured agreement itself must reach the target
    min_texts: int = 1  # a side with fewer texts stays empty


def agreement_lower_bound(agreeing: np.ndarray, texts: np.ndarray, confidence: float) -> np.ndarray:
    """One-sided Clopper-Pearson lower bound on a share, per (agreeing, texts) pair; the share itself when
    ``confidence`` is 0. Exact (never below its confidence), so conservative for the small counts at a band's edge."""
    agreeing, texts = np.asarray(agreeing, dtype=np.float64), np.asarray(texts, dtype=np.float64)
    share = np.divide(agreeing, texts, out=np.zeros_like(agreeing), where=texts > 0)
    if confidence <= 0:
        return share
    from scipy.stats import beta

    # The bound is the (1 - confidence) quantile of Beta(k, n - k + 1); it is 0 when nothing agreed.
    with np.errstate(invalid="ignore"):
        bound = beta.ppf(1.0 - confidence, agreeing, texts - agreeing + 1.0)
    return np.where(agreeing > 0, np.nan_to_num(bound), 0.0)


def sure_bands(student: np.ndarray, teacher: np.ndarray, thresholds: Sequence[float], rule: BandRule) -> list[Band]:
    """The widest band per label (column) that ``rule`` allows."""
    student, teacher = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    bands = []
    for j, threshold in enumerate(thresholds):
        s, agrees_negative = student[:, j], teacher[:, j] < threshold
        low = _widest_side(s, agrees_negative, threshold, rule)
        # The upper side is the lower side of the negated scores.
        high = _widest_side(-s, ~agrees_negative, -threshold, rule)
        n = max(len(s), 1)
        bands.append(
            Band(
                low=low.cut if low.count else 0.0,
                high=-high.cut if high.count else 1.0,
                agreement_low=low.agreement,
                agreement_high=high.agreement,
                share_low=low.count / n,
                share_high=high.count / n,
                texts_low=low.count,
                texts_high=high.count,
                bound_low=low.bound,
                bound_high=high.bound,
            )
        )
    return bands


@dataclass(frozen=True)
class _Side:
    cut: float
    agreement: float
    bound: float
    count: int


def _widest_side(scores: np.ndarray, agrees: np.ndarray, limit: float, rule: BandRule) -> _Side:
    """The largest cut ``c <= limit`` such that the texts with ``score < c`` pass ``rule``: the cut, their
    agreement and its bound, how many. The cut is the first score left out (or ``limit``), so the band holds
    exactly the texts it was measured on; (limit, 1.0, 1.0, 0) when no cut passes."""
    order = np.argsort(scores, kind="stable")
    sorted_scores, sorted_agrees = scores[order], agrees[order]
    below_limit = int(np.searchsorted(sorted_scores, limit, side="left"))  # only these can be in the band
    counts = np.arange(1, below_limit + 1)
    agreeing = np.cumsum(sorted_agrees[:below_limit])
    bound = agreement_lower_bound(agreeing, counts, rule.confidence)
    # A cut must not split equal scores: after ``count`` texts, the next score must be higher (or none be left).
    whole = (
        np.append(sorted_scores[1:below_limit] != sorted_scores[: below_limit - 1], True) if below_limit else counts > 0
    )
    passing = np.flatnonzero(whole & (counts >= rule.min_texts) & (bound >= rule.target))
    if not passing.size:
        return _Side(limit, 1.0, 1.0, 0)
    count = int(counts[passing[-1]])  # widest
    cut = float(sorted_scores[count]) if count < below_limit else float(limit)
    return _Side(cut, float(agreeing[count - 1] / count), float(bound[count - 1]), count)


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
