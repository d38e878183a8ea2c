"""Text -> model inputs: tokenize each split once (cached by ``datasets.map``) and pad per batch.

Tokenization keeps no padding and records each row's token count in a ``length`` column, so the Trainer's
length-grouped sampler can put texts of similar length together and the collator pads only up to the
longest text in the batch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import DataCollatorWithPadding, PreTrainedTokenizerBase

LENGTH_COLUMN = "length"
TARGET_COLUMNS = ("labels", "label_mask")
_TOKENIZE_VERSION = "1"  # bump when tokenize_split changes what it writes, to invalidate old caches


def _tokenizer_digest(tokenizer: PreTrainedTokenizerBase) -> str:
    """A stable fingerprint of a tokenizer's vocabulary and rules (the fast tokenizer's JSON when it has one).

    ``datasets`` would otherwise hash the tokenizer object with dill, which is not stable across processes for
    fast tokenizers and silently defeats the cache."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is None:
        state: dict[str, Any] = {"vocab": tokenizer.get_vocab()}
    else:
        state = json.loads(backend.to_str())
        # Calling the tokenizer records its last truncation/padding settings in this state; they are per call.
        state.pop("truncation", None)
        state.pop("padding", None)
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()


def tokenize_split(split: Dataset, tokenizer: PreTrainedTokenizerBase, max_length: int, desc: str = "") -> Dataset:
    """Tokenize ``text`` (truncated to ``max_length``, unpadded); keep labels and label_mask; add ``length``.

    ``datasets.map`` caches the result next to the dataset's own files under a fingerprint of the input, the
    tokenizer and ``max_length``, so a second run (or every other process of a distributed run) reads it back
    instead of tokenizing again."""
    fingerprint = hashlib.sha256(
        "|".join([split._fingerprint, _tokenizer_digest(tokenizer), str(max_length), _TOKENIZE_VERSION]).encode()
    ).hexdigest()[:32]

    def encode(batch: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
        encoded = tokenizer(batch["text"], truncation=True, max_length=max_length)
        encoded[LENGTH_COLUMN] = [len(ids) for ids in encoded["input_ids"]]
        return dict(encoded)

    drop = [c for c in split.column_names if c not in TARGET_COLUMNS]
    return split.map(
        encode,
        batched=True,
        remove_columns=drop,
        new_fingerprint=fingerprint,
        desc=f"Tokenizing {desc}".strip(),
    )


def length_order(split: Dataset) -> np.ndarray:
    """Row indices of a tokenized split, shortest text first (stable): batches in this order pad little."""
    return np.argsort(np.asarray(split[LENGTH_COLUMN]), kind="stable")


def tokenize_dataset(
    dataset: DatasetDict, tokenizer: PreTrainedTokenizerBase, max_length: int, splits: Sequence[str] | None = None
) -> DatasetDict:
    names = [name for name in (splits or dataset.keys()) if name in dataset]
    return DatasetDict({name: tokenize_split(dataset[name], tokenizer, max_length, desc=name) for name in names})


class MultiLabelCollator:
    """Pads a batch of tokenized rows to its longest row (or to ``pad_to_length``) and stacks the float targets.

    ``pad_to_length`` reproduces the seed's fixed 256-token batches for the benchmark; ``pad_to_multiple_of``
    (8 on GPUs) keeps tensor-core friendly shapes."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        pad_to_length: int | None = None,
        pad_to_multiple_of: int | None = None,
    ) -> None:
        self._pad = DataCollatorWithPadding(
            tokenizer,
            padding="max_length" if pad_to_length else "longest",
            max_length=pad_to_length,
            pad_to_multiple_of=pad_to_multiple_of,
            return_tensors="pt",
        )

    def __call__(self, rows: Sequence[Mapping[str, Any]]) -> dict[str, torch.Tensor]:
        targets = {name: torch.tensor([row[name] for row in rows], dtype=torch.float32) for name in TARGET_COLUMNS}
        features = [{k: v for k, v in row.items() if k not in TARGET_COLUMNS and k != LENGTH_COLUMN} for row in rows]
        batch = dict(self._pad(features))
        batch.update(targets)
        return batch
