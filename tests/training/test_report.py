"""Model card and plots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cockatoo_ml.data.contract import SourceCredit
from cockatoo_ml.metrics.multilabel import multilabel_metrics
from cockatoo_ml.training.report import (
    AT_DEFAULT,
    AT_TUNED,
    metrics_table,
    training_data_table,
    write_model_card,
    write_plots,
)

NAMES = ("scam", "nsfw")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def predictions():
    rng = np.random.default_rng(1)
    labels = (rng.random((30, 2)) > 0.5).astype(float)
    probs = np.clip(labels * 0.4 + rng.random((30, 2)) * 0.6, 0, 1)
    mask = np.ones_like(labels)
    mask[:, 1] = 0  # nsfw never known: the plots must cope
    return probs, labels, mask


def test_plots_are_pngs(tmp_path: Path) -> None:
    paths = write_plots(tmp_path, *predictions(), NAMES, {"scam": 0.4, "nsfw": 0.5}, split="validation")
    assert [p.relative_to(tmp_path).as_posix() for p in paths] == ["plots/pr_curves.png", "plots/f1_vs_threshold.png"]
    for path in paths:
        assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 5000


def test_model_card_names_base_model_sources_labels_and_metrics(tmp_path: Path) -> None:
    probs, labels, mask = predictions()
    thresholds = {"scam": 0.42, "nsfw": 0.5}
    results = {
        "validation": {
            "rows": 30,
            AT_DEFAULT: multilabel_metrics(probs, labels, mask, NAMES, 0.5),
            AT_TUNED: multilabel_metrics(probs, labels, mask, NAMES, thresholds),
        },
        "global_step": 300,
    }
    card = write_model_card(
        tmp_path,
        title="constellation_one_text",
        base_model="microsoft/deberta-v3-base",
        data_dir="data/processed_text",
        label_names=NAMES,
        label_stats={"scam": {"known": 30, "positive": 14, "pos_weight": 1.14}, "nsfw": {"known": 0, "positive": 0}},
        source_counts={"train": {"sms_spam": 20, "ethos": 10}, "validation": {"sms_spam": 3}},
        credits=[SourceCredit("sms_spam", "free, cite the authors", "Almeida et al. (2011)", 20),
                 SourceCredit("ethos", "GPL-3.0 (copyleft)", "Mollas et al. | 2022", 10)],
        thresholds=thresholds,
        eval_results=results,
        settings={"lr": 5e-5, "max_length": 128},
    ).read_text()
    assert card.startswith("---\n") and "base_model: microsoft/deberta-v3-base" in card
    assert "# constellation_one_text" in card
    assert "| 0 | scam | 30 | 14 | 1.140 | 0.42 |" in card
    assert "## Training data\n\n| source | train | validation | licence | citation |" in card
    assert "| sms_spam | 20 | 3 | free, cite the authors | Almeida et al. (2011) |" in card
    assert "| ethos | 10 | 0 | GPL-3.0 (copyleft) | Mollas et al. \\| 2022 |" in card  # a | in a cell is escaped
    assert "Non-commercial" not in card
    assert "### validation (30 rows)" in card and "| global_step | 300 |" in card
    assert "plots/pr_curves.png" in card
    assert "`unsafe` is the broad label" not in card  # a label set without the umbrella does not mention it


def test_model_card_explains_unsafe_and_flagged_when_the_model_has_it(tmp_path: Path) -> None:
    names = ("harassment", "unsafe")
    card = write_model_card(
        tmp_path,
        title="m",
        base_model="minilm",
        data_dir="d",
        label_names=names,
        label_stats={},
        source_counts={"train": {"toxicchat": 2}},
        credits=[SourceCredit("toxicchat", "CC-BY-NC-4.0", "Lin et al. (2023)", 2)],
        thresholds={"harassment": 0.5, "unsafe": 0.4},
        eval_results={},
        settings={},
    ).read_text()
    assert '`unsafe` is the broad label, "a moderation system should flag this"' in card
    assert "a text is `flagged` when any label, `unsafe` included, reaches its threshold" in card
    assert "| 1 | unsafe | 0 | 0 | – | 0.40 |" in card


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_the_cards_metadata_and_usage_say_how_transformers_loads_the_head(tmp_path: Path, pooling: str) -> None:
    from huggingface_hub import ModelCard

    path = write_model_card(
        tmp_path,
        title="constellation_one_text",
        base_model="microsoft/deberta-v3-base",
        data_dir="data/processed_text",
        label_names=NAMES,
        label_stats={},
        source_counts={"train": {"sms_spam": 20}},
        credits=[SourceCredit("sms_spam", "free, cite the authors", "Almeida et al. (2011)", 20)],
        thresholds={"scam": 0.42, "nsfw": 0.5},
        eval_results={},
        settings={"pooling": pooling},
    )
    card = ModelCard.load(path)  # huggingface_hub reads the front matter as the Hub does
    assert card.data.library_name == "transformers" and card.data.pipeline_tag == "text-classification"
    assert card.data.base_model == "microsoft/deberta-v3-base"
    assert ("custom_code" in card.data.tags) == (pooling == "mean")
    use = card.text.split("## Use", 1)[1].split("\n## ", 1)[0]
    trust = " trust_remote_code=True," if pooling == "mean" else ""
    assert f'"text-classification", model=str(model_dir),{trust} top_k=None, function_to_apply="sigmoid"' in use
    assert 'Path("constellation_one_text")' in use and 'model_dir / "thresholds.json"' in use
    assert ("modeling_cockatoo.py" in use) == ("trust_remote_code" in use) == (pooling == "mean")
    assert "hf upload <user>/<repo> constellation_one_text ." in use
    assert card.text.index("## Use") < card.text.index("## Training data")  # first thing a reader of the Hub sees
    assert "| sms_spam | 20 | free, cite the authors | Almeida et al. (2011) |" in card.text


def test_metrics_table_has_a_row_per_label_and_averages() -> None:
    probs, labels, mask = predictions()
    at = multilabel_metrics(probs, labels, mask, NAMES, 0.5)
    table = metrics_table(NAMES, at, at).splitlines()
    assert len(table) == 2 + len(NAMES) + 2
    assert table[2].startswith(f"| scam | {at['precision_scam']:.3f} |")
    assert table[3].startswith("| nsfw | – |")  # never known: no figures rather than zeros
    assert table[-1].startswith("| **micro** |")


def test_training_data_table_flags_non_commercial_sources_and_unrecorded_licences() -> None:
    lines = training_data_table(
        {"train": {"chat": 5, "old": 2}, "test": {"chat": 1}},
        [SourceCredit("chat", "CC-BY-NC-4.0", "Lin et al. (2023)", 5)],
    )
    assert lines[0].startswith("**Non-commercial data**: trained on chat (non-commercial licence)")
    assert lines[2:] == [
        "| source | train | test | licence | citation |",
        "|---|---|---|---|---|",
        "| chat | 5 | 1 | CC-BY-NC-4.0 | Lin et al. (2023) |",
        "| old | 2 | 0 | not recorded | not recorded |",
    ]
