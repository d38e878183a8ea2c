"""sources/public_corpus.toml against the real files in ../shared/datasets (counts from each SOURCE.md)."""

import dataclasses
import gzip
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATASETS

from cockatoo_ml.data.contract import load_processed
from cockatoo_ml.data.prepare import PrepareSettings, SourceReport, load_source, prepare
from cockatoo_ml.data.sources import load_sources_toml
from cockatoo_ml.registry.paths import PUBLIC_CORPUS_SOURCES

from .helpers import WITH_UNSAFE as LABELS

# These tests read the real datasets beside the repo; without them they fail (never skip) with this hint.
assert SHARED_DATASETS.is_dir(), f"the public datasets are expected in {SHARED_DATASETS} (clone the repo beside shared/)"
SPECS = {spec.name: spec for spec in load_sources_toml(PUBLIC_CORPUS_SOURCES).sources}


def counts(name: str) -> dict[str, tuple[int, int, int]]:
    """(positive, negative, unknown) per label for one source, straight after mapping (every row: no cap)."""
    loaded = load_source(dataclasses.replace(SPECS[name], max_rows=0), SHARED_DATASETS, LABELS, SourceReport(name))
    assert loaded is not None
    labels = loaded[1]
    return {
        label: (int(np.sum(labels[:, j] == 1)), int(np.sum(labels[:, j] == 0)), int(np.isnan(labels[:, j]).sum()))
        for j, label in enumerate(LABELS)
    }


@pytest.mark.parametrize(
    ("name", "label", "expected"),
    [
        ("tweeteval_hate", "harassment", (3554 + 427, 5211 + 573, 0)),
        ("tweeteval_offensive", "harassment", (3940 + 458, 7970 + 865, 0)),
        ("toxicchat", "harassment", (0, 2345, 349)),
        ("toxicchat", "nsfw", (0, 2345, 349)),
        ("toxicchat", "scam", (0, 0, 2694)),
        ("sms_spam_collection", "scam", (0, 3837, 599)),
        ("sms_smishing", "scam", (491 + 18, 3876, 368 + 16)),
        ("davidson_hate_offensive", "harassment", (1137, 3349, 15340)),
        ("ethos", "harassment", (352, 799 - 352, 0)),
        ("ethos_multi_label", "violence", (114, 352 - 114, 0)),
        ("jigsaw_toxic", "violence", (2, 265, 0)),
        ("jigsaw_toxic", "nsfw", (0, 0, 267)),
    ],
)
def test_public_source_label_counts_match_source_md(name: str, label: str, expected: tuple[int, int, int]) -> None:
    assert counts(name)[label] == expected


def test_jigsaw_harassment_is_any_of_its_four_columns() -> None:
    frame = pd.read_csv(SHARED_DATASETS / "jigsaw_toxic" / "train.csv")
    positive = int(frame[["toxic", "severe_toxic", "insult", "identity_hate"]].eq(1).any(axis=1).sum())
    assert counts("jigsaw_toxic")["harassment"] == (positive, 267 - positive, 0)


def test_openai_moderation_missing_keys_are_unknown_not_negative() -> None:
    with gzip.open(SHARED_DATASETS / "openai_moderation" / "samples-1680.jsonl.gz", "rt") as handle:
        records = [json.loads(line) for line in handle]

    def expected(keys: tuple[str, ...]) -> tuple[int, int, int]:
        pos = sum(any(r.get(k) == 1 for k in keys) for r in records)
        neg = sum(all(r.get(k) == 0 for k in keys) for r in records)
        return pos, neg, len(records) - pos - neg

    got = counts("openai_moderation")
    assert got["nsfw"] == expected(("S", "S3"))
    assert got["violence"] == expected(("V", "V2", "H2"))
    assert got["harassment"] == expected(("H", "HR", "H2"))
    assert got["nsfw"][2] > 500  # S is labelled on only 787 of 1344 prompts


def test_prepare_all_thirteen_public_datasets(tmp_path: Path) -> None:
    settings = PrepareSettings(sources=str(PUBLIC_CORPUS_SOURCES), raw_dir=str(SHARED_DATASETS), output=str(tmp_path / "out"))
    stats = prepare(settings)
    assert all(report["status"] == "ok" for report in stats["sources"])
    kept = {report["name"]: report["kept"] for report in stats["sources"]}
    assert all(kept[name] > 0 for name in kept if name != "ethos_multi_label")  # its texts merge into ethos
    for split, per_label in stats["labels"].items():
        for label, numbers in per_label.items():
            assert numbers["positive"] > 0 and numbers["negative"] > 0, (split, label)
    dataset, _ = load_processed(tmp_path / "out")
    assert sum(len(split) for split in dataset.values()) == sum(stats["rows"].values())
    assert len(set().union(*(split["text"] for split in dataset.values()))) == sum(stats["rows"].values())


def test_toxicchat_toxic_prompts_are_an_any_of_flag_over_the_three_labels_it_covers() -> None:
    loaded = load_source(SPECS["toxicchat"], SHARED_DATASETS, LABELS, SourceReport("toxicchat"))
    assert loaded is not None
    _, labels, any_of = loaded
    flagged = any_of.any(axis=1)
    assert int(flagged.sum()) == 349  # the rows whose labels are unknown above: toxicity = 1
    assert any_of[flagged].all(axis=0).tolist() == [False, True, True, True, False]  # never scam nor unsafe
    assert np.isnan(labels[flagged][:, 1:4]).all()
    assert (labels[flagged][:, 4] == 1).all()  # the flag itself is what unsafe means
