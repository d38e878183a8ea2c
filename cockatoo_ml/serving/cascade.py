"""The cascade: a cheap student answers the windows of text it is sure of, the transformer (micro-batched) the rest.

``<model dir>/student/`` (written by ``distill.py``) holds the student and, per label, the bands of its scores
where it agreed with the transformer on held-out windows at least 99.5% of the time (``cascade.json``). Texts are
cut into the transformer's windows; the student scores every window, and only the windows it is not sure of (on
some label) go through the micro-batcher to the transformer. Each label keeps its maximum over a text's windows,
as the transformer alone does. A text whose windows are all sure is answered by the student alone (tier
``student``); one with any window left to the transformer says ``model``. So in a long e-mail only the passages
that need the transformer cost its time. The student runs in the request's own task, on a worker thread, so the
event loop stays free. A request with its own ``threshold`` goes to the transformer whole: the bands hold for the
tuned thresholds only.
"""

from __future__ import annotations

import asyncio
import functools
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cockatoo_ml.distillation.bands import Band, bands_from_dict, cascade_scores, sure
from cockatoo_ml.distillation.students import Student
from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.registry import distillation as defaults
from cockatoo_ml.serving.batcher import MicroBatcher
from cockatoo_ml.serving.model import TextClassifier, TextScore, WindowCut, first_line

Tier = Literal["student", "model"]


@dataclass(frozen=True)
class Cascade:
    """A loaded student with its bands, for one classifier (same labels, same thresholds)."""

    student: Student
    bands: tuple[Band, ...]
    report: dict[str, Any]  # cascade.json as distill.py wrote it

    @classmethod
    def load(cls, folder: Path, classifier: TextClassifier) -> Cascade:
        """Raise ``ModelLoadError`` (one line naming the fix) when the student cannot serve this classifier."""
        fix = f"rebuild it with `python distill.py --model {folder.parent}`, or set COCKATOO_CASCADE=off"
        try:
            report = json.loads((folder / defaults.CASCADE_FILE).read_text())
            student = Student.load(folder)
            bands = bands_from_dict(classifier.labels, report["bands"])
            trained_for = {label: float(report["thresholds"][label]) for label in classifier.labels}
            unit = report.get("unit", "text")
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, zipfile.BadZipFile) as exc:
            raise ModelLoadError(f"cannot load the cascade's student in {folder} ({first_line(exc)}); {fix}") from None
        if not getattr(classifier.tokenizer, "is_fast", False):
            # The student reads each window's own characters, which only a fast tokenizer's offsets give.
            raise ModelLoadError(f"the model in {folder.parent} has no fast tokenizer, which the cascade needs; {fix}")
        if unit != defaults.BAND_UNIT:
            # Bands measured on whole short texts say nothing about the windows of long ones.
            raise ModelLoadError(
                f"the student in {folder} was banded per {unit}, not per window (an older distill.py); {fix}"
            )
        if student.labels != classifier.labels:
            raise ModelLoadError(
                f"the student in {folder} predicts {list(student.labels)} but the model {list(classifier.labels)}; {fix}"
            )
        if trained_for != classifier.thresholds:
            raise ModelLoadError(
                f"the student in {folder} was measured at thresholds {trained_for} but the model now has "
                f"{classifier.thresholds} (thresholds.json changed); {fix}"
            )
        return cls(student, tuple(bands), report)

    @property
    def validation(self) -> dict[str, float]:
        return dict(self.report.get("validation", {}))

    def plan(self, classifier: TextClassifier, texts: Sequence[str]) -> Plan:
        """Cut ``texts`` into the transformer's windows and let the student score each one."""
        cut = classifier.cut(texts, spans=True)
        scores = self.student.scores(cut.window_texts(texts))
        return Plan(len(texts), cut, scores, np.asarray(sure(scores, self.bands).all(axis=1)))


@dataclass(frozen=True)
class Plan:
    """One call's texts cut into windows, the student's score of every window and which windows it is sure of
    on every label: the rest (``for_model``) are the transformer's."""

    texts: int
    cut: WindowCut
    student: np.ndarray  # (windows, labels)
    sure: np.ndarray  # (windows,)

    @functools.cached_property
    def for_model(self) -> list[int]:
        """The windows the student is not sure of, in order."""
        return np.flatnonzero(~self.sure).tolist()

    @property
    def model_windows(self) -> list[tuple[int, ...]]:
        """Those windows' token ids, as the transformer takes them (``TextClassifier.score``)."""
        return [self.cut.ids[i] for i in self.for_model]

    def finish(self, model_scores: np.ndarray) -> list[tuple[TextScore, Tier]]:
        """Each text's scores and tier, given the transformer's scores of the ``for_model`` windows (in order)."""
        teacher = np.zeros_like(self.student)
        if len(model_scores):
            teacher[self.for_model] = model_scores
        scores, student_alone = cascade_scores(self.student, teacher, self.sure, self.cut.owner, self.texts)
        counts = np.bincount(self.cut.owner, minlength=self.texts)
        return [
            (TextScore(tuple(map(float, row)), int(count)), "student" if alone else "model")
            for row, count, alone in zip(scores, counts, student_alone, strict=True)
        ]


def load_cascade(model_dir: Path, enabled: bool, classifier: TextClassifier) -> Cascade | None:
    """The cascade for ``model_dir``, or None when it is switched off or the model has no student."""
    folder = Path(model_dir) / defaults.STUDENT_DIR
    if not enabled or not folder.exists():
        return None
    return Cascade.load(folder, classifier)


class TieredScorer:
    """Scores a request's texts: the student's sure answers at once, the rest through the micro-batcher."""

    def __init__(
        self,
        batcher: MicroBatcher[TextScore],
        classifier: TextClassifier,
        cascade: Cascade | None,
        on_answered: Callable[[Tier, int], None] = lambda tier, n: None,
    ) -> None:
        self.batcher = batcher  # its queue is bounded in tokens: each submit says what its texts cost
        self.classifier = classifier
        self.cascade = cascade
        self._on_answered = on_answered

    async def score(
        self,
        texts: Sequence[str],
        student_allowed: bool = True,
        check: Callable[[Sequence[str]], Sequence[int]] | None = None,
    ) -> list[tuple[TextScore, Tier]]:
        """Each text's scores and the tier that answered. ``check`` (the token budget: each text's token count,
        or an exception for a text over it) runs first, on the same worker thread as the student: one hop off the
        event loop per request. A text sent whole costs its count in the batcher's queue, a window its tokens."""
        use_student = self.cascade is not None and student_allowed
        tokens, plan = await asyncio.to_thread(self._prepare, texts, check, use_student)
        if plan is None:
            cost = sum(tokens) if tokens is not None else 0
            scored = await self.batcher.submit(list(texts), cost=cost) if texts else []
            self._on_answered("model", len(texts))
            return [(score, "model") for score in scored]
        windows = plan.model_windows
        model_scores = np.zeros((0, len(self.classifier.labels)))
        if windows:
            scored = await self.batcher.submit(windows, cost=sum(len(ids) for ids in windows))
            model_scores = np.array([score.scores for score in scored])
        results = plan.finish(model_scores)
        by_student = sum(tier == "student" for _, tier in results)
        self._on_answered("student", by_student)
        self._on_answered("model", len(results) - by_student)
        return results

    def _prepare(
        self, texts: Sequence[str], check: Callable[[Sequence[str]], Sequence[int]] | None, use_student: bool
    ) -> tuple[Sequence[int] | None, Plan | None]:
        tokens = check(texts) if check is not None else None
        plan = self.cascade.plan(self.classifier, texts) if use_student and self.cascade is not None else None
        return tokens, plan
