"""The Trainer's ``compute_metrics``: the shared multi-label metrics on the evaluation loop's logits."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from transformers import EvalPrediction

from cockatoo_ml.metrics.multilabel import multilabel_metrics, sigmoid


class TrainerMetrics:
    """``compute_metrics`` for the Trainer: logits + (labels, label_mask) -> metrics at fixed thresholds."""

    def __init__(self, label_names: Sequence[str], thresholds: Mapping[str, float] | float | None = None) -> None:
        self.label_names = list(label_names)
        self.thresholds = thresholds

    def __call__(self, prediction: EvalPrediction) -> dict[str, float]:
        logits = prediction.predictions[0] if isinstance(prediction.predictions, tuple) else prediction.predictions
        labels, label_mask = prediction.label_ids
        return multilabel_metrics(sigmoid(logits), labels, label_mask, self.label_names, self.thresholds)
