"""``evaluate.py``: score a model (a directory in-process, or a server) on labelled rows, put baselines beside
it, write the report, and optionally tune thresholds on the same rows.

Training calls ``evaluate_model`` at its end to put the model-against-baseline table into the model card.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cockatoo_ml.artifacts import EVAL_RESULTS_FILE, EVALUATION_DIR, MODEL_CARD
from cockatoo_ml.cli import report_settings, settings_to_dict
from cockatoo_ml.errors import ConfigError, DataError
from cockatoo_ml.evaluation.baselines import Baseline, build_baseline
from cockatoo_ml.evaluation.data import EvalRows, rows_from_sources, rows_from_split
from cockatoo_ml.evaluation.metrics import ALL_SOURCES, GroupedMetrics, flagged_metrics, grouped_metrics
from cockatoo_ml.evaluation.report import CASCADE, MODEL, EvaluationReport
from cockatoo_ml.evaluation.scoring import LocalScorer, RemoteScorer, Scorer, parse_headers
from cockatoo_ml.inference.bands import cascade_agreement
from cockatoo_ml.metrics.thresholds import tune_thresholds
from cockatoo_ml.registry import evaluation as defaults
from cockatoo_ml.registry import paths
from cockatoo_ml.registry.evaluation import EvaluateSettings
from cockatoo_ml.settings import parse_args

log = logging.getLogger(__name__)


def evaluate_scores(
    model_name: str,
    probs: np.ndarray,
    thresholds: dict[str, float],
    rows: EvalRows,
    *,
    baselines: Sequence[Baseline] = (),
    train_rows: EvalRows | None = None,
    progress: bool = True,
    seconds: dict[str, float] | None = None,
    cascade: StudentAnswers | None = None,
) -> EvaluationReport:
    """The report of scores already computed for ``rows``, with ``baselines`` (unfitted) trained on
    ``train_rows`` and scored on the same rows; with ``cascade``, also the cascade's answers (the student's scores
    where it may answer, ``probs`` elsewhere) beside the transformer's."""
    if baselines and train_rows is None:
        raise ConfigError("baselines need training rows (the train split of a prepared dataset)")
    if train_rows is not None and tuple(train_rows.label_names) != tuple(rows.label_names):
        raise DataError(f"training rows have labels {train_rows.label_names}, evaluated rows {rows.label_names}")
    scores = {MODEL: np.asarray(probs, dtype=np.float64)}
    seconds = dict(seconds or {})
    for baseline in baselines:
        started = time.perf_counter()
        log.info("training the %s baseline on %d rows", baseline.name, len(train_rows))  # type: ignore[arg-type]
        baseline.fit(train_rows)  # type: ignore[arg-type]
        scores[baseline.name] = baseline.score(rows.texts, progress)
        seconds[baseline.name] = time.perf_counter() - started
    summary = None
    if cascade is not None:
        scores[CASCADE], summary = cascade_comparison(
            scores[MODEL], cascade, [thresholds[n] for n in rows.label_names], rows.label_names
        )
    metrics = {
        system: grouped_metrics(values, rows.labels, rows.label_mask, rows.sources, rows.label_names, thresholds)
        for system, values in scores.items()
    }
    decision_thresholds = {
        system: dict(thresholds) if system in (MODEL, CASCADE) else best_thresholds(metrics[system], thresholds)
        for system in scores
    }
    flagged = {
        system: flagged_metrics(
            values, rows.labels, rows.label_mask, rows.sources, rows.label_names, decision_thresholds[system]
        )
        for system, values in scores.items()
    }
    return EvaluationReport(
        model_name=model_name,
        data=rows.description,
        label_names=tuple(rows.label_names),
        thresholds=dict(thresholds),
        metrics=metrics,
        rows=len(rows),
        seconds=seconds,
        scores=scores,
        labels=rows.labels,
        label_mask=rows.label_mask,
        cascade=summary,
        flagged=flagged,
        flagged_thresholds=decision_thresholds,
    )


def best_thresholds(metrics: GroupedMetrics, fallback: Mapping[str, float]) -> dict[str, float]:
    """A baseline's own F1-best threshold per label on the evaluated rows (the model's where it has none): its
    scores are on another scale than the model's, so the model's thresholds would say nothing of it."""
    return {
        label: m.best_threshold if m.best_threshold is not None else fallback[label]
        for label, m in metrics[ALL_SOURCES].items()
    }


@dataclass(frozen=True)
class StudentAnswers:
    """The server's cascade on the evaluated rows: its scores and which texts its student answered alone."""

    student: str
    scores: np.ndarray
    answered: np.ndarray


def cascade_comparison(
    alone: np.ndarray, cascade: StudentAnswers, thresholds: Sequence[float], label_names: Sequence[str]
) -> tuple[np.ndarray, dict[str, Any]]:
    """The cascade's scores and how its decisions compare with the transformer alone's."""
    answered = np.asarray(cascade.answered, dtype=bool)
    tiered = np.asarray(cascade.scores, dtype=np.float64)
    limits = np.asarray(thresholds, dtype=np.float64)
    identical = (tiered >= limits) == (np.asarray(alone) >= limits)
    summary = {
        "student": cascade.student,
        **cascade_agreement(tiered, alone, thresholds, answered),
        "identical_by_label": {
            name: float(identical[:, j].mean()) if len(identical) else 1.0 for j, name in enumerate(label_names)
        },
    }
    return tiered, summary


def evaluate_model(
    model: Path | str | Scorer,
    rows: EvalRows,
    *,
    baselines: Sequence[str | Baseline] = (),
    train_rows: EvalRows | None = None,
    base_model: str | None = None,
    progress: bool = True,
) -> EvaluationReport:
    """Score ``rows`` with a model directory (loaded as the server loads it) or any ``Scorer``, train
    ``baselines`` (names: "tfidf", "frozen"; or Baseline objects) on ``train_rows`` and return the report.

    ``report.to_markdown()`` is the Markdown report, ``report.comparison_table()`` the model-against-baselines
    table alone, ``report.to_dict()`` the JSON."""
    scorer: Scorer = LocalScorer(Path(model)) if isinstance(model, (str, Path)) else model
    check_labels(scorer, rows)
    model_dir = Path(model) if isinstance(model, (str, Path)) else getattr(model, "model_dir", None)
    fitted = [
        build_baseline(b, model_dir=model_dir, base_model=base_model) if isinstance(b, str) else b for b in baselines
    ]
    started = time.perf_counter()
    probs = scorer.score(rows.texts, progress)
    elapsed = {"scoring": time.perf_counter() - started}
    cascade = None
    if isinstance(scorer, LocalScorer) and scorer.cascade is not None:
        started = time.perf_counter()
        tiered, answered = scorer.cascade_scores(rows.texts)
        cascade = StudentAnswers(scorer.cascade.student.kind, tiered, answered)
        elapsed["cascade"] = time.perf_counter() - started
    return evaluate_scores(
        scorer.name,
        probs,
        scorer.thresholds,
        rows,
        baselines=fitted,
        train_rows=train_rows,
        progress=progress,
        seconds=elapsed,
        cascade=cascade,
    )


def check_labels(scorer: Scorer, rows: EvalRows) -> None:
    if tuple(scorer.labels) != tuple(rows.label_names):
        raise DataError(
            f"the model predicts labels {list(scorer.labels)} but the data ({rows.description}) has "
            f"{list(rows.label_names)}: evaluate it on data prepared for the same labels"
        )


def check_thresholds_target(target: Path, model_dir: Path | None, overwrite: bool) -> None:
    """Refuse, before any work is done, to replace a file or to write into the model directory unasked."""
    if overwrite:
        return
    if target.exists():
        raise ConfigError(f"--tune-thresholds {target} exists; pass --overwrite to replace it")
    if model_dir is not None and target.resolve().parent == model_dir.resolve():
        raise ConfigError(
            f"--tune-thresholds {target} is inside the model directory, which the server reads; "
            "pass --overwrite to write there"
        )


def write_thresholds(target: Path, rows: EvalRows, probs: np.ndarray) -> dict[str, float]:
    tuned = tune_thresholds(probs, rows.labels, rows.label_mask, rows.label_names)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(tuned, indent=2) + "\n")  # the format of a model directory's thresholds.json
    return tuned


def default_output_dir(model_name: str, settings: EvaluateSettings) -> Path:
    data = Path(settings.sources).stem if settings.sources else settings.split
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in model_name)
    return defaults.OUTPUT_ROOT / f"{safe}-{data}"


def run(settings: EvaluateSettings) -> EvaluationReport:
    """The whole command: rows, scores, baselines, report files, tuned thresholds."""
    model_dir = None if settings.url else settings.model_dir
    if settings.tune_thresholds is not None:
        check_thresholds_target(settings.tune_thresholds, model_dir, settings.overwrite)
    if settings.url:
        scorer: Scorer = RemoteScorer(settings.url, parse_headers(settings.header), settings.batch_texts)
    else:
        scorer = LocalScorer(settings.model_dir)
    if settings.sources:
        rows = rows_from_sources(
            Path(settings.sources), scorer.labels, Path(settings.raw_dir) if settings.raw_dir else None, settings.only
        )
    else:
        rows = rows_from_split(settings.data or paths.PROCESSED_DIR, settings.split)
    train_rows = rows_from_split(settings.data or paths.PROCESSED_DIR, "train") if settings.baseline else None
    report = evaluate_model(
        scorer, rows, baselines=settings.baseline, train_rows=train_rows, base_model=settings.base_model
    )
    output_dir = settings.output_dir or default_output_dir(scorer.name, settings)
    report_settings(
        "evaluation",
        {**settings_to_dict(settings), "output_dir": str(output_dir)},
        save_to=output_dir / "evaluate_settings.json",
    )
    written = report.write(output_dir)
    print(report.comparison_table() if report.baselines else report.detail_table())
    if report.cascade is not None:
        print(f"\n{report.cascade_summary()}\n{report.cascade_table()}")
    log.info("report written: %s", ", ".join(str(p) for p in written))
    if settings.tune_thresholds is not None:
        tuned = write_thresholds(settings.tune_thresholds, rows, report.scores[MODEL])
        log.info("tuned thresholds %s written to %s", tuned, settings.tune_thresholds)
    return report


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(EvaluateSettings, argv, description="Evaluate a moderation model against baselines.")
    run(settings)
    return 0


def compare_with_baselines(model_dir: Path, data_dir: Path, baselines: Sequence[str], split: str) -> None:
    """The report of a freshly trained model beside ``baselines`` on ``split``: written to
    ``evaluation/`` and added to the model card and ``eval_results.json``, so a model that a linear model beats
    says so where it is published."""
    wanted = [name for name in baselines if name != "none"]
    if not wanted:
        return
    report = evaluate_model(
        model_dir, rows_from_split(data_dir, split), baselines=wanted, train_rows=rows_from_split(data_dir, "train")
    )
    report.write(model_dir / EVALUATION_DIR)
    results_path = model_dir / EVAL_RESULTS_FILE
    results = json.loads(results_path.read_text())
    results["baselines"] = {"split": split, "macro_pr_auc": report.macro_pr_auc_by_system(), "losses": report.losses()}
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    losses = report.losses()
    with (model_dir / MODEL_CARD).open("a") as card:
        card.write(
            f"\n## Against baselines on the {split} split (PR-AUC)\n\n"
            "Each baseline was trained on the same training rows with the same label masks "
            f"(`evaluate.py --baseline`); the full report is in `{EVALUATION_DIR}/`.\n\n"
            f"{report.comparison_table()}\n\n"
            + (
                f"**The model loses in {len(losses)} place(s).**\n"
                if losses
                else "The model is at or above every baseline.\n"
            )
        )
    log.info("%s split against baselines (PR-AUC):\n%s", split, report.comparison_table())
