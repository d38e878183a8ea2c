from pathlib import Path

import pytest

from cockatoo_ml.artifacts import load_thresholds, save_thresholds
from cockatoo_ml.data.contract import META_FILE, load_processed
from cockatoo_ml.errors import DataError


def test_load_processed_round_trip(tiny_processed_dir: Path, labels: tuple[str, ...]) -> None:
    dataset, names = load_processed(tiny_processed_dir)
    assert names == list(labels)
    assert set(dataset) == {"train", "validation", "test"}
    row = dataset["train"][3]
    assert len(row["labels"]) == len(labels) and len(row["label_mask"]) == len(labels)
    assert row["label_mask"][labels.index("nsfw")] == 0.0


def test_load_processed_missing_dir_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=f"missing {META_FILE}.*prepare_data.py"):
        load_processed(tmp_path / "nope")


def test_thresholds_default_to_half_for_unnamed_labels(tmp_path: Path) -> None:
    save_thresholds(tmp_path, {"scam": 0.3})
    assert load_thresholds(tmp_path, ["scam", "nsfw"]) == {"scam": 0.3, "nsfw": 0.5}
    assert load_thresholds(tmp_path / "missing", ["scam"]) == {"scam": 0.5}
