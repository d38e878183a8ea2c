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

A band fitted on some texts is then checked on others (``hold_bands``), none of them taught to the student nor
used to fit it: the widest cut that passes on the fitting texts leans on their luck, and a side whose decisions
agree with the teacher's less often than ``target`` on the other texts is dropped, not served.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from cockatoo_ml.inference.bands import Band


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


@dataclass(frozen=True)
class DroppedSide:
    """A band side that did not hold on the texts it was checked on (``hold_bands``)."""

    label: str
    side: str  # "low" (sure negatives) or "high" (sure positives)
    cut: float  # the side's edge as fitted
    fit_texts: int  # band windows below/above it where it was fitted
    fit_agreement: float
    held_out_texts: int  # windows below/above it on the check texts
    held_out_agreement: float  # the share of them where the teacher agrees (1.0 when none)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self, target: float) -> str:
        why = (
            f"on {self.held_out_texts} held-out windows its decisions agree with the teacher's "
            f"{self.held_out_agreement:.2%} of the time, below the {target:.2%} target"
            if self.held_out_texts
            else "no held-out window falls in it, so nothing shows that it holds"
        )
        fitted = f"{self.fit_agreement:.2%} on the {self.fit_texts} windows it was fitted on"
        return f"the {self.side} band of {self.label!r} (cut {self.cut:.4g}) is dropped: {why} ({fitted})"


def hold_bands(
    student: np.ndarray,
    teacher: np.ndarray,
    thresholds: Sequence[float],
    bands: Sequence[Band],
    target: float,
    labels: Sequence[str],
) -> tuple[list[Band], list[DroppedSide]]:
    """``bands`` checked on other windows (``student`` and ``teacher`` scores of windows none of them was fitted
    on): a side is kept when the teacher agrees with its decision on at least ``target`` of the windows it holds
    there, and emptied when not, or when it holds none of them (nothing shows it holds). The measured share
    decides, not a confidence bound: the bound was the fitting's business, and this sample is independent of it.
    Returns the bands kept and the sides dropped."""
    student, teacher = np.asarray(student, dtype=np.float64), np.asarray(teacher, dtype=np.float64)
    kept: list[Band] = []
    dropped: list[DroppedSide] = []
    for j, (band, threshold, label) in enumerate(zip(bands, thresholds, labels, strict=True)):
        positive = teacher[:, j] >= threshold
        sides = (
            ("low", band.low > 0.0, student[:, j] < band.low, ~positive, band.texts_low, band.agreement_low),
            ("high", band.high < 1.0, student[:, j] > band.high, positive, band.texts_high, band.agreement_high),
        )
        for side, promises, inside, agrees, fit_texts, fit_agreement in sides:
            count = int(inside.sum())
            agreement = float(agrees[inside].mean()) if count else 1.0
            if not promises or (count and agreement >= target):  # an empty side promises nothing
                continue
            cut = band.low if side == "low" else band.high
            dropped.append(DroppedSide(label, side, cut, fit_texts, fit_agreement, count, agreement))
            band = _emptied(band, side)
        kept.append(band)
    return kept, dropped


def _emptied(band: Band, side: str) -> Band:
    """``band`` with one side empty, as ``sure_bands`` leaves a side no cut passes."""
    if side == "low":
        return replace(band, low=0.0, agreement_low=1.0, share_low=0.0, texts_low=0, bound_low=1.0)
    return replace(band, high=1.0, agreement_high=1.0, share_high=0.0, texts_high=0, bound_high=1.0)
