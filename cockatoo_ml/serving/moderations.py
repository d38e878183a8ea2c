"""``POST /v1/moderations``: OpenAI's moderation API answered from the served model, so an application that calls
``client.moderations.create`` moves onto it by changing its client's ``base_url`` and ``api_key``.

The route (app.py) scores its texts exactly as ``/batch`` does; this module turns one text's scores into OpenAI's
result shape. Every label answers under its own name and, where ``COCKATOO_OPENAI_CATEGORIES`` gives it one,
under its OpenAI category too (``nsfw`` also as ``sexual``). OpenAI categories that no label answers for are left
out rather than reported as 0: a zero would claim the text was checked for self-harm and found clean. The
official SDK reads a category left out as ``None``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from cockatoo_ml.errors import CockatooError, ConfigError
from cockatoo_ml.inference.cascade import Tier
from cockatoo_ml.inference.decisions import decide
from cockatoo_ml.registry.serving import ServingSettings
from cockatoo_ml.serving.schemas import Moderation
from cockatoo_ml.settings import env_name

log = logging.getLogger(__name__)

APPLIED_INPUT_TYPES: list[Literal["text"]] = ["text"]  # this model reads text only


class UnknownModelError(CockatooError):
    """A /v1/moderations request named a model this server does not answer to (HTTP 400, ``param: model``)."""

    def __init__(self, name: str, served: str, aliases: Sequence[str]) -> None:
        also = f" (it also answers to {', '.join(aliases)})" if aliases else ""
        super().__init__(
            f"model {name!r} is not served here; this server serves {served!r}{also}: send one of these or leave "
            "model out"
        )


@dataclass(frozen=True)
class CategoryMap:
    """The served model's labels and the OpenAI categories they also answer as."""

    labels: tuple[str, ...]
    openai: Mapping[str, tuple[int, ...]]  # OpenAI category -> the indices of the labels that answer as it

    @classmethod
    def build(cls, labels: Sequence[str], wanted: Mapping[str, Sequence[str]]) -> CategoryMap:
        """``wanted`` (``ServingSettings.category_map()``) for this model: pairs for labels it lacks are left out;
        a category spelled like another of its own labels is a ConfigError (one key cannot mean two things)."""
        labels = tuple(labels)
        openai: dict[str, tuple[int, ...]] = {}
        for index, label in enumerate(labels):
            for category in wanted.get(label, ()):
                if category in labels and category != label:
                    raise ConfigError(
                        f"{env_name(ServingSettings, 'openai_categories')} maps {label} to {category!r}, which is "
                        f"also one of this model's own labels ({', '.join(labels)}); drop that pair"
                    )
                if category != label:  # harassment=harassment: the label's own key already says it
                    openai[category] = (*openai.get(category, ()), index)
        absent = sorted(set(wanted) - set(labels))
        if absent:
            variable = env_name(ServingSettings, "openai_categories")
            log.info("%s names labels this model does not have (left out): %s", variable, absent)
        return cls(labels, openai)

    def shown(self, wanted: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
        """For /health: each of the model's labels that answers as OpenAI categories, and which."""
        return {label: list(wanted[label]) for label in self.labels if wanted.get(label)}

    def moderation(self, scores: Sequence[float], thresholds: Mapping[str, float], tier: Tier) -> Moderation:
        """One text's result: ``flagged``, and every label's and OpenAI category's decision and score (a category's
        score is the highest of its labels', its decision whether any of them reaches its threshold)."""
        decision = decide(scores, self.labels, thresholds)
        positive, flagged = decision.positive_labels, decision.flagged
        categories = {label: label in positive for label in self.labels}
        category_scores = {label: float(value) for label, value in zip(self.labels, scores, strict=True)}
        for category, members in self.openai.items():
            categories[category] = any(self.labels[i] in positive for i in members)
            category_scores[category] = max(float(scores[i]) for i in members)
        return Moderation(
            flagged=flagged,
            categories=categories,
            category_scores=category_scores,
            category_applied_input_types={key: APPLIED_INPUT_TYPES for key in categories},
            tier=tier,
        )
