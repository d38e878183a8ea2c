"""Linear probe, then fine-tune (LP-FT, Kumar et al. 2022).

A fresh random head sends large, random gradients into the pretrained encoder during the first steps and
fine-tuning then forgets features the encoder already had; on the thin labels (150-360 positives) the frozen
encoder with a logistic regression beat the fine-tuned model (issue 9). So before fine-tuning, the head is set to
that logistic regression: one per label, fitted on the frozen encoder's pooled features of the known rows of the
training split, class-balanced. Fine-tuning then starts from the probe's quality and only has to improve on it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from sklearn.linear_model import LogisticRegression
from tqdm.auto import tqdm

from cockatoo_ml.modeling import MeanPoolingClassifier
from cockatoo_ml.training.tokenize import length_order

log = logging.getLogger(__name__)

PROBE_C = 1.0  # inverse L2 strength of each label's logistic regression (scikit-learn's default)
PROBE_MAX_ITER = 2000


def fit_label_probes(
    features: np.ndarray, labels: np.ndarray, label_mask: np.ndarray, c: float = PROBE_C
) -> tuple[np.ndarray, np.ndarray]:
    """One class-balanced logistic regression per label on the rows where that label is known.

    Returns ``(weights [labels, features], bias [labels])``; a label with fewer than two classes among its known
    rows gets zero weights and a bias of ±8 towards the one class it has (there is nothing to separate)."""
    features = np.asarray(features, dtype=np.float64)
    truth = np.asarray(labels) > 0.5
    known = np.asarray(label_mask) > 0
    weights = np.zeros((truth.shape[1], features.shape[1]))
    bias = np.zeros(truth.shape[1])
    for j in range(truth.shape[1]):
        y = truth[known[:, j], j]
        if y.size == 0 or y.all() or not y.any():
            bias[j] = 0.0 if y.size == 0 else (8.0 if y.all() else -8.0)
            continue
        probe = LogisticRegression(C=c, class_weight="balanced", max_iter=PROBE_MAX_ITER)
        probe.fit(features[known[:, j]], y)
        weights[j], bias[j] = probe.coef_[0], probe.intercept_[0]
    return weights, bias


def probe_rows(label_mask: np.ndarray, rows_per_label: int, seed: int = 0) -> np.ndarray:
    """Sorted row indices: for each label, its known rows, or ``rows_per_label`` of them drawn at random.

    Encoding is the probe's whole cost; a label known on 25k rows fits no better a probe than on 4k, while a thin
    label needs every row it has. Rows another label keeps stay in for every label that knows them."""
    known = np.asarray(label_mask) > 0
    rng = np.random.default_rng(seed)
    chosen = np.zeros(known.shape[0], dtype=bool)
    for j in range(known.shape[1]):
        rows = np.flatnonzero(known[:, j])
        if rows.size > rows_per_label:
            rows = rng.choice(rows, size=rows_per_label, replace=False)
        chosen[rows] = True
    return np.flatnonzero(chosen)


@torch.inference_mode()
def pooled_features(
    pool: Callable[..., torch.Tensor],
    split: Dataset,
    collate: Callable[[Sequence[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """``pool(**inputs)`` over a tokenized split, in length-sorted batches (little padding), in row order."""
    order = length_order(split)
    out: np.ndarray | None = None
    for start in tqdm(range(0, len(order), batch_size), desc="Linear probe: encoding the training split"):
        rows = order[start : start + batch_size]
        batch = collate([split[int(i)] for i in rows])
        inputs = {k: v.to(device) for k, v in batch.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
        pooled = pool(**inputs).float().cpu().numpy()
        if out is None:
            out = np.empty((len(order), pooled.shape[1]), dtype=np.float32)
        out[rows] = pooled
    assert out is not None, "an empty split has no features"
    return out


def init_head_from_probe(
    model: MeanPoolingClassifier,
    split: Dataset,
    collate: Callable[[Sequence[dict[str, Any]]], dict[str, torch.Tensor]],
    batch_size: int,
    label_names: Sequence[str],
    rows_per_label: int | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Set ``model.classifier`` to the per-label probes fitted on the frozen ``model.pooled`` features of
    ``split`` (at most ``rows_per_label`` known rows per label, see ``probe_rows``); returns each label's probe
    accuracy on the known rows it was fitted on (for the log)."""
    if rows_per_label is not None:
        split = split.select(probe_rows(np.asarray(split["label_mask"]), rows_per_label, seed))
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    features = pooled_features(model.pooled, split, collate, batch_size, device)
    model.train(was_training)
    labels, mask = np.asarray(split["labels"]), np.asarray(split["label_mask"])
    weights, bias = fit_label_probes(features, labels, mask)
    with torch.no_grad():
        model.classifier.weight.copy_(torch.as_tensor(weights, dtype=model.classifier.weight.dtype))
        model.classifier.bias.copy_(torch.as_tensor(bias, dtype=model.classifier.bias.dtype))
    logits = features @ weights.T + bias
    known = mask > 0
    return {
        name: float(((logits[known[:, j], j] > 0) == (labels[known[:, j], j] > 0.5)).mean())
        if known[:, j].any()
        else 0.0
        for j, name in enumerate(label_names)
    }
