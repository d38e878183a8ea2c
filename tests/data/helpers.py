"""Small builders shared by the data tests."""

from __future__ import annotations

import numpy as np

from cockatoo_ml.data.sources import LabelRule, ReaderOptions, SourceSpec

LABELS = ("scam", "violence", "nsfw", "harassment")
WITH_UNSAFE = (*LABELS, "unsafe")  # the default label set: the four and the umbrella


def spec(name: str = "src", fmt: str = "csv", text: str = "text", **kwargs) -> SourceSpec:
    """A source spec with one harassment rule on column ``label`` unless ``labels`` is given."""
    kwargs.setdefault("labels", {"harassment": LabelRule(columns=("label",))})
    kwargs.setdefault("reader", ReaderOptions())
    return SourceSpec(name=name, format=fmt, text_column=text, **kwargs)


def as_lists(labels: np.ndarray) -> list[list[float | None]]:
    """Label matrix rows with NaN shown as None, for readable equality checks."""
    return [[None if np.isnan(v) else float(v) for v in row] for row in labels]
