"""The evaluation report: the model's metrics beside each baseline's, as JSON, Markdown and PNG plots.

``comparison_table`` is the table a reader looks at first (PR-AUC per label and per source x label, each
baseline's column and the model's difference from it, a loss marked); the model card and
``eval_results.json`` of a training run carry the same table.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only; evaluation machines have no display
import numpy as np
from sklearn.metrics import precision_recall_curve

from cockatoo_ml.evaluation.metrics import (
    ALL_SOURCES,
    FlaggedMetrics,
    GroupedMetrics,
    metrics_to_dict,
    reliability_bins,
)
from cockatoo_ml.metrics.plots import label_grid, save_figure
from cockatoo_ml.registry import evaluation as defaults

MODEL = "model"  # the system under test, beside the baselines' names
CASCADE = "cascade"  # the same model served through its cascade (student first), when it has one
REPORT_JSON = "evaluation.json"
REPORT_MD = "evaluation.md"
PR_CURVES_PNG = "pr_curves.png"
RELIABILITY_PNG = "reliability.png"
MEAN_OVER_LABELS = "mean over labels"
LOSS_MARK = "▼"  # beside a difference where the model is below a baseline


@dataclass
class EvaluationReport:
    """Metrics of the model and of each baseline on the same rows. ``scores`` (per system, rows x labels) and the
    truth are kept for the plots but not written to the JSON."""

    model_name: str
    data: str
    label_names: tuple[str, ...]
    thresholds: dict[str, float]
    metrics: dict[str, GroupedMetrics]  # system ("model", "tfidf", ...) -> group -> label -> metrics
    rows: int
    seconds: dict[str, float] = field(default_factory=dict)  # time spent per step (scoring, each baseline)
    scores: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    labels: np.ndarray | None = field(default=None, repr=False)
    label_mask: np.ndarray | None = field(default=None, repr=False)
    # With a cascade (metrics[CASCADE]): its student, the share of texts it answered and how many decisions are
    # identical to the transformer alone, over every label ("decision_agreement") and per label.
    cascade: dict[str, Any] | None = None
    # The ``flagged`` decision (any label, ``unsafe`` included, at its threshold) per system and group, and the
    # thresholds it used: the model's for the model and the cascade, each baseline's own F1-best ones.
    flagged: dict[str, dict[str, FlaggedMetrics]] = field(default_factory=dict)
    flagged_thresholds: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def baselines(self) -> list[str]:
        return [name for name in self.metrics if name not in (MODEL, CASCADE)]

    def macro_pr_auc(self, system: str = MODEL) -> float | None:
        """Mean PR-AUC over the labels (all rows) that have one."""
        values = [m.pr_auc for m in self.metrics[system][ALL_SOURCES].values() if m.pr_auc is not None]
        return float(np.mean(values)) if values else None

    def macro_pr_auc_by_system(self) -> dict[str, float | None]:
        return {system: self.macro_pr_auc(system) for system in self.metrics}

    def losses(self, min_positives: int = defaults.MIN_POSITIVES_TO_COMPARE) -> list[dict[str, Any]]:
        """Every (baseline, source, label) where the model's PR-AUC is below the baseline's: over all rows always,
        per source only with at least ``min_positives`` positives (fewer make PR-AUC noise)."""
        found = []
        for baseline in self.baselines:
            for group, label, model, other in self._pairs(baseline):
                if _comparable(group, model.positives, min_positives) and _below(model.pr_auc, other.pr_auc):
                    found.append(
                        {
                            "baseline": baseline,
                            "source": group,
                            "label": label,
                            "positives": model.positives,
                            "model": model.pr_auc,
                            baseline: other.pr_auc,
                            "difference": model.pr_auc - other.pr_auc,
                        }
                    )
            model_macro, other_macro = self.macro_pr_auc(), self.macro_pr_auc(baseline)
            if model_macro is not None and other_macro is not None and _below(model_macro, other_macro):
                found.append(
                    {
                        "baseline": baseline,
                        "source": ALL_SOURCES,
                        "label": MEAN_OVER_LABELS,
                        "positives": None,
                        "model": model_macro,
                        baseline: other_macro,
                        "difference": model_macro - other_macro,
                    }
                )
        return found

    def _pairs(self, baseline: str):
        for label in self.label_names:  # the table's order
            for group in self.groups():
                model = self.metrics[MODEL].get(group, {}).get(label)
                other = self.metrics[baseline].get(group, {}).get(label)
                if model is not None and other is not None:
                    yield group, label, model, other

    def groups(self) -> list[str]:
        """ "all" first, then the sources in name order."""
        return [ALL_SOURCES, *sorted(g for g in self.metrics[MODEL] if g != ALL_SOURCES)]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model_name,
            "data": self.data,
            "rows": self.rows,
            "labels": list(self.label_names),
            "thresholds": self.thresholds,
            "macro_pr_auc": self.macro_pr_auc_by_system(),
            "losses": self.losses(),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "metrics": {system: metrics_to_dict(grouped) for system, grouped in self.metrics.items()},
            **({"cascade": self.cascade} if self.cascade is not None else {}),
            "flagged": {
                system: {group: m.to_dict() for group, m in groups.items()} for system, groups in self.flagged.items()
            },
            "flagged_thresholds": self.flagged_thresholds,
        }

    def flagged_table(self) -> str:
        """Markdown: precision, recall and F1 of ``flagged`` per system, over all rows and per source where some
        row should be flagged."""
        head = ["system", "source", "rows", "should be flagged", "flagged", "precision", "recall", "F1"]
        lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for system, groups in self.flagged.items():
            for group in [ALL_SOURCES, *sorted(g for g in groups if g != ALL_SOURCES)]:
                m = groups.get(group)
                if m is None or (group != ALL_SOURCES and not m.positives):
                    continue
                cells = [system, f"**{group}**" if group == ALL_SOURCES else group, str(m.rows), str(m.positives)]
                cells += [str(m.flagged), _fmt(m.precision), _fmt(m.recall), _fmt(m.f1)]
                lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def cascade_table(self) -> str:
        """Markdown: per label (all rows), the transformer alone beside the cascade: PR-AUC, F1 at the thresholds
        and the share of decisions the cascade leaves unchanged; a PR-AUC lower by more than
        ``CASCADE_PR_AUC_TOLERANCE`` is marked."""
        if self.cascade is None:
            raise ValueError("this report has no cascade")
        head = [
            "label",
            "rows",
            "positives",
            "transformer PR-AUC",
            "cascade PR-AUC",
            "Δ",
            "transformer F1",
            "cascade F1",
            "identical decisions",
        ]
        lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
        for label in self.label_names:
            alone, tiered = self.metrics[MODEL][ALL_SOURCES][label], self.metrics[CASCADE][ALL_SOURCES][label]
            lines.append(
                "| "
                + " | ".join(
                    [
                        label,
                        str(alone.rows),
                        str(alone.positives),
                        _fmt(alone.pr_auc),
                        _fmt(tiered.pr_auc),
                        _cascade_difference(tiered.pr_auc, alone.pr_auc),
                        _fmt(alone.f1),
                        _fmt(tiered.f1),
                        f"{self.cascade['identical_by_label'][label]:.2%}",
                    ]
                )
                + " |"
            )
        alone_macro, tiered_macro = self.macro_pr_auc(), self.macro_pr_auc(CASCADE)
        lines.append(
            "| "
            + " | ".join(
                [
                    f"**{MEAN_OVER_LABELS}**",
                    "",
                    "",
                    _fmt(alone_macro),
                    _fmt(tiered_macro),
                    _cascade_difference(tiered_macro, alone_macro),
                    "",
                    "",
                    f"**{self.cascade['decision_agreement']:.2%}** (every label)",
                ]
            )
            + " |"
        )
        return "\n".join(lines)

    def cascade_summary(self) -> str:
        c = self.cascade or {}
        return (
            f"The {c.get('student')} student answered {c.get('answered_share', 0):.1%} of {c.get('texts')} texts "
            f"(sure on every label of every window); {c.get('answered_agreement', 1):.2%} of its answers and "
            f"{c.get('decision_agreement', 1):.2%} of all texts got the same decisions on every label as from "
            "the transformer alone."
        )

    def comparison_table(self) -> str:
        """Markdown: PR-AUC of the model and each baseline per label x source, the difference, a loss marked."""
        head = ["label", "source", "rows", "positives", "model PR-AUC"]
        for baseline in self.baselines:
            head += [f"{baseline} PR-AUC", f"Δ vs {baseline}"]
        lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for label in self.label_names:
            for group in self.groups():
                model = self.metrics[MODEL].get(group, {}).get(label)
                if model is None or (group != ALL_SOURCES and model.positives == 0):
                    continue
                cells = [
                    label,
                    f"**{group}**" if group == ALL_SOURCES else group,
                    str(model.rows),
                    str(model.positives),
                    _fmt(model.pr_auc),
                ]
                for baseline in self.baselines:
                    other = self.metrics[baseline].get(group, {}).get(label)
                    other_auc = other.pr_auc if other is not None else None
                    cells += [
                        _fmt(other_auc),
                        _difference(model.pr_auc, other_auc, _comparable(group, model.positives)),
                    ]
                lines.append("| " + " | ".join(cells) + " |")
        macro = [f"**{MEAN_OVER_LABELS}**", "", "", "", _fmt(self.macro_pr_auc())]
        for baseline in self.baselines:
            macro += [_fmt(self.macro_pr_auc(baseline)), _difference(self.macro_pr_auc(), self.macro_pr_auc(baseline))]
        lines.append("| " + " | ".join(macro) + " |")
        return "\n".join(lines)

    def detail_table(self, system: str = MODEL) -> str:
        """Markdown: every metric of one system per label x source."""
        head = [
            "label",
            "source",
            "rows",
            "positives",
            "PR-AUC",
            "ROC-AUC",
            "threshold",
            "P",
            "R",
            "F1",
            "best F1",
            "at",
            "ECE",
        ]
        lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
        for label in self.label_names:
            for group in self.groups():
                m = self.metrics[system].get(group, {}).get(label)
                if m is None:
                    continue
                lines.append(
                    "| "
                    + " | ".join(
                        [
                            label,
                            f"**{group}**" if group == ALL_SOURCES else group,
                            str(m.rows),
                            str(m.positives),
                            _fmt(m.pr_auc),
                            _fmt(m.roc_auc),
                            f"{m.threshold:.2f}",
                            _fmt(m.precision),
                            _fmt(m.recall),
                            _fmt(m.f1),
                            _fmt(m.best_f1),
                            _fmt(m.best_threshold, 2),
                            _fmt(m.ece),
                        ]
                    )
                    + " |"
                )
        return "\n".join(lines)

    def to_markdown(self) -> str:
        lines = [
            f"# Evaluation of {self.model_name}",
            "",
            f"{self.data}: {self.rows} rows. Known labels only; "
            "PR-AUC is average precision, ECE the expected calibration error over "
            f"{defaults.ECE_BINS} bins, P/R/F1 at the model's thresholds, best F1 over a 0.01 threshold grid.",
        ]
        if self.baselines:
            lines += [
                "",
                "## Model against baselines (PR-AUC)",
                "",
                f"Δ = model − baseline; {LOSS_MARK} marks a loss: over all rows of a label always, for one "
                f"source where it has at least {defaults.MIN_POSITIVES_TO_COMPARE} positives.",
                "",
                self.comparison_table(),
            ]
            losses = self.losses()
            lines += [
                "",
                f"**{len(losses)} loss(es)**"
                + (
                    ": "
                    + "; ".join(
                        f"{x['label']} / {x['source']} vs {x['baseline']} ({x['difference']:+.3f})" for x in losses
                    )
                    if losses
                    else ": the model is at or above every baseline."
                ),
            ]
        if self.cascade is not None:
            lines += [
                "",
                "## Cascade against the transformer alone",
                "",
                f"The cascade answers from its student where the server would ({LOSS_MARK}: PR-AUC lower than "
                f"the transformer's by more than {defaults.CASCADE_PR_AUC_TOLERANCE}).",
                "",
                self.cascade_summary(),
                "",
                self.cascade_table(),
            ]
        if self.flagged:
            lines += [
                "",
                "## Flagged (any label at its threshold)",
                "",
                "A row should be flagged where a known label is positive, and should not where `unsafe` is known "
                "negative (without `unsafe`: every label known negative); other rows are left out. The model and "
                "the cascade use the model's thresholds, a baseline its own F1-best threshold per label on these "
                "rows (which favours the baseline).",
                "",
                self.flagged_table(),
            ]
        titles = {MODEL: "Model (transformer alone)" if self.cascade is not None else "Model", CASCADE: "Cascade"}
        for system in self.metrics:
            lines += ["", f"## {titles.get(system, 'Baseline ' + system)}: all metrics", "", self.detail_table(system)]
        return "\n".join(lines) + "\n"

    def write(self, output_dir: Path) -> list[Path]:
        """evaluation.json, evaluation.md, pr_curves.png and reliability.png in ``output_dir``."""
        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        written = [output_dir / REPORT_JSON, output_dir / REPORT_MD]
        written[0].write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        written[1].write_text(self.to_markdown())
        if self.scores and self.labels is not None and self.label_mask is not None:
            written.append(
                plot_pr_curves(
                    self.scores, self.labels, self.label_mask, self.label_names, output_dir / PR_CURVES_PNG, self.data
                )
            )
            written.append(
                plot_reliability(
                    self.scores, self.labels, self.label_mask, self.label_names, output_dir / RELIABILITY_PNG, self.data
                )
            )
        return written


def _below(model: float | None, other: float | None) -> bool:
    return model is not None and other is not None and model < other - defaults.LOSS_TOLERANCE


def _cascade_difference(cascade: float | None, alone: float | None) -> str:
    if cascade is None or alone is None:
        return "–"
    text = f"{cascade - alone:+.3f}"
    return f"**{text}** {LOSS_MARK}" if cascade < alone - defaults.CASCADE_PR_AUC_TOLERANCE else text


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _comparable(group: str, positives: int, min_positives: int = defaults.MIN_POSITIVES_TO_COMPARE) -> bool:
    """Whether a loss on this row counts: every label overall, a source x label only with enough positives."""
    return group == ALL_SOURCES or positives >= min_positives


def _difference(model: float | None, other: float | None, comparable: bool = True) -> str:
    if model is None or other is None:
        return "–"
    text = f"{model - other:+.3f}"
    return f"**{text}** {LOSS_MARK}" if comparable and _below(model, other) else text


def _known(scores: np.ndarray, labels: np.ndarray, mask: np.ndarray, j: int) -> tuple[np.ndarray, np.ndarray]:
    rows = np.asarray(mask)[:, j] > 0
    return np.asarray(scores)[rows, j], np.asarray(labels)[rows, j] > 0.5


def plot_pr_curves(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    mask: np.ndarray,
    label_names: Sequence[str],
    path: Path,
    title: str,
) -> Path:
    """Precision-recall per label, one curve per system (model and baselines)."""
    fig, axes = label_grid(len(label_names))
    for j, (name, ax) in enumerate(zip(label_names, axes, strict=False)):
        ax.set(title=name, xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02))
        for system, probs in scores.items():
            values, truth = _known(probs, labels, mask, j)
            if truth.any():
                precision, recall, _ = precision_recall_curve(truth, values)
                ax.plot(recall, precision, label=system, linewidth=2 if system == MODEL else 1)
        _, truth = _known(next(iter(scores.values())), labels, mask, j)
        if truth.any():
            ax.axhline(truth.mean(), linestyle=":", color="grey", label=f"base rate {truth.mean():.3f}")
            ax.legend(loc="lower left")
        else:
            ax.text(0.5, 0.5, "no known positives", ha="center")
    return save_figure(fig, f"Precision-recall per label ({title})", path)


def plot_reliability(
    scores: Mapping[str, np.ndarray],
    labels: np.ndarray,
    mask: np.ndarray,
    label_names: Sequence[str],
    path: Path,
    title: str,
) -> Path:
    """Reliability diagram per label: positive rate against mean score in each bin, one line per system."""
    fig, axes = label_grid(len(label_names))
    for j, (name, ax) in enumerate(zip(label_names, axes, strict=False)):
        ax.set(title=name, xlabel="mean score in bin", ylabel="positive rate", xlim=(0, 1), ylim=(0, 1.02))
        ax.plot([0, 1], [0, 1], linestyle=":", color="grey", label="calibrated")
        for system, probs in scores.items():
            values, truth = _known(probs, labels, mask, j)
            if values.size:
                mean_score, rate, count = reliability_bins(values, truth)
                filled = count > 0
                ax.plot(mean_score[filled], rate[filled], marker="o", label=system)
        ax.legend(loc="upper left")
    return save_figure(fig, f"Reliability ({title}, {defaults.ECE_BINS} bins)", path)
