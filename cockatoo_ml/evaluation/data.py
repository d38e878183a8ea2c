"""The rows an evaluation scores: a split of a prepared dataset, or declared sources read whole.

Sources are read exactly as ``prepare_data.py`` reads them (the data stage's loading, label mapping, cleaning
and de-duplication), but nothing is split off: every kept row is evaluated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cockatoo_ml.data.contract import SPLITS, load_processed
from cockatoo_ml.data.prepare import PrepareSettings, SourceReport, clean_texts, deduplicate, load_all, resolve_sources
from cockatoo_ml.data.sources import SourceSpec
from cockatoo_ml.errors import DataError

log = logging.getLogger(__name__)


@dataclass
class EvalRows:
    """Texts with their labels (1/0), which labels are known (``label_mask``) and where each row came from."""

    texts: list[str]
    labels: np.ndarray  # float32 (rows, labels); 0.0 where unknown
    label_mask: np.ndarray  # float32 (rows, labels); 1.0 = known
    sources: np.ndarray  # str per row
    label_names: tuple[str, ...]
    description: str  # what these rows are, for the report ("test split of DIR", "sources FILE")

    def __post_init__(self) -> None:
        self.labels = np.asarray(self.labels, dtype=np.float32).reshape(len(self.texts), len(self.label_names))
        self.label_mask = np.asarray(self.label_mask, dtype=np.float32).reshape(self.labels.shape)
        self.sources = np.asarray(self.sources, dtype=object)
        if len(self.sources) != len(self.texts):
            raise ValueError(f"{len(self.texts)} texts but {len(self.sources)} sources")

    def __len__(self) -> int:
        return len(self.texts)


def rows_from_split(data_dir: Path, split: str) -> EvalRows:
    """One split of a prepared dataset (``prepare_data.py`` output); an empty or absent split is an error."""
    if split not in SPLITS:
        raise DataError(f"split {split!r} is not one of {SPLITS}")
    if _saved_empty(Path(data_dir) / split):
        raise DataError(f"the {split!r} split of {data_dir} is empty: nothing to evaluate")
    dataset, label_names = load_processed(Path(data_dir))
    if split not in dataset:
        raise DataError(f"{data_dir} has no {split!r} split (it has {sorted(dataset)}); prepare it again")
    part = dataset[split]
    if len(part) == 0:
        raise DataError(f"the {split!r} split of {data_dir} is empty: nothing to evaluate")
    return EvalRows(
        texts=list(part["text"]),
        labels=np.asarray(part["labels"], dtype=np.float32),
        label_mask=np.asarray(part["label_mask"], dtype=np.float32),
        sources=np.asarray(part["source"], dtype=object),
        label_names=tuple(label_names),
        description=f"{split} split of {data_dir}",
    )


def _saved_empty(split_dir: Path) -> bool:
    """A split saved with no rows has no data files, and ``datasets`` fails to load it with an IndexError: say
    what is wrong before loading."""
    state = split_dir / "state.json"
    try:
        return state.is_file() and not json.loads(state.read_text()).get("_data_files")
    except (ValueError, AttributeError):
        return False  # unreadable: let the loader report it


def check_source_labels(specs: Sequence[SourceSpec], label_names: Sequence[str], where: str) -> None:
    """A source that maps (or declares unannotated) a label the model does not predict was written for another
    label set: evaluating it would silently drop that label, so it is an error."""
    known = set(label_names)
    for spec in specs:
        foreign = sorted((set(spec.labels) | set(spec.unannotated)) - known)
        if foreign:
            raise DataError(
                f"{where}: source {spec.name} names label(s) {foreign} that the model does not predict "
                f"(its labels: {', '.join(label_names)}); evaluate it with a model of that label set"
            )


def rows_from_sources(
    sources_file: Path, label_names: Sequence[str], raw_dir: Path | None = None, only: Sequence[str] = ()
) -> EvalRows:
    """Every row of the declared sources, read, mapped, cleaned and de-duplicated as ``prepare_data.py`` does
    (rows that end up empty or with no known label are dropped there too), with no split."""
    settings = PrepareSettings(sources=str(sources_file), raw_dir=str(raw_dir or ""), only=list(only))
    specs, resolved_raw_dir, origin = resolve_sources(settings)
    check_source_labels(specs, label_names, origin)
    reports = [SourceReport(spec.name) for spec in specs]
    loaded = load_all(specs, resolved_raw_dir, list(label_names), reports)
    text = clean_texts(loaded.text, settings.unicode_form)
    empty = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True).to_numpy(zero_copy_only=False)
    keep = ~(empty | np.isnan(loaded.labels).all(axis=1))
    if not keep.any():
        raise DataError(f"no row of {origin} has text and a known label: nothing to evaluate")
    unique, merged, source, _, _ = deduplicate(text.filter(pa.array(keep)), loaded.labels[keep], loaded.source[keep])
    names = np.array([spec.name for spec in specs], dtype=object)
    log.info("read %d rows (%d after cleaning and de-duplication) from %s", len(loaded.source), len(unique), origin)
    return EvalRows(
        texts=unique.to_pylist(),
        labels=np.nan_to_num(merged, nan=0.0),
        label_mask=~np.isnan(merged),
        sources=names[source],
        label_names=tuple(label_names),
        description=f"sources {origin} (whole, {resolved_raw_dir})",
    )
