"""The cascade: a cheap student answers the texts it is sure of, the transformer (through the micro-batcher) the rest.

``<model dir>/student/`` (written by ``distill.py``) holds the student and, per label, the bands of its scores
where it agreed with the transformer on validation at least 99.5% of the time (``cascade.json``). A text is
answered by the student when its score is inside the band on every label and it fits in one of the
transformer's windows (the bands were measured on such texts only; see ``distillation/run.py``); the student runs
in the request's own task, on a worker thread, so the event loop stays free. A request with its own
``threshold`` goes to the transformer: the bands hold for the tuned thresholds only.
"""

from __future__ import annotations

import asyncio
import json
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from cockatoo_ml.distillation.bands import Band, bands_from_dict, sure
from cockatoo_ml.distillation.students import Student
from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.registry import distillation as defaults
from cockatoo_ml.serving.batcher import MicroBatcher
from cockatoo_ml.serving.model import TextClassifier, TextScore, first_line

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
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, zipfile.BadZipFile) as exc:
            raise ModelLoadError(f"cannot load the cascade's student in {folder} ({first_line(exc)}); {fix}") from None
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

    def answer(self, texts: Sequence[str], fits_one_window: Sequence[bool]) -> tuple[np.ndarray, np.ndarray]:
        """The student's scores for every text and whether it is sure of each (every label, one window)."""
        scores = self.student.scores(texts)
        return scores, sure(scores, self.bands).all(axis=1) & np.asarray(fits_one_window, dtype=bool)


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
        self, texts: Sequence[str], student_allowed: bool = True, tokens: Sequence[int] | None = None
    ) -> list[tuple[TextScore, Tier]]:
        """Each text's scores and the tier that answered; ``tokens`` (each text's count, if known) is what the
        texts sent on to the transformer cost in the batcher's queue."""
        results: list[tuple[TextScore, Tier] | None] = [None] * len(texts)
        rest = list(range(len(texts)))
        if self.cascade is not None and student_allowed:
            scores, sure_of = await asyncio.to_thread(self._student_pass, texts, tokens)
            for i in np.flatnonzero(sure_of).tolist():
                results[i] = (TextScore(tuple(map(float, scores[i])), 1), "student")
            rest = [int(i) for i in np.flatnonzero(~sure_of)]
            self._on_answered("student", len(texts) - len(rest))
        if rest:
            cost = sum(tokens[i] for i in rest) if tokens is not None else 0
            scored = await self.batcher.submit([texts[i] for i in rest], cost=cost)
            for i, score in zip(rest, scored, strict=True):
                results[i] = (score, "model")
            self._on_answered("model", len(rest))
        return results  # type: ignore[return-value]  # every slot is filled above

    def _student_pass(self, texts: Sequence[str], tokens: Sequence[int] | None) -> tuple[np.ndarray, np.ndarray]:
        assert self.cascade is not None
        # The token budget has already counted each text (without special tokens, as windows are cut): reuse that
        # rather than tokenizing every text a second time on the request path.
        one_window = (
            [n <= self.classifier.content for n in tokens]
            if tokens is not None
            else fits_one_window(self.classifier, texts)
        )
        return self.cascade.answer(texts, one_window)


def fits_one_window(classifier: TextClassifier, texts: Sequence[str]) -> list[bool]:
    """Whether the transformer would score each text in a single window (as ``TextClassifier._windows`` cuts)."""
    encoded = classifier.tokenizer(list(texts), add_special_tokens=False, verbose=False)["input_ids"]
    return [len(ids) <= classifier.content for ids in encoded]
