"""The cascade: a cheap student answers the windows of text it is sure of, the transformer the rest.

``<model dir>/student/`` (written by ``distill.py``) holds the student and, per label, the bands of its scores
where it agreed with the transformer at least 99.5% of the time, on windows it was never taught and again on
others the bands were not fitted on (``cascade.json``). Texts are
cut into the transformer's windows; the student scores every window, and only the windows it is not sure of (on
some label) go through the micro-batcher to the transformer. Each label keeps its maximum over a text's windows,
as the transformer alone does. A text whose windows are all sure is answered by the student alone (tier
``student``); one with any window left to the transformer says ``model``. So in a long e-mail only the passages
that need the transformer cost its time. This module plans and finishes a call; who runs the transformer on the
unsure windows (the server's micro-batcher, a bulk job's loop) is the caller's business.
"""

from __future__ import annotations

import functools
import json
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.inference.bands import Band, bands_from_dict, cascade_scores, sure
from cockatoo_ml.inference.classifier import TextClassifier, TextScore, WindowCut, first_line
from cockatoo_ml.inference.students import Student
from cockatoo_ml.registry import distillation as defaults

Tier = Literal["student", "model"]


@dataclass(frozen=True)
class Cascade:
    """A loaded student with its bands, for one classifier (same labels, same thresholds)."""

    student: Student
    bands: tuple[Band, ...]
    report: dict[str, Any]  # cascade.json as distill.py wrote it

    @classmethod
    def load(
        cls, folder: Path, classifier: TextClassifier, word_cache_mb: int = defaults.TFIDF_WORD_CACHE_MB
    ) -> Cascade:
        """Raise ``ModelLoadError`` (one line naming the fix) when the student cannot serve this classifier.
        ``word_cache_mb``: COCKATOO_STUDENT_WORD_CACHE_MB."""
        fix = f"rebuild it with `python distill.py --model {folder.parent}`, or set COCKATOO_CASCADE=off"
        try:
            report = json.loads((folder / defaults.CASCADE_FILE).read_text())
            student = Student.load(folder, word_cache_mb * 2**20)
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
    def held_out(self) -> dict[str, Any]:
        """The cascade's figures on texts neither taught to the student nor used to fit its bands (empty for a
        student written before distill.py held texts out: its "validation" figures were the fitting texts')."""
        return dict(self.report.get("held_out", {}))

    def plan(self, classifier: TextClassifier, texts: Sequence[str]) -> Plan:
        """Cut ``texts`` into the transformer's windows and let the student score each one."""
        cut = classifier.cut(texts, spans=True)
        scores = self.student.scores(cut.window_texts(texts))
        return Plan(len(texts), cut, scores, np.asarray(sure(scores, self.bands).all(axis=1)))

    def score(self, classifier: TextClassifier, texts: Sequence[str]) -> list[tuple[TextScore, Tier]]:
        """The cascade in this thread: the student's plan, the transformer on the unsure windows, the finish."""
        plan = self.plan(classifier, texts)
        scored = classifier.score(plan.model_windows)
        return plan.finish(np.array([result.scores for result in scored]).reshape(-1, len(classifier.labels)))


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


def load_cascade(
    model_dir: Path, enabled: bool, classifier: TextClassifier, word_cache_mb: int = defaults.TFIDF_WORD_CACHE_MB
) -> Cascade | None:
    """The cascade for ``model_dir``, or None when it is switched off or the model has no student."""
    folder = Path(model_dir) / defaults.STUDENT_DIR
    if not enabled or not folder.exists():
        return None
    return Cascade.load(folder, classifier, word_cache_mb)
