"""Multi-label losses that count only the labels a row's source annotates (``label_mask`` = 1).

Sources annotate different subsets of labels (an SMS spam corpus says nothing about violence), so an unknown
label must neither push the score down nor count towards the average.

Some rows say "positive for at least one of these labels" without naming which (a source's ``any_of`` flag,
stored as ``labels`` 1.0 where ``label_mask`` is 0; see ``cockatoo_ml/data/contract.py``). They are scored with a
noisy-OR target, ``P(at least one) = 1 - prod(1 - p_i)`` over the row's flagged labels, weighted by
``any_of_weight`` as one more task beside the labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry import training as defaults


def pos_weight_from_known(
    labels: np.ndarray | Sequence[Sequence[float]],
    label_mask: np.ndarray | Sequence[Sequence[float]],
    max_weight: float = defaults.POS_WEIGHT_MAX,
) -> torch.Tensor:
    """Per-label ``negatives / positives`` counted over known rows only, clipped to ``[1, max_weight]``.

    A label with no known positive gets 1 (no reweighting): there is nothing to up-weight."""
    truth = np.asarray(labels, dtype=np.float64)
    known = np.asarray(label_mask, dtype=np.float64) > 0
    positives = ((truth > 0.5) & known).sum(axis=0)
    negatives = ((truth <= 0.5) & known).sum(axis=0)
    ratio = np.divide(negatives, positives, out=np.ones_like(negatives, dtype=np.float64), where=positives > 0)
    return torch.tensor(np.clip(ratio, 1.0, max_weight), dtype=torch.float32)


REDUCTIONS = ("label", "cell")


def noisy_or_loss(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per row, ``-log P(at least one flagged label)`` with independent sigmoids (noisy-OR), and which rows have
    a flag: the cells with ``mask`` 0 and ``targets`` 1. Rows without one get 0."""
    flagged = ((mask <= 0) & (targets > 0.5)).to(logits.dtype)
    # log P(none) = sum of log(1 - p_i) over the flagged cells, computed from the logits for stability.
    log_none = (F.logsigmoid(-logits) * flagged).sum(dim=1).clamp(max=-1e-6)
    has_flag = (flagged.sum(dim=1) > 0).to(logits.dtype)
    return -torch.log(-torch.expm1(log_none)) * has_flag, has_flag


def _masked_mean(
    per_cell: torch.Tensor,
    mask: torch.Tensor,
    reduction: str = "cell",
    per_row: tuple[torch.Tensor, torch.Tensor] | None = None,
    row_weight: float = 1.0,
) -> torch.Tensor:
    """``cell``: the mean over every known cell of the batch. ``label``: each label's mean over its known cells,
    then the mean over the labels known somewhere in the batch, so a label known on 10% of the rows weighs as much
    as one known on 90% (with ``cell`` the plentiful label drives the shared encoder).

    ``per_row`` = (row losses, which rows count), the noisy-OR term: one more cell per counted row (``cell``), or
    one more task with the mean over its rows (``label``); ``row_weight`` scales it."""
    # A batch where no label is known contributes 0 (with a gradient path) rather than NaN.
    row_loss, rows = per_row if per_row is not None else (per_cell.new_zeros(1), per_cell.new_zeros(1))
    if reduction == "cell":
        total = (per_cell * mask).sum() + row_weight * (row_loss * rows).sum()
        return total / (mask.sum() + row_weight * rows.sum()).clamp(min=1.0)
    known = mask.sum(dim=0)
    per_label = (per_cell * mask).sum(dim=0) / known.clamp(min=1.0)
    present = (known > 0).to(per_label.dtype)
    row_task = (row_loss * rows).sum() / rows.sum().clamp(min=1.0)
    row_present = (rows.sum() > 0).to(per_label.dtype) * row_weight
    return ((per_label * present).sum() + row_task * row_present) / (present.sum() + row_present).clamp(min=1.0)


def masked_bce(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    pos_weight: torch.Tensor | None = None,
    reduction: str = "cell",
    any_of_weight: float = 0.0,
) -> torch.Tensor:
    """Binary cross-entropy on logits averaged over the known (mask = 1) cells (see ``_masked_mean``), plus the
    noisy-OR term for "at least one of" rows when ``any_of_weight`` > 0."""
    if pos_weight is not None:
        pos_weight = pos_weight.to(device=logits.device, dtype=logits.dtype)
    per_cell = F.binary_cross_entropy_with_logits(
        logits, targets.to(logits.dtype), pos_weight=pos_weight, reduction="none"
    )
    return _masked_mean(per_cell, mask.to(logits.dtype), reduction, *_noisy_or(logits, targets, mask, any_of_weight))


def _noisy_or(
    logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor, weight: float
) -> tuple[tuple[torch.Tensor, torch.Tensor] | None, float]:
    """``_masked_mean``'s ``per_row`` and ``row_weight`` arguments: nothing when the term is off."""
    return (noisy_or_loss(logits.float(), targets, mask), weight) if weight > 0 else (None, 0.0)


def masked_asymmetric_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    gamma_neg: float = defaults.ASL_GAMMA_NEG,
    gamma_pos: float = defaults.ASL_GAMMA_POS,
    clip: float = defaults.ASL_CLIP,
    eps: float = 1e-8,
    reduction: str = "cell",
    any_of_weight: float = 0.0,
) -> torch.Tensor:
    """Asymmetric loss (Ridnik et al., 2021) averaged over known cells: focuses away from the many easy
    negatives and shifts negative probabilities down by ``clip``. With both gammas and clip at 0 it equals BCE."""
    logits = logits.float()
    targets = targets.float()
    prob = torch.sigmoid(logits)
    prob_neg = (1 - prob + clip).clamp(max=1) if clip > 0 else 1 - prob
    loss_pos = targets * torch.log(prob.clamp(min=eps))
    loss_neg = (1 - targets) * torch.log(prob_neg.clamp(min=eps))
    if gamma_pos or gamma_neg:
        # The focusing weight is a constant per cell (as in the paper's reference implementation).
        with torch.no_grad():
            pt = prob * targets + prob_neg * (1 - targets)
            gamma = gamma_pos * targets + gamma_neg * (1 - targets)
            focus = torch.pow(1 - pt, gamma)
        loss_pos, loss_neg = loss_pos * focus, loss_neg * focus
    return _masked_mean(
        -(loss_pos + loss_neg), mask.float(), reduction, *_noisy_or(logits, targets, mask, any_of_weight)
    )


class MultiLabelLoss:
    """The loss chosen for a run: ``"bce"`` (masked, with ``pos_weight``) or ``"asl"`` (masked asymmetric)."""

    KINDS = ("bce", "asl")

    def __init__(
        self,
        kind: str = defaults.LOSS,
        pos_weight: torch.Tensor | None = None,
        gamma_neg: float = defaults.ASL_GAMMA_NEG,
        gamma_pos: float = defaults.ASL_GAMMA_POS,
        clip: float = defaults.ASL_CLIP,
        reduction: str = "cell",
        any_of_weight: float = defaults.ANY_OF_WEIGHT,
    ) -> None:
        if kind not in self.KINDS:
            raise ConfigError(f"unknown loss {kind!r}; use one of {', '.join(self.KINDS)}")
        if reduction not in REDUCTIONS:
            raise ConfigError(f"unknown loss reduction {reduction!r}; use one of {', '.join(REDUCTIONS)}")
        self.kind, self.reduction = kind, reduction
        self.pos_weight = pos_weight
        self.gamma_neg, self.gamma_pos, self.clip = gamma_neg, gamma_pos, clip
        self.any_of_weight = any_of_weight

    def __call__(self, logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.kind == "asl":
            return masked_asymmetric_loss(
                logits,
                targets,
                mask,
                self.gamma_neg,
                self.gamma_pos,
                self.clip,
                reduction=self.reduction,
                any_of_weight=self.any_of_weight,
            )
        return masked_bce(logits, targets, mask, self.pos_weight, self.reduction, self.any_of_weight)
