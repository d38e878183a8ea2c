"""Sure bands on hand-made score tables (cockatoo_ml/distillation/bands.py)."""

from __future__ import annotations

import numpy as np
import pytest

from cockatoo_ml.inference.bands import Band, bands_from_dict, cascade_agreement, sure

from cockatoo_ml.distillation.bands import BandRule, sure_bands


def test_bands_are_the_widest_runs_that_agree_often_enough() -> None:
    # One label, threshold 0.5. Student scores ascending; the teacher's decision beside each.
    student = np.array([0.01, 0.02, 0.05, 0.10, 0.30, 0.45, 0.55, 0.70, 0.90, 0.95, 0.99])
    teacher = np.array([0.00, 0.10, 0.20, 0.90, 0.10, 0.60, 0.40, 0.80, 0.90, 0.99, 0.97])
    # target 1.0: below 0.10 all three agree (the 4th is a teacher positive); above 0.55 the four from 0.70 agree.
    [band] = sure_bands(student[:, None], teacher[:, None], [0.5], BandRule(target=1.0, confidence=0))
    assert band.low == 0.10 and band.high == 0.55
    assert band.agreement_low == 1.0 and band.agreement_high == 1.0
    assert band.share_low == pytest.approx(3 / 11) and band.share_high == pytest.approx(4 / 11)
    # target 0.8: the lowest five include one disagreement (4/5 = 0.8) -> low is the first score left out.
    [band] = sure_bands(student[:, None], teacher[:, None], [0.5], BandRule(target=0.8, confidence=0))
    assert band.low == 0.45 and band.agreement_low == pytest.approx(0.8)
    # above: 0.55..0.99 has one disagreement in five (0.8) -> high is the score below them, capped at 0.5.
    assert band.high == 0.5 and band.agreement_high == pytest.approx(0.8) and band.share_high == pytest.approx(5 / 11)


def test_a_band_never_crosses_the_threshold_and_can_be_empty() -> None:
    student = np.array([[0.1, 0.2], [0.2, 0.3], [0.8, 0.9]])
    teacher = np.array([[0.0, 0.9], [0.0, 0.9], [1.0, 0.1]])  # label 2: the student is always wrong
    first, second = sure_bands(student, teacher, [0.5, 0.5], BandRule(target=0.99, confidence=0))
    assert first.low == 0.5 and first.high == 0.5  # every text agrees: the bands reach the threshold, no further
    assert second == Band(low=0.0, high=1.0, agreement_low=1.0, agreement_high=1.0, share_low=0.0, share_high=0.0)


def test_equal_scores_are_never_split_between_inside_and_outside() -> None:
    student = np.array([0.1, 0.2, 0.2, 0.2, 0.4])[:, None]
    teacher = np.array([0.0, 0.0, 0.0, 0.9, 0.0])[:, None]  # one of the three 0.2s disagrees
    [band] = sure_bands(student, teacher, [0.5], BandRule(target=0.99, confidence=0))
    assert band.low == 0.2 and band.share_low == pytest.approx(1 / 5)


def test_sure_and_cascade_agreement() -> None:
    bands = [Band(0.1, 0.9, 1.0, 1.0, 0.5, 0.5), Band(0.2, 0.8, 1.0, 1.0, 0.5, 0.5)]
    student = np.array([[0.05, 0.1], [0.95, 0.1], [0.5, 0.1], [0.05, 0.85]])
    assert sure(student, bands).tolist() == [[True, True], [True, True], [False, True], [True, True]]
    answered = sure(student, bands).all(axis=1)
    teacher = np.array([[0.0, 0.0], [0.9, 0.0], [0.9, 0.0], [0.0, 0.1]])  # the 4th disagrees on label 2
    result = cascade_agreement(student, teacher, [0.5, 0.5], answered)
    assert result == {"texts": 4, "answered_share": 0.75, "answered_agreement": pytest.approx(2 / 3),
                      "decision_agreement": 0.75}


def test_bands_from_dict_checks_every_label() -> None:
    raw = {"a": Band(0.1, 0.9, 1.0, 1.0, 0.2, 0.3).to_dict()}
    assert bands_from_dict(["a"], raw)[0].high == 0.9
    with pytest.raises(ValueError, match="no band for label 'b'"):
        bands_from_dict(["a", "b"], raw)
    with pytest.raises(ValueError, match="low <= high"):
        bands_from_dict(["a"], {"a": {**raw["a"], "low": 0.95}})


def test_the_lower_bound_is_clopper_pearson() -> None:
    from scipy.stats import binomtest

    from cockatoo_ml.distillation.bands import agreement_lower_bound

    agreeing, texts = np.array([598, 597, 40, 0]), np.array([598, 598, 50, 3])
    bound = agreement_lower_bound(agreeing, texts, confidence=0.95)
    # scipy's exact binomial interval, one-sided ("greater") at 95%, computed independently.
    expected = [binomtest(int(k), int(n), alternative="greater").proportion_ci(0.95, "exact").low
                for k, n in zip(agreeing, texts)]
    assert bound == pytest.approx(expected, abs=1e-9)
    assert bound[0] == pytest.approx(0.05 ** (1 / 598)) and bound[0] > 0.995 > bound[1]  # 598 of 598 vouch for 99.5%
    assert agreement_lower_bound(agreeing, texts, confidence=0).tolist() == pytest.approx([1.0, 597 / 598, 0.8, 0.0])


def test_a_band_is_only_as_wide_as_its_confidence_bound_allows() -> None:
    # 1,000 students' scores spread below the threshold 0.5; the teacher agrees everywhere except on the 2 texts
    # nearest the threshold. Point estimate: all 1,000 pass 99.6% (998/1000 = 99.8%). The 95% lower bound of
    # 998 of 1000 is 0.9937 and of 998 of 999 0.9953, both below 99.6%; 998 of 998 gives 0.05**(1/998) = 0.9970,
    # so the band stops below the first error.
    student = np.linspace(0.0, 0.49, 1000)[:, None]
    teacher = np.zeros((1000, 1))
    teacher[-2:] = 0.9
    [point] = sure_bands(student, teacher, [0.5], BandRule(target=0.996, confidence=0))
    assert point.texts_low == 1000 and point.low == 0.5 and point.bound_low == pytest.approx(0.998)
    [bounded] = sure_bands(student, teacher, [0.5], BandRule(target=0.996, confidence=0.95))
    assert bounded.texts_low == 998 and bounded.low == pytest.approx(student[998, 0])
    assert bounded.agreement_low == 1.0 and bounded.bound_low == pytest.approx(0.05 ** (1 / 998))
    # Too few texts to vouch for 99.5% at all: 500 agreeing texts bound it at 0.9940.
    [thin] = sure_bands(student[:500], teacher[:500], [0.5], BandRule(target=0.995, confidence=0.95))
    assert thin.texts_low == 0 and thin.low == 0.0 and thin.share_low == 0.0


def test_a_side_with_fewer_texts_than_the_minimum_stays_empty() -> None:
    student = np.array([0.01, 0.02, 0.03, 0.97, 0.98])[:, None]
    teacher = np.array([0.0, 0.0, 0.0, 1.0, 1.0])[:, None]
    [band] = sure_bands(student, teacher, [0.5], BandRule(target=0.99, confidence=0, min_texts=3))
    assert band.texts_low == 3 and band.low == 0.5
    assert band.texts_high == 0 and band.high == 1.0  # two texts above: fewer than three


def test_bands_written_before_counts_and_bounds_existed_still_load() -> None:
    old = {"low": 0.1, "high": 0.9, "agreement_low": 1.0, "agreement_high": 1.0, "share_low": 0.2, "share_high": 0.3}
    [band] = bands_from_dict(["a"], {"a": old})
    assert band.low == 0.1 and band.texts_low == 0 and band.bound_low == 1.0
    with pytest.raises(KeyError):
        bands_from_dict(["a"], {"a": {k: v for k, v in old.items() if k != "high"}})


def test_a_band_side_that_does_not_hold_on_other_texts_is_dropped() -> None:
    from cockatoo_ml.distillation.bands import hold_bands

    # Three labels, threshold 0.5, bands fitted elsewhere: both sides of every label promise agreement.
    fitted = [Band(0.2, 0.8, 1.0, 0.999, 0.3, 0.2, texts_low=300, texts_high=200, bound_low=0.996, bound_high=0.995)] * 3
    rng = np.random.default_rng(0)
    student = np.stack([rng.permutation(np.linspace(0, 1, 1001)) for _ in range(3)], axis=1)  # 200 below 0.2
    teacher = np.where(student >= 0.5, 0.9, 0.1)  # agrees with the student everywhere ...
    low = np.flatnonzero(student[:, 1] < 0.2)
    teacher[low[:3], 1] = 0.9  # ... but label b's sure negatives: 3 of 200 are positives (98.5% < 99.5%)
    high = np.flatnonzero(student[:, 2] > 0.8)
    teacher[high[:1], 2] = 0.1  # label c's sure positives: 1 of 200 (99.5%): holds, just
    assert len(low) == len(high) == 200
    kept, dropped = hold_bands(student, teacher, [0.5] * 3, fitted, 0.995, ["a", "b", "c"])
    assert kept[0] == kept[2] == fitted[0]
    assert kept[1] == Band(0.0, 0.8, 1.0, 0.999, 0.0, 0.2, texts_low=0, texts_high=200, bound_low=1.0, bound_high=0.995)
    [side] = dropped
    assert (side.label, side.side, side.cut, side.fit_texts, side.fit_agreement) == ("b", "low", 0.2, 300, 1.0)
    assert side.held_out_texts == len(low) and side.held_out_agreement == pytest.approx(1 - 3 / len(low))
    assert "the low band of 'b' (cut 0.2) is dropped" in side.describe(0.995) and side.to_dict()["side"] == "low"
    # One more disagreement above label c's band breaks it too; an empty side promises nothing and stays.
    teacher[high[1], 2] = 0.1
    open_ended = [Band(0.0, 0.8, 1.0, 1.0, 0.0, 0.2)] * 3
    kept, dropped = hold_bands(student, teacher, [0.5] * 3, open_ended, 0.995, ["a", "b", "c"])
    assert [(s.label, s.side) for s in dropped] == [("c", "high")] and kept[2].high == 1.0 and kept[2].low == 0.0


def test_a_band_side_no_held_out_window_falls_in_is_dropped() -> None:
    """Nothing shows that it holds: a side must be seen to keep its promise to be served."""
    from cockatoo_ml.distillation.bands import hold_bands

    student, teacher = np.array([[0.5], [0.6]]), np.array([[0.5], [0.6]])
    band = Band(0.1, 0.9, 1.0, 1.0, 0.2, 0.2, texts_low=150, texts_high=150)
    kept, dropped = hold_bands(student, teacher, [0.5], [band], 0.995, ["a"])
    assert kept == [Band(0.0, 1.0, 1.0, 1.0, 0.0, 0.0)]
    assert [(s.side, s.held_out_texts, s.held_out_agreement) for s in dropped] == [("low", 0, 1.0), ("high", 0, 1.0)]
    assert "no held-out window falls in it" in dropped[0].describe(0.995)
