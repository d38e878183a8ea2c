"""The parity guard of the fast path: does bucketed bfloat16 decide as float32 does, on this model and machine?

Training writes a parity sample into the model directory (``parity.json``): a few hundred validation texts with
their labels and their float32 scores. Loading a model with ``dtype=auto`` scores those texts on the fast path
and keeps it only when at least ``MIN_AGREEMENT`` of the decisions (text x label, at the tuned thresholds) equal
float32's and no label's PR-AUC on the sample moves by more than ``MAX_PR_AUC_CHANGE``; otherwise, or without a
sample, or on hardware without native bfloat16, the model serves in float32 and the log and ``/health`` say why.
The check runs again at every load because its answer depends on the machine (CPU kernels, GPU) as much as on
the model.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from cockatoo_ml.artifacts import PARITY_FILE
from cockatoo_ml.inference.runtime import BUCKETED_BF16, FLOAT32, Precision, native_bf16


class Classifier(Protocol):
    """What the check needs of a ``TextClassifier`` (which imports this module)."""

    precision: Precision
    labels: tuple[str, ...]
    thresholds: dict[str, float]
    window: int
    stride: int
    device: torch.device

    def score(self, texts: Sequence[str]) -> Sequence[Any]: ...


log = logging.getLogger(__name__)

MIN_AGREEMENT = 0.995  # share of decisions equal to float32's
MAX_PR_AUC_CHANGE = 0.005  # per label, on the sample
SAMPLE_TEXTS = 512  # a few seconds on two CPU cores
POSITIVES_PER_LABEL = 32  # taken first, so that every label's PR-AUC is measured on some positives
SAMPLE_CHARS = 2000  # longer texts are cut: bounds the check's time, and both precisions score the same text
FORMAT = 1


@dataclass(frozen=True)
class ParitySample:
    """Texts with their known labels (``mask`` 1 = known) and the float32 scores of the model that wrote it, cut
    into windows as ``window`` and ``stride`` say."""

    labels: tuple[str, ...]
    texts: list[str]
    truth: np.ndarray
    mask: np.ndarray
    float32: np.ndarray
    window: int
    stride: int

    def save(self, model_dir: Path, build_check: ParityResult | None = None) -> None:
        content: dict[str, Any] = {
            "format": FORMAT,
            "labels": list(self.labels),
            "window": self.window,
            "stride": self.stride,
            "texts": self.texts,
            "truth": self.truth.tolist(),
            "mask": self.mask.tolist(),
            "float32": self.float32.tolist(),
        }
        if build_check is not None:  # for people: the check at load time does not read it
            content["build_check"] = build_check.as_dict()
        (Path(model_dir) / PARITY_FILE).write_text(json.dumps(content) + "\n")

    @classmethod
    def load(cls, model_dir: Path, labels: tuple[str, ...]) -> ParitySample:
        """The sample in ``model_dir``; ``ValueError`` saying what is wrong when it is unusable."""
        path = Path(model_dir) / PARITY_FILE
        try:
            content = json.loads(path.read_text())
            sample = cls(
                labels=tuple(content["labels"]),
                texts=[str(text) for text in content["texts"]],
                truth=np.asarray(content["truth"], dtype=np.float64),
                mask=np.asarray(content["mask"], dtype=np.float64),
                float32=np.asarray(content["float32"], dtype=np.float64),
                window=int(content["window"]),
                stride=int(content["stride"]),
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
        shape = (len(sample.texts), len(labels))
        if sample.labels != labels or any(a.shape != shape for a in (sample.truth, sample.mask, sample.float32)):
            raise ValueError(f"{path} does not match this model's labels {list(labels)}")
        return sample


@dataclass(frozen=True)
class ParityResult:
    texts: int
    agreement: float  # share of decisions (text x label) equal to float32's
    pr_auc_change: float  # largest change of a label's PR-AUC
    max_score_change: float

    @property
    def passed(self) -> bool:
        return self.agreement >= MIN_AGREEMENT and self.pr_auc_change <= MAX_PR_AUC_CHANGE

    def describe(self) -> str:
        return (
            f"on {self.texts} validation texts {self.agreement:.2%} of decisions equal float32's "
            f"(needs {MIN_AGREEMENT:.1%}), PR-AUC within {self.pr_auc_change:.4f} (needs {MAX_PR_AUC_CHANGE})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "texts": self.texts,
            "agreement": self.agreement,
            "pr_auc_change": self.pr_auc_change,
            "max_score_change": self.max_score_change,
            "passed": self.passed,
        }


def compare(
    fast: np.ndarray, reference: np.ndarray, truth: np.ndarray, mask: np.ndarray, thresholds: np.ndarray
) -> ParityResult:
    """How far ``fast`` scores are from the ``reference`` (float32) ones, for the parity rule."""
    agreement = float(np.mean((fast >= thresholds) == (reference >= thresholds))) if fast.size else 1.0
    change = 0.0
    for label in range(truth.shape[1]):
        known = mask[:, label] > 0
        positives = truth[known, label] > 0.5
        if positives.any() and not positives.all():  # PR-AUC needs both classes
            a = average_precision_score(positives, fast[known, label])
            b = average_precision_score(positives, reference[known, label])
            change = max(change, abs(float(a) - float(b)))
    score_change = float(np.abs(fast - reference).max()) if fast.size else 0.0
    return ParityResult(len(fast), agreement, change, score_change)


def choose_sample(truth: np.ndarray, mask: np.ndarray, size: int = SAMPLE_TEXTS, seed: int = 0) -> np.ndarray:
    """Row indices of the parity sample: up to ``POSITIVES_PER_LABEL`` known positives of each label, then random
    rows up to ``size``, in row order."""
    rng = np.random.default_rng(seed)
    chosen: set[int] = set()
    for label in range(truth.shape[1]):
        positives = np.flatnonzero((mask[:, label] > 0) & (truth[:, label] > 0.5))
        take = min(POSITIVES_PER_LABEL, len(positives), max(0, size - len(chosen)))
        chosen.update(rng.choice(positives, take, replace=False).tolist())
    rest = np.setdiff1d(np.arange(len(truth)), np.fromiter(chosen, dtype=np.int64, count=len(chosen)))
    take = min(len(rest), max(0, size - len(chosen)))
    chosen.update(rng.choice(rest, take, replace=False).tolist())
    return np.asarray(sorted(chosen), dtype=np.int64)


def write_parity_sample(
    classifier: Classifier,
    model_dir: Path,
    texts: Sequence[str],
    truth: np.ndarray,
    mask: np.ndarray,
    size: int = SAMPLE_TEXTS,
) -> ParityResult | None:
    """Pick the parity sample from ``texts`` (validation), score it in float32 with ``classifier`` (the model in
    ``model_dir``, loaded in float32) and write ``parity.json`` there; then check the fast path on this machine and
    log the outcome (None: this machine has no native bfloat16, nothing checked)."""
    truth, mask = np.asarray(truth, dtype=np.float64), np.asarray(mask, dtype=np.float64)
    rows = choose_sample(truth, mask, size)
    sample = ParitySample(
        labels=classifier.labels,
        texts=[texts[row][:SAMPLE_CHARS] for row in rows],
        truth=truth[rows],
        mask=mask[rows],
        float32=_scores(classifier, [texts[row][:SAMPLE_CHARS] for row in rows]),
        window=classifier.window,
        stride=classifier.stride,
    )
    result = None
    native, why = native_bf16(classifier.device)
    if native:
        result = check(classifier, sample)
        log.info(
            "parity of the bucketed bfloat16 path: %s: %s", "passed" if result.passed else "FAILED", result.describe()
        )
    else:
        log.info("parity sample written, not checked here: %s", why)
    sample.save(model_dir, result)
    return result


def check(classifier: Classifier, sample: ParitySample) -> ParityResult:
    """The fast path against float32 on ``sample``; ``classifier`` is left in the precision it had."""
    before = classifier.precision
    try:
        if (sample.window, sample.stride) == (classifier.window, classifier.stride):
            reference = sample.float32
        else:  # windows cut otherwise than when the sample was written: float32 scores them again
            log.info(
                "parity sample cut at %d tokens, this model at %d: scoring it in float32",
                sample.window,
                classifier.window,
            )
            classifier.precision = Precision(FLOAT32, "parity reference")
            reference = _scores(classifier, sample.texts)
        classifier.precision = Precision(BUCKETED_BF16, "parity check")
        fast = _scores(classifier, sample.texts)
    finally:
        classifier.precision = before
    thresholds = np.asarray([classifier.thresholds[label] for label in classifier.labels])
    return compare(fast, reference, sample.truth, sample.mask, thresholds)


def choose_precision(classifier: Classifier, model_dir: Path) -> Precision:
    """``dtype=auto``: the bucketed bfloat16 path where the hardware computes bfloat16 and the model directory's
    parity sample passes the check on it, else float32; either way the reason, also logged."""
    native, why = native_bf16(classifier.device)
    if not native:
        log.info("serving in float32: %s", why)
        return Precision(FLOAT32, why)
    if not (Path(model_dir) / PARITY_FILE).is_file():
        reason = (
            f"no {PARITY_FILE} in the model directory, so the bucketed bfloat16 path cannot be checked; "
            "train_text.py writes one (or add it with train_text.py --parity-only --output-dir MODEL_DIR)"
        )
        log.warning("serving in float32: %s", reason)
        return Precision(FLOAT32, reason)
    try:
        sample = ParitySample.load(model_dir, classifier.labels)
    except ValueError as exc:
        log.warning("serving in float32: %s", exc)
        return Precision(FLOAT32, str(exc))
    result = check(classifier, sample)
    if not result.passed:
        reason = f"the bucketed bfloat16 path failed the parity check: {result.describe()}"
        log.warning("serving in float32: %s", reason)
        return Precision(FLOAT32, reason)
    reason = f"{why}; {result.describe()}"
    log.info("serving the bucketed bfloat16 path: %s", reason)
    return Precision(BUCKETED_BF16, reason)


def _scores(classifier: Classifier, texts: Sequence[str]) -> np.ndarray:
    scores = [score.scores for score in classifier.score(texts)]
    return np.asarray(scores, dtype=np.float64).reshape(len(texts), len(classifier.labels))
