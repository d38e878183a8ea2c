"""Tokenize once (cached), keep targets, record lengths; pad per batch."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from cockatoo_ml.data.contract import load_processed
from cockatoo_ml.training.tokenize import LENGTH_COLUMN, MultiLabelCollator, tokenize_dataset, tokenize_split


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path):
    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_tokenize_keeps_targets_and_records_unpadded_lengths(tiny_processed_dir: Path, tokenizer) -> None:
    dataset, _ = load_processed(tiny_processed_dir)
    tokenized = tokenize_dataset(dataset, tokenizer, max_length=24, splits=("train", "validation"))
    assert set(tokenized) == {"train", "validation"}
    train = tokenized["train"]
    assert set(train.column_names) >= {"input_ids", "attention_mask", "labels", "label_mask", LENGTH_COLUMN}
    assert "text" not in train.column_names and "source" not in train.column_names
    lengths = train[LENGTH_COLUMN]
    assert all(len(ids) == n for ids, n in zip(train["input_ids"], lengths))
    assert max(lengths) == 24  # truncated to max_length
    assert min(lengths) < 24  # and not padded up to it
    assert train["labels"] == dataset["train"]["labels"]
    assert train["label_mask"] == dataset["train"]["label_mask"]


def test_second_tokenization_reads_the_cache(tiny_processed_dir: Path, tokenizer) -> None:
    dataset, _ = load_processed(tiny_processed_dir)
    first = tokenize_split(dataset["test"], tokenizer, max_length=20)
    reloaded, _ = load_processed(tiny_processed_dir)  # a new process would see the same files
    fresh_tokenizer = AutoTokenizer.from_pretrained(tokenizer.name_or_path)
    second = tokenize_split(reloaded["test"], fresh_tokenizer, max_length=20)
    assert first.cache_files and second.cache_files == first.cache_files
    other = tokenize_split(reloaded["test"], fresh_tokenizer, max_length=21)
    assert other.cache_files != first.cache_files  # another window is another cache entry


def test_collator_pads_to_the_longest_row_and_stacks_targets(tokenizer) -> None:
    rows = [
        {"input_ids": [101, 7, 102], "attention_mask": [1, 1, 1], "labels": [1.0, 0.0], "label_mask": [1.0, 0.0], "length": 3},
        {"input_ids": [101, 102], "attention_mask": [1, 1], "labels": [0.0, 1.0], "label_mask": [1.0, 1.0], "length": 2},
    ]
    batch = MultiLabelCollator(tokenizer)(rows)
    assert batch["input_ids"].shape == (2, 3)
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    assert batch["labels"].dtype == torch.float32 and batch["labels"].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    assert batch["label_mask"].tolist() == [[1.0, 0.0], [1.0, 1.0]]
    assert LENGTH_COLUMN not in batch

    fixed = MultiLabelCollator(tokenizer, pad_to_length=16)(rows)
    assert fixed["input_ids"].shape == (2, 16)
    multiple = MultiLabelCollator(tokenizer, pad_to_multiple_of=8)(rows)
    assert multiple["input_ids"].shape == (2, 8)
