"""One model replica: a model directory loaded once, turning batches of rows into output tables.

It scores as the server does, from the same settings (``ServingSettings``: precision, windows, the cascade, the
token limit per text) and through the same inference core: a text the student is sure of is the student's, the
rest the transformer's; decisions come from ``inference.decisions.decide``. A row the server would refuse (not a
string, blank, not valid Unicode, over ``COCKATOO_MAX_TEXT_TOKENS``) gets the reason in its ``error`` column and
no scores; the rows around it are scored as usual.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa

from cockatoo_ml.bulk.inputs import Batch, Columns
from cockatoo_ml.bulk.outputs import PartSummary
from cockatoo_ml.errors import ConfigError
from cockatoo_ml.inference.budget import OverBudgetError, TokenBudget
from cockatoo_ml.inference.cascade import Tier
from cockatoo_ml.inference.classifier import TextScore
from cockatoo_ml.inference.decisions import decide
from cockatoo_ml.inference.loading import check_model_dir, load_scorer
from cockatoo_ml.inference.runtime import HeapTrimmer
from cockatoo_ml.registry.serving import ServingSettings

log = logging.getLogger(__name__)

# Output columns besides one score per label and the id column.
POSITION_COLUMNS = ("file", "row")
DECISION_COLUMNS = ("positive_labels", "flagged", "top_label", "tier", "windows", "error")


@dataclass(frozen=True)
class Scored:
    """A text's scores and who answered it."""

    score: TextScore
    tier: Tier


class BatchScorer:
    """Loads ``settings.model_dir`` once (as the server would) and scores batches with it."""

    def __init__(self, settings: ServingSettings, columns: Columns) -> None:
        check_model_dir(settings.model_dir)
        self.classifier, self.cascade = load_scorer(settings)
        self.labels = tuple(self.classifier.labels)
        self.thresholds = dict(self.classifier.thresholds)
        self.columns = columns
        # The server's limit on one text; a request's total does not apply to rows scored one batch at a time.
        self.budget = TokenBudget(self.classifier.count_tokens, settings.max_text_tokens, settings.max_text_tokens)
        # Batches of every length allocate and free activations of every size: hand the freed heap back after
        # each, as the server does, so that memory stays flat over millions of rows.
        self.trim_heap = HeapTrimmer()
        check_output_columns(self.labels, columns)

    def score_texts(self, texts: Sequence[str]) -> list[Scored]:
        """Texts through the cascade when the model has one (and it is on), else through the transformer alone."""
        if not texts:
            return []
        if self.cascade is not None:
            return [Scored(score, tier) for score, tier in self.cascade.score(self.classifier, texts)]
        return [Scored(score, "model") for score in self.classifier.score(texts)]

    def over_budget(self, text: str) -> str | None:
        """Why ``text`` is too long for the model, as the server would say it, or None."""
        try:
            self.budget.count([text], "text", single=True)
        except OverBudgetError as exc:
            return str(exc)
        return None

    def __call__(self, batch: Batch) -> tuple[pa.Table, PartSummary]:
        rows = batch.rows
        errors = list(rows.problems)
        for index, (text, problem) in enumerate(zip(rows.texts, errors, strict=True)):
            if problem is None and text is not None:
                errors[index] = self.over_budget(text)
        todo = [i for i, error in enumerate(errors) if error is None]
        scored: list[Scored | None] = [None] * len(rows)
        for index, result in zip(todo, self.score_texts([rows.texts[i] or "" for i in todo]), strict=True):
            scored[index] = result
        self.trim_heap()
        return self.table(batch, scored, errors)

    def table(
        self, batch: Batch, scored: Sequence[Scored | None], errors: Sequence[str | None]
    ) -> tuple[pa.Table, PartSummary]:
        """The part's rows: position, id, one score per label, decisions, tier, windows, error."""
        summary = PartSummary(rows=len(scored), positives=dict.fromkeys(self.labels, 0))
        scores: dict[str, list[float | None]] = {label: [] for label in self.labels}
        positive: list[list[str] | None] = []
        flagged: list[bool | None] = []
        top: list[str | None] = []
        tiers: list[str | None] = []
        windows: list[int | None] = []
        for result in scored:
            if result is None:
                summary.errors += 1
                for label in self.labels:
                    scores[label].append(None)
                for column in (positive, flagged, top, tiers, windows):
                    column.append(None)
                continue
            decision = decide(result.score.scores, self.labels, self.thresholds)
            for label, value in zip(self.labels, result.score.scores, strict=True):
                scores[label].append(value)
            positive.append(decision.positive_labels)
            flagged.append(decision.flagged)
            top.append(decision.top_label)
            tiers.append(result.tier)
            windows.append(result.score.windows)
            summary.flagged += decision.flagged
            for label in decision.positive_labels:
                summary.positives[label] += 1
            summary.tiers[result.tier] = summary.tiers.get(result.tier, 0) + 1
        columns: dict[str, pa.Array] = {
            "file": pa.array([batch.file.url] * len(scored), pa.string()).dictionary_encode(),
            "row": pa.array(range(batch.first_row, batch.first_row + len(scored)), pa.int64()),
        }
        if self.columns.id is not None and batch.rows.ids is not None:
            columns[self.columns.id] = batch.rows.ids
        for label in self.labels:
            columns[label] = pa.array(scores[label], pa.float64())
        columns |= {
            "positive_labels": pa.array(positive, pa.list_(pa.string())),
            "flagged": pa.array(flagged, pa.bool_()),
            "top_label": pa.array(top, pa.string()),
            "tier": pa.array(tiers, pa.string()),
            "windows": pa.array(windows, pa.int32()),
            "error": pa.array(errors, pa.string()),
        }
        return pa.table(columns), summary


def check_output_columns(labels: Sequence[str], columns: Columns) -> None:
    """Every output column has its own name: the id column must not share one with a label or a fixed column."""
    fixed = (*POSITION_COLUMNS, *DECISION_COLUMNS)
    clash = sorted(set(labels) & set(fixed))
    if clash:
        raise ConfigError(f"the model has a label named {clash[0]!r}, which is also an output column of score.py")
    if columns.id is not None and columns.id in (*fixed, *labels):
        raise ConfigError(
            f"--id-column {columns.id!r} has the name of an output column ({', '.join((*fixed, *labels))}); rename "
            "it in the input"
        )
