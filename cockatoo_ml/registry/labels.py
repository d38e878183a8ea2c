"""The label set. Order is the model's output index; another label set is a change to ``DEFAULT_LABELS``."""

from __future__ import annotations

import os

DEFAULT_LABELS: tuple[str, ...] = ("scam", "violence", "nsfw", "harassment")


def active_labels() -> tuple[str, ...]:
    """The labels for this run: ``COCKATOO_LABELS`` (comma-separated) or the registry default."""
    raw = os.environ.get("COCKATOO_LABELS", "").strip()
    if not raw:
        return DEFAULT_LABELS
    labels = tuple(part.strip() for part in raw.split(",") if part.strip())
    if len(set(labels)) != len(labels):
        from cockatoo_ml.errors import ConfigError

        raise ConfigError(f"COCKATOO_LABELS has a repeated label: {raw!r}")
    return labels
