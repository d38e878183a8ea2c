"""Rows to evaluate: a prepared split, or declared sources read exactly as prepare_data.py reads them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from cockatoo_ml.data.contract import features, load_processed, save_processed
from cockatoo_ml.data.prepare import PrepareSettings, prepare
from cockatoo_ml.errors import DataError
from cockatoo_ml.evaluation.data import rows_from_sources, rows_from_split
from cockatoo_ml.registry.labels import DEFAULT_LABELS
from tests.conftest import LABELS, make_rows

SOURCES_TOML = """
[[sources]]
name = "chat"
format = "jsonl"
text_column = "text"
unannotated = ["scam"]
[sources.labels.violence]
columns = ["violence"]
[sources.labels.harassment]
columns = ["harassment"]

[[sources]]
name = "sms"
format = "csv"
text_column = "body"
[sources.labels.scam]
columns = ["kind"]
values = { phish = 1, ham = 0, spam = "unknown" }
"""

CHAT = [
    '{"text": "I will  hurt you", "violence": 1, "harassment": 1}',
    '{"text": "have a nice day", "violence": 0, "harassment": 0}',
    '{"text": "you idiot", "violence": 0, "harassment": 1}',
    '{"text": "   ", "violence": 0, "harassment": 0}',
    '{"text": "no labels at all"}',
    '{"text": "have a nice day", "violence": 0, "harassment": 1}',
    '{broken json',
]
SMS = "body,kind\nverify your account at bit.ly/x,phish\nsee you at 5,ham\nbuy cheap pills,spam\nyou idiot,ham\n"


@pytest.fixture
def sources_file(tmp_path: Path) -> Path:
    (tmp_path / "raw" / "chat").mkdir(parents=True)
    (tmp_path / "raw" / "sms").mkdir(parents=True)
    (tmp_path / "raw" / "chat" / "a.jsonl").write_text("\n".join(CHAT) + "\n")
    (tmp_path / "raw" / "sms" / "b.csv").write_text(SMS)
    (tmp_path / "sources.toml").write_text(SOURCES_TOML)
    return tmp_path / "sources.toml"


def test_split_rows_keep_text_labels_mask_and_source(tiny_processed_dir: Path) -> None:
    rows = rows_from_split(tiny_processed_dir, "validation")
    dataset, names = load_processed(tiny_processed_dir)
    assert rows.label_names == tuple(names) == LABELS and len(rows) == 36
    assert rows.texts == dataset["validation"]["text"]
    np.testing.assert_array_equal(rows.labels, np.asarray(dataset["validation"]["labels"]))
    np.testing.assert_array_equal(rows.label_mask, np.asarray(dataset["validation"]["label_mask"]))
    assert rows.sources.tolist() == dataset["validation"]["source"]
    assert rows.label_mask.min() == 0  # the fixture's masked nsfw cells came through


def test_empty_or_unknown_split_is_an_error(tmp_path: Path) -> None:
    empty = Dataset.from_dict({name: [] for name in features()}, features=features())
    full = Dataset.from_list(make_rows(6), features=features())
    save_processed(DatasetDict({"train": full, "validation": full, "test": empty}), tmp_path / "d", LABELS)
    with pytest.raises(DataError, match="'test' split .* is empty"):
        rows_from_split(tmp_path / "d", "test")
    with pytest.raises(DataError, match="not one of"):
        rows_from_split(tmp_path / "d", "holdout")
    with pytest.raises(DataError, match="no prepared dataset"):
        rows_from_split(tmp_path / "nothing", "test")


def test_sources_are_read_as_prepare_data_reads_them(sources_file: Path, tmp_path: Path) -> None:
    rows = rows_from_sources(sources_file, DEFAULT_LABELS, raw_dir=tmp_path / "raw")  # what prepare labels
    prepare(PrepareSettings(sources=str(sources_file), raw_dir=str(tmp_path / "raw"), output=str(tmp_path / "out")))
    dataset, _ = load_processed(tmp_path / "out")
    prepared = {
        text: (labels, mask, source)
        for split in dataset.values()
        for text, labels, mask, source in zip(split["text"], split["labels"], split["label_mask"], split["source"])
    }
    # The same rows (cleaned, blank and label-less rows dropped, duplicates merged), only not split.
    assert sorted(rows.texts) == sorted(prepared) and len(rows) == 5
    for i, text in enumerate(rows.texts):
        labels, mask, source = prepared[text]
        assert rows.labels[i].tolist() == labels and rows.label_mask[i].tolist() == mask and rows.sources[i] == source
    assert "I will hurt you" in rows.texts  # whitespace collapsed as prepare does
    merged = rows.texts.index("have a nice day")
    assert rows.labels[merged, LABELS.index("harassment")] == 1  # positive if any known copy says so
    both = rows.texts.index("you idiot")  # in chat and in sms: one row knowing what either copy knows
    assert rows.label_mask[both].tolist() == [1, 1, 0, 1, 1] and rows.labels[both].tolist() == [0, 0, 0, 1, 1]
    assert rows.sources[both] == "chat"  # the first copy's source


def test_only_selects_sources(sources_file: Path, tmp_path: Path) -> None:
    rows = rows_from_sources(sources_file, LABELS, raw_dir=tmp_path / "raw", only=["sms"])
    assert set(rows.sources) == {"sms"} and len(rows) == 3  # "buy cheap pills" has no known label


def test_sources_with_labels_the_model_lacks_are_an_error(sources_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"source chat names label\(s\) \['violence'\] that the model does not predict"):
        rows_from_sources(sources_file, ("scam", "harassment"), raw_dir=tmp_path / "raw")


def test_sources_with_nothing_to_evaluate_are_an_error(sources_file: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no rows were loaded"):
        rows_from_sources(sources_file, LABELS, raw_dir=tmp_path / "elsewhere")
