"""The prepared-dataset contract between ``prepare_data.py`` (writer) and ``train_text.py`` (reader).

A prepared dataset is a ``datasets.DatasetDict`` saved with ``save_to_disk`` whose splits have the columns
``text`` (str), ``labels`` (float per label), ``label_mask`` (1.0 = known, 0.0 = the source does not annotate
that label) and ``source`` (str). Where ``label_mask`` is 0, ``labels`` is 0.0 (unknown), or 1.0 when the row is
positive for *at least one* of the labels marked so (a source's ``any_of`` flag, e.g. ToxicChat's ``toxicity``);
everything that counts known labels only reads it through the mask, and training's loss reads it as a noisy-OR.
The label names, in output order, live in ``META_FILE`` beside it, because a DatasetDict has no place of its own
for them, and so do the licence and citation of each source that has rows in it (``SourceCredit``), which
training copies into the model directory.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from datasets import DatasetDict, Features, Value, load_from_disk
from datasets import Sequence as SequenceFeature

from cockatoo_ml.errors import DataError

log = logging.getLogger(__name__)

COLUMNS = ("text", "labels", "label_mask", "source")
SPLITS = ("train", "validation", "test")
META_FILE = "cockatoo_meta.json"
STATS_FILE = "label_stats.json"
CREDITS_KEY = "source_credits"  # in META_FILE: one SourceCredit per source with rows in the dataset
# CC-BY-NC-4.0, CC BY-NC-SA, "non-commercial", "noncommercial use only", a bare NC.
NON_COMMERCIAL = re.compile(r"non[-\s]?commercial|\bNC\b", re.IGNORECASE)


@dataclass(frozen=True)
class SourceCredit:
    """A source in a prepared dataset and the terms it came under (from its spec's ``license`` / ``citation``)."""

    name: str
    license: str
    citation: str
    rows: int  # rows of this source in the dataset (prepared: all splits; training_settings.json: train split)

    @property
    def non_commercial(self) -> bool:
        return bool(NON_COMMERCIAL.search(self.license))


def features() -> Features:
    return Features(
        {
            "text": Value("string"),
            "labels": SequenceFeature(Value("float32")),
            "label_mask": SequenceFeature(Value("float32")),
            "source": Value("string"),
        }
    )


def save_processed(dataset: DatasetDict, path: Path, labels: Sequence[str], meta: dict[str, Any] | None = None) -> None:
    """Save a prepared DatasetDict and its label names; ``meta`` adds keys (``CREDITS_KEY``, the seed, ...)."""
    path = Path(path)
    dataset.save_to_disk(str(path))
    payload = {"labels": list(labels), **(meta or {})}
    (path / META_FILE).write_text(json.dumps(payload, indent=2, default=str) + "\n")


def load_processed(path: Path) -> tuple[DatasetDict, list[str]]:
    """Load a prepared DatasetDict and its label names, checking the contract."""
    path = Path(path)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise DataError(
            f"no prepared dataset at {path} (missing {META_FILE}); run `python prepare_data.py --output {path}` first"
        )
    labels = json.loads(meta_path.read_text())["labels"]
    dataset = load_from_disk(str(path))
    if not isinstance(dataset, DatasetDict):
        raise DataError(f"{path} holds a single Dataset, expected a DatasetDict with splits {SPLITS}")
    for split_name, split in dataset.items():
        missing = [c for c in COLUMNS if c not in split.column_names]
        if missing:
            raise DataError(f"split {split_name!r} of {path} lacks columns {missing}; found {split.column_names}")
    return dataset, list(labels)


def load_source_credits(path: Path) -> list[SourceCredit]:
    """The source credits saved with a prepared dataset (none for one prepared before they were recorded)."""
    meta = json.loads((Path(path) / META_FILE).read_text())
    return [SourceCredit(**credit) for credit in meta.get(CREDITS_KEY, [])]


def warn_non_commercial(credits: Iterable[SourceCredit], what: str) -> list[str]:
    """Log a warning naming the non-commercial sources among ``credits``; returns their names."""
    restricted = [credit for credit in credits if credit.non_commercial]
    if restricted:
        log.warning(
            "%s contains non-commercial source(s): %s. A model trained on it may not be used commercially; "
            "for such a model prepare the data without them (prepare_data.py --only with the other sources).",
            what,
            "; ".join(f"{credit.name} ({credit.license})" for credit in restricted),
        )
    return [credit.name for credit in restricted]
