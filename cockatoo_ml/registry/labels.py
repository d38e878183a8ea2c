"""The label set. Order is the model's output index; another label set is a change to ``DEFAULT_LABELS``."""

from __future__ import annotations

from dataclasses import dataclass

from cockatoo_ml.settings import from_env, setting

DEFAULT_LABELS: tuple[str, ...] = ("scam", "violence", "nsfw", "harassment", "unsafe")
# The broad label: "a moderation system should flag this text". It is positive wherever any other active label
# is (prepare_data.py derives that for every source); a source's own rule adds its broad flag (ToxicChat's
# toxicity) and its negatives, which only a source whose annotation covers everything unsafe can give
# (cockatoo_ml/data/sources.py). A label set without it simply has no umbrella.
UMBRELLA_LABEL = "unsafe"


def _label_list(raw: str) -> tuple[str, ...]:
    labels = tuple(part.strip() for part in raw.split(",") if part.strip())
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise ValueError(f"repeated label(s) {repeated}")
    return labels


@dataclass(frozen=True)
class LabelSettings:
    labels: tuple[str, ...] = setting(
        DEFAULT_LABELS,
        env="COCKATOO_LABELS",
        flag=False,
        convert=_label_list,
        help="The label set, comma-separated, in the model's output order (prepare_data.py).",
    )


def active_labels() -> tuple[str, ...]:
    """The labels for this run: ``COCKATOO_LABELS`` (comma-separated) or the registry default."""
    return from_env(LabelSettings).labels
