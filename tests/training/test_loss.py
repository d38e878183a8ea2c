"""Masked BCE with pos_weight and the asymmetric loss count only known labels."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.training.loss import (
    MultiLabelLoss,
    masked_asymmetric_loss,
    masked_bce,
    noisy_or_loss,
    pos_weight_from_known,
)


def test_pos_weight_counts_known_rows_only() -> None:
    labels = [[1, 0, 0], [0, 0, 0], [0, 1, 0], [0, 0, 0], [1, 0, 0]]
    mask = [[1, 1, 0], [1, 1, 0], [1, 1, 0], [1, 0, 0], [0, 1, 0]]
    weight = pos_weight_from_known(labels, mask, max_weight=50)
    # label 0: known rows 0-3 -> 1 positive, 3 negatives (row 4's positive is unknown and ignored)
    # label 1: known rows 0,1,2,4 -> 1 positive, 3 negatives; label 2: never known -> 1
    assert weight.tolist() == pytest.approx([3.0, 3.0, 1.0])
    capped = pos_weight_from_known([[1, 0]] + [[0, 1]] * 99, [[1, 1]] * 100, max_weight=10)
    assert capped.tolist() == pytest.approx([10.0, 1.0])  # 99/1 capped; 1/99 floored at 1


def test_masked_bce_ignores_unknown_cells() -> None:
    logits = torch.tensor([[2.0, -1.0], [0.5, 3.0]], requires_grad=True)
    targets = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    mask = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
    loss = masked_bce(logits, targets, mask)
    expected = F.binary_cross_entropy_with_logits(logits[mask.bool()], targets[mask.bool()])
    assert loss.item() == pytest.approx(expected.item())
    loss.backward()
    assert logits.grad[0, 1] == 0  # an unknown label gets no gradient
    # changing the target of an unknown cell changes nothing
    assert masked_bce(logits, torch.tensor([[1.0, 1.0], [0.0, 1.0]]), mask).item() == pytest.approx(loss.item())


def test_pos_weight_scales_positive_terms() -> None:
    logits, targets, mask = torch.zeros(1, 2), torch.tensor([[1.0, 0.0]]), torch.ones(1, 2)
    plain = masked_bce(logits, targets, mask)
    weighted = masked_bce(logits, targets, mask, pos_weight=torch.tensor([3.0, 3.0]))
    # positive cell counts 3x, negative cell unchanged: (3*ln2 + ln2) / 2 vs ln2
    assert weighted.item() == pytest.approx(plain.item() * 2)


def test_batch_without_known_labels_gives_zero_not_nan() -> None:
    loss = masked_bce(torch.randn(2, 3), torch.ones(2, 3), torch.zeros(2, 3))
    assert loss.item() == 0.0


def test_asl_equals_bce_without_focusing_and_down_weights_easy_negatives() -> None:
    torch.manual_seed(0)
    logits, targets = torch.randn(8, 4), (torch.rand(8, 4) > 0.5).float()
    mask = (torch.rand(8, 4) > 0.3).float()
    plain = masked_asymmetric_loss(logits, targets, mask, gamma_neg=0, gamma_pos=0, clip=0)
    assert plain.item() == pytest.approx(masked_bce(logits, targets, mask).item(), rel=1e-5)
    easy_negative = torch.tensor([[-3.0]])
    zero, one = torch.zeros(1, 1), torch.ones(1, 1)
    assert masked_asymmetric_loss(easy_negative, zero, one).item() < masked_bce(easy_negative, zero, one).item() / 10


def test_multilabel_loss_dispatch_and_unknown_kind() -> None:
    logits, targets, mask = torch.randn(3, 2), torch.ones(3, 2), torch.ones(3, 2)
    assert MultiLabelLoss("bce")(logits, targets, mask).item() == pytest.approx(masked_bce(logits, targets, mask).item())
    assert MultiLabelLoss("asl")(logits, targets, mask).item() == pytest.approx(
        masked_asymmetric_loss(logits, targets, mask).item()
    )
    with pytest.raises(ConfigError, match="unknown loss"):
        MultiLabelLoss("focal")


def test_label_reduction_weighs_every_known_label_the_same() -> None:
    # label 0 is known on three rows, label 1 on one: per cell, label 0 holds 3/4 of the loss; per label, half.
    logits = torch.tensor([[1.0, 2.0], [-1.0, 0.0], [0.5, 0.0], [2.0, 0.0]])
    targets = torch.tensor([[1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0], [1.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    cells = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    label0 = cells[:3, 0].mean()
    label1 = cells[0, 1]
    by_label = masked_bce(logits, targets, mask, reduction="label")
    assert by_label.item() == pytest.approx(((label0 + label1) / 2).item())
    assert masked_bce(logits, targets, mask, reduction="cell").item() == pytest.approx(
        ((cells[:3, 0].sum() + label1) / 4).item()
    )
    assert MultiLabelLoss("bce", reduction="label")(logits, targets, mask).item() == pytest.approx(by_label.item())
    # a batch where nothing is known: zero, not NaN
    assert masked_bce(logits, targets, torch.zeros_like(mask), reduction="label").item() == 0.0
    with pytest.raises(ConfigError):
        MultiLabelLoss("bce", reduction="row")


def test_noisy_or_is_minus_log_of_at_least_one_flagged_label() -> None:
    # row 0: label 0 known negative, labels 1 and 2 flagged "at least one of"; row 1: all known, no flag.
    logits = torch.tensor([[0.0, 1.0, -1.0], [2.0, -2.0, 0.5]])
    targets = torch.tensor([[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]])
    mask = torch.tensor([[1.0, 0.0, 0.0], [1.0, 1.0, 1.0]])
    p = torch.sigmoid(logits)
    at_least_one = 1 - (1 - p[0, 1]) * (1 - p[0, 2])
    row_loss, rows = noisy_or_loss(logits, targets, mask)
    assert row_loss[0].item() == pytest.approx(-math.log(at_least_one.item()), rel=1e-6)
    assert row_loss[1].item() == 0.0 and rows.tolist() == [1.0, 0.0]

    cells = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    per_label = [cells[:, 0].mean(), cells[1, 1], cells[1, 2]]
    by_label = MultiLabelLoss("bce", reduction="label", any_of_weight=1.0)(logits, targets, mask)
    assert by_label.item() == pytest.approx(((sum(per_label) + row_loss[0]) / 4).item(), rel=1e-6)
    by_cell = masked_bce(logits, targets, mask, reduction="cell", any_of_weight=2.0)
    assert by_cell.item() == pytest.approx(((cells[0, 0] + cells[1].sum() + 2 * row_loss[0]) / 6).item(), rel=1e-6)
    # weight 0: the flagged cells are unknown and count for nothing, as before the flag existed
    off = MultiLabelLoss("bce", reduction="label", any_of_weight=0.0)(logits, targets, mask)
    assert off.item() == pytest.approx((sum(per_label) / 3).item(), rel=1e-6)


def test_noisy_or_pushes_the_flagged_labels_up_and_leaves_the_others() -> None:
    logits = torch.tensor([[-3.0, -3.0, -3.0]], requires_grad=True)
    targets = torch.tensor([[0.0, 1.0, 1.0]])
    mask = torch.zeros(1, 3)
    masked_asymmetric_loss(logits, targets, mask, any_of_weight=1.0).backward()
    assert logits.grad is not None
    assert logits.grad[0, 0].item() == 0.0 and (logits.grad[0, 1:] < 0).all()
    # a confident flagged label already explains the row: little is left to learn
    sure = torch.tensor([[-3.0, 6.0, -3.0]])
    assert noisy_or_loss(sure, targets, mask)[0].item() < 0.01
