"""The cascade in the server: the student answers in the request's own task, on a worker thread (so the event
loop stays free), and only the windows it is not sure of go through the micro-batcher to the transformer. A
request with its own ``threshold`` goes to the transformer whole: the bands hold for the tuned thresholds only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

import numpy as np

from cockatoo_ml.inference.cascade import Cascade, Plan, Tier
from cockatoo_ml.inference.classifier import TextClassifier, TextScore
from cockatoo_ml.serving.batcher import MicroBatcher


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
