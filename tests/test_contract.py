import json
import logging
from pathlib import Path

import pytest

from cockatoo_ml.artifacts import load_thresholds, save_thresholds
from cockatoo_ml.data.contract import (
    META_FILE,
    SourceCredit,
    load_processed,
    load_source_credits,
    warn_non_commercial,
)
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


@pytest.mark.parametrize(
    ("licence", "non_commercial"),
    [
        ("CC-BY-NC-4.0", True),
        ("cc by-nc-sa 3.0", True),
        ("HatEval: CC-BY-NC-4.0 per the task organisers (non-commercial); TweetEval itself unrestricted", True),
        ("research and non-commercial use only", True),
        ("Noncommercial", True),
        ("NC", True),
        ("CC-BY-4.0", False),
        ("Apache-2.0 (repo card); Kaggle data CC0, comment text CC-BY-SA-3.0 (Wikipedia, copyleft)", False),
        ("MIT, Copyright (c) 2022 OpenAI Inc.", False),
        ("", False),
    ],
)
def test_non_commercial_licences_are_recognised(licence: str, non_commercial: bool) -> None:
    assert SourceCredit("s", licence, "", 1).non_commercial is non_commercial


def test_the_warning_names_every_non_commercial_source_and_only_those(caplog: pytest.LogCaptureFixture) -> None:
    credits = [SourceCredit("chat", "CC-BY-NC-4.0", "", 5), SourceCredit("mail", "MIT", "", 5),
               SourceCredit("tweets", "non-commercial", "", 5)]
    caplog.set_level(logging.WARNING)
    assert warn_non_commercial(credits, "the training data") == ["chat", "tweets"]
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and "mail" not in record.getMessage()
    assert "the training data contains non-commercial source(s): chat (CC-BY-NC-4.0); tweets" in record.getMessage()
    caplog.clear()
    assert warn_non_commercial(credits[1:2], "the training data") == [] and not caplog.records


def test_a_dataset_prepared_before_credits_were_recorded_has_none(tmp_path: Path) -> None:
    (tmp_path / META_FILE).write_text(json.dumps({"labels": ["scam"], "sources": ["a"], "seed": 1}))
    assert load_source_credits(tmp_path) == []
