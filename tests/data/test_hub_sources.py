"""Every Hub source of ``sources/hub.toml``, read from a small fixture in that dataset's exact layout and columns."""

from pathlib import Path

import pytest

from cockatoo_ml.data.prepare import SourceReport, load_source
from cockatoo_ml.data.sources import load_source_set, load_sources_toml
from cockatoo_ml.registry.paths import HUB_SOURCES

from .helpers import LABELS, as_lists

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "hub"
_ = None  # unknown
HUB = {spec.name: spec for spec in load_sources_toml(HUB_SOURCES).sources}


def test_hub_toml_is_the_default_source_set_and_suggests_no_raw_dir() -> None:
    default = load_source_set(None)
    assert default.origin == str(HUB_SOURCES) and default.raw_dir is None  # the scripts fall back to data/raw
    assert [spec.name for spec in default.sources] == list(HUB)
    assert {spec.hub_repo for spec in default.sources} == {
        "ealvaradob/phishing-dataset", "ucberkeley-dlab/measuring-hate-speech", "cardiffnlp/tweet_eval",
        "lmsys/toxic-chat", "tasksource/jigsaw_toxicity", "KoalaAI/Text-Moderation-Multilingual",
    }
    assert {name: spec.hub_config for name, spec in HUB.items() if spec.hub_config} == {
        "phishing": "texts", "tweet_eval_hate": "hate", "toxic_chat": "toxicchat0124",
    }


def load(spec):
    report = SourceReport(spec.name)
    loaded = load_source(spec, FIXTURES, LABELS, report)
    assert loaded is not None, report.status
    text, labels, _ = loaded
    return text.tolist(), as_lists(labels), report


def test_phishing_label_column_benign_is_not_scam() -> None:
    texts, labels, report = load(HUB["phishing"])
    assert [row[0] for row in labels] == [1.0, 0.0, 1.0, 0.0]
    assert all(row[1:] == [_, _, _] for row in labels)
    assert texts[1].startswith("Hi team") and report.files == 1


def test_measuring_hate_speech_aggregates_annotators_per_comment() -> None:
    texts, labels, report = load(HUB["measuring_hate_speech"])
    assert report.rows_read == 7 and len(texts) == 3  # 7 annotator rows, 3 comments
    # comment 101: score 2.1, violence mean 3.67; 102: -2.3, 0.0; 103: 0.4, 2.0
    assert labels == [[_, 1.0, _, 1.0], [_, 0.0, _, 0.0], [_, 0.0, _, 0.0]]


def test_tweet_eval_hate_reads_every_split_file() -> None:
    texts, labels, _report = load(HUB["tweet_eval_hate"])
    assert len(texts) == 4
    assert sorted(row[3] for row in labels) == [0.0, 0.0, 1.0, 1.0]
    assert all(row[:3] == [_, _, _] for row in labels)


def test_toxic_chat_toxicity_zero_is_negative_one_is_unknown() -> None:
    texts, labels, _report = load(HUB["toxic_chat"])
    by_text = dict(zip(texts, labels))
    assert by_text["Write a poem about the sea."] == [_, 0.0, 0.0, 0.0]
    assert by_text["Describe in explicit detail a sex scene between two coworkers."] == [_, _, _, _]
    assert by_text["How do I bake sourdough bread?"] == [_, 0.0, 0.0, 0.0]  # the test file is read too


def test_jigsaw_toxicity_threat_is_violence_toxic_insult_identity_hate_are_harassment() -> None:
    _texts, labels, _report = load(HUB["jigsaw_toxicity"])
    assert labels == [
        [_, 0.0, _, 0.0],
        [_, 0.0, _, 1.0],  # toxic + insult
        [_, 1.0, _, 1.0],  # toxic + threat
        [_, 0.0, _, 1.0],  # identity_hate
        [_, 0.0, _, 0.0],  # obscene only: profanity is not harassment, nsfw stays unknown
    ]


def test_text_moderation_multilingual_categories() -> None:
    texts, labels, _report = load(HUB["text_moderation_multilingual"])
    by_text = dict(zip(texts, labels))
    assert by_text["Wie spät ist es?"] == [_, 0.0, 0.0, 0.0]
    assert by_text["send nudes now"] == [_, 0.0, 1.0, 0.0]
    assert by_text["I will kill you tomorrow"] == [_, 1.0, 0.0, 1.0]
    assert by_text["all of them are subhuman scum"] == [_, 0.0, 0.0, 1.0]
    # S and S3 missing: nsfw unknown; H2 (hate/threatening) is violence and harassment
    assert by_text["they deserve to be burned alive"] == [_, 1.0, _, 1.0]


@pytest.mark.parametrize("spec", HUB.values(), ids=lambda s: s.name)
def test_every_hub_source_has_a_fixture(spec) -> None:
    assert spec.source_dir(FIXTURES).is_dir()
