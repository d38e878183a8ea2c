"""The prepared-dataset contract between ``prepare_data.py`` (writer) and ``train_text.py`` (reader).

A prepared dataset is a ``datasets.DatasetDict`` saved with ``save_to_disk`` whose splits have the columns
``text`` (str), ``labels`` (float per label, 0.0 where unknown), ``label_mask`` (1.0 = known, 0.0 = the source
does not annotate that label) and ``source`` (str). The label names, in output order, live in ``META_FILE``
beside it, because a DatasetDict has no place of its own for them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from datasets import DatasetDict, Features, Sequence as SequenceFeature, Value, load_from_disk

from cockatoo_ml.errors import DataError

COLUMNS = ("text", "labels", "label_mask", "source")
SPLITS = ("train", "validation", "test")
META_FILE = "cockatoo_meta.json"
STATS_FILE = "label_stats.json"


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
    """Save a prepared DatasetDict and its label names."""
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
