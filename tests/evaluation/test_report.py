"""The report: the comparison table marks every loss, JSON and Markdown agree, the plots are written."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cockatoo_ml.evaluation.metrics import ALL_SOURCES, LabelMetrics
from cockatoo_ml.evaluation.report import LOSS_MARK, MODEL, EvaluationReport

LABELS = ("scam", "nsfw")


def metric(pr_auc: float, positives: int = 20) -> LabelMetrics:
    return LabelMetrics(rows=100, positives=positives, threshold=0.5, precision=0.5, recall=0.5, f1=0.5,
                        pr_auc=pr_auc, roc_auc=0.9, best_f1=0.6, best_threshold=0.4, ece=0.1)


def make_report(**extra: object) -> EvaluationReport:
    metrics = {
        MODEL: {ALL_SOURCES: {"scam": metric(0.90), "nsfw": metric(0.70)},
                "sms": {"scam": metric(0.95, positives=12)}, "chat": {"nsfw": metric(0.60, positives=4)}},
        "tfidf": {ALL_SOURCES: {"scam": metric(0.80), "nsfw": metric(0.75)},
                  "sms": {"scam": metric(0.99, positives=12)}, "chat": {"nsfw": metric(0.90, positives=4)}},
    }
    return EvaluationReport(model_name="m", data="test split of d", label_names=LABELS, thresholds={"scam": 0.5,
                            "nsfw": 0.5}, metrics=metrics, rows=100, **extra)  # type: ignore[arg-type]


def row(table: str, label: str, source: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"| {label} | {source} |"))


def test_comparison_table_marks_losses_at_a_glance() -> None:
    table = make_report().comparison_table()
    assert table.splitlines()[0] == "| label | source | rows | positives | model PR-AUC | tfidf PR-AUC | Δ vs tfidf |"
    assert row(table, "scam", "**all**").endswith("| 0.900 | 0.800 | +0.100 |")  # a win: no mark
    assert row(table, "nsfw", "**all**").endswith(f"| 0.700 | 0.750 | **-0.050** {LOSS_MARK} |")
    assert row(table, "scam", "sms").endswith(f"**-0.040** {LOSS_MARK} |")  # 12 positives: counts
    assert LOSS_MARK not in row(table, "nsfw", "chat")  # 4 positives: listed, too few to call a loss
    assert row(table, "**mean over labels**", "").endswith("| 0.800 | 0.775 | +0.025 |")


def test_losses_list_what_the_table_marks() -> None:
    losses = make_report().losses()
    assert [(x["label"], x["source"]) for x in losses] == [("scam", "sms"), ("nsfw", ALL_SOURCES)]
    assert losses[0]["difference"] == pytest.approx(-0.04) and losses[0]["tfidf"] == 0.99
    assert make_report().macro_pr_auc() == pytest.approx(0.8)


def test_json_and_markdown_files(tmp_path: Path) -> None:
    truth = np.array([[1, 0], [0, 1], [1, 1], [0, 0]], dtype=np.float32)
    scores = {MODEL: np.array([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.3, 0.1]]), "tfidf": np.full((4, 2), 0.5)}
    report = make_report(scores=scores, labels=truth, label_mask=np.ones_like(truth), seconds={"scoring": 1.234})
    written = report.write(tmp_path)
    assert [p.name for p in written] == ["evaluation.json", "evaluation.md", "pr_curves.png", "reliability.png"]
    for png in written[2:]:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    saved = json.loads(written[0].read_text())
    assert saved["metrics"]["tfidf"]["sms"]["scam"]["pr_auc"] == 0.99
    assert saved["macro_pr_auc"] == {"model": pytest.approx(0.8), "tfidf": pytest.approx(0.775)}
    assert len(saved["losses"]) == 2 and saved["seconds"] == {"scoring": 1.23}
    markdown = written[1].read_text()
    assert report.comparison_table() in markdown and "**2 loss(es)**: scam / sms vs tfidf (-0.040)" in markdown
    assert "## Baseline tfidf: all metrics" in markdown


def test_without_baselines_the_report_has_the_model_alone() -> None:
    report = make_report()
    del report.metrics["tfidf"]
    assert report.baselines == [] and report.losses() == []
    markdown = report.to_markdown()
    assert "against baselines" not in markdown
    assert row(report.detail_table(), "scam", "sms") == (
        "| scam | sms | 100 | 12 | 0.950 | 0.900 | 0.50 | 0.500 | 0.500 | 0.500 | 0.600 | 0.40 | 0.100 |"
    )


def test_a_tie_below_the_reports_last_digit_is_no_loss() -> None:
    from cockatoo_ml.evaluation.report import _below

    assert not _below(0.99998, 1.0)  # both print as 1.000
    assert _below(0.990, 1.0)
    assert not _below(None, 1.0)
