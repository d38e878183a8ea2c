"""What a person reads about a trained model: the model card (``README.md``) and PNG plots in ``plots/``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_curve

from cockatoo_ml.artifacts import MODEL_CARD
from cockatoo_ml.data.contract import SourceCredit
from cockatoo_ml.metrics.plots import known_rows, label_axes, label_grid, save_figure
from cockatoo_ml.metrics.thresholds import f1_curve, threshold_grid
from cockatoo_ml.registry.labels import UMBRELLA_LABEL

PLOTS_DIR = "plots"
PR_CURVES_PNG = "pr_curves.png"
F1_THRESHOLD_PNG = "f1_vs_threshold.png"
AT_DEFAULT, AT_TUNED = "at_0.5", "at_tuned"  # keys of eval_results.json per split


def plot_pr_curves(
    probs: np.ndarray, labels: np.ndarray, mask: np.ndarray, label_names: Sequence[str], path: Path, split: str
) -> Path:
    """One precision-recall curve per label, on the label's known rows."""
    fig, axes = label_grid(len(label_names))
    for j, (name, ax) in enumerate(zip(label_names, axes, strict=False)):
        scores, truth = known_rows(probs, labels, mask, j)
        label_axes(ax, name, "recall", "precision")
        if truth.any():
            precision, recall, _ = precision_recall_curve(truth, scores)
            ax.plot(recall, precision)
            ax.axhline(truth.mean(), linestyle=":", color="grey", label=f"base rate {truth.mean():.3f}")
            ax.legend(loc="lower left")
        else:
            ax.text(0.5, 0.5, "no known positives", ha="center")
    return save_figure(fig, f"Precision-recall per label ({split})", path)


def plot_f1_vs_threshold(
    probs: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float],
    path: Path,
    split: str,
) -> Path:
    """F1 against the decision threshold per label, with the tuned threshold and 0.5 marked."""
    grid = threshold_grid()
    fig, axes = label_grid(len(label_names))
    for j, (name, ax) in enumerate(zip(label_names, axes, strict=False)):
        scores, truth = known_rows(probs, labels, mask, j)
        ax.plot(grid, f1_curve(scores, truth, grid))
        ax.axvline(0.5, linestyle=":", color="grey", label="0.5")
        ax.axvline(thresholds[name], color="red", label=f"tuned {thresholds[name]:.2f}")
        label_axes(ax, name, "threshold", "F1")
        ax.legend(loc="lower left")
    return save_figure(fig, f"F1 vs threshold ({split})", path)


def write_plots(
    model_dir: Path,
    probs: np.ndarray,
    labels: np.ndarray,
    mask: np.ndarray,
    label_names: Sequence[str],
    thresholds: Mapping[str, float],
    split: str,
) -> list[Path]:
    plots = Path(model_dir) / PLOTS_DIR
    plots.mkdir(parents=True, exist_ok=True)
    return [
        plot_pr_curves(probs, labels, mask, label_names, plots / PR_CURVES_PNG, split),
        plot_f1_vs_threshold(probs, labels, mask, label_names, thresholds, plots / F1_THRESHOLD_PNG, split),
    ]


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, (int, float)) else "–"


def metrics_table(label_names: Sequence[str], at_default: Mapping[str, float], at_tuned: Mapping[str, float]) -> str:
    """Markdown table: per label and macro/micro, P/R/F1 at 0.5 and at the tuned thresholds, ROC-AUC, PR-AUC."""
    lines = [
        "| label | P @0.5 | R @0.5 | F1 @0.5 | P tuned | R tuned | F1 tuned | ROC-AUC | PR-AUC | positives |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name in label_names:
        cells = [at_default.get(f"{m}_{name}") for m in ("precision", "recall", "f1")]
        cells += [at_tuned.get(f"{m}_{name}") for m in ("precision", "recall", "f1")]
        cells += [at_default.get(f"roc_auc_{name}"), at_default.get(f"pr_auc_{name}")]
        support = at_default.get(f"support_{name}")
        lines.append(f"| {name} | " + " | ".join(_fmt(c) for c in cells) + f" | {int(support or 0)} |")
    for avg, prefix in (("macro", ""), ("micro", "micro_")):
        cells = [at_default.get(f"{prefix}{m}") for m in ("precision", "recall", "f1")]
        cells += [at_tuned.get(f"{prefix}{m}") for m in ("precision", "recall", "f1")]
        cells += [at_default.get("roc_auc"), at_default.get("pr_auc")] if avg == "macro" else [None, None]
        lines.append(f"| **{avg}** | " + " | ".join(_fmt(c) for c in cells) + " | |")
    return "\n".join(lines)


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "–"


def training_data_table(source_counts: Mapping[str, Mapping[str, int]], credits: Sequence[SourceCredit]) -> list[str]:
    """Markdown lines: rows per split, licence and citation of each source; a warning above it when a source
    is non-commercial."""
    splits = list(source_counts)
    by_name = {credit.name: credit for credit in credits}
    restricted = [credit.name for credit in credits if credit.non_commercial]
    warning = (
        f"**Non-commercial data**: trained on {', '.join(restricted)} (non-commercial licence); check the "
        "licences below before any commercial use of this model."
    )
    lines = [warning, ""] if restricted else []
    lines += ["| source | " + " | ".join(splits) + " | licence | citation |", "|---" * (len(splits) + 3) + "|"]
    for source in sorted({s for counts in source_counts.values() for s in counts}):
        credit = by_name.get(source)
        rows = " | ".join(str(source_counts[s].get(source, 0)) for s in splits)
        terms = f"{_cell(credit.license)} | {_cell(credit.citation)}" if credit else "not recorded | not recorded"
        lines.append(f"| {source} | {rows} | {terms} |")
    return lines


def usage_section(model_dir_name: str, custom_code: bool) -> list[str]:
    """The card's "Use" section: the transformers pipeline call that gives the server's scores, and the
    thresholds. ``custom_code``: the mean-pooling head, whose code the directory ships (trust_remote_code)."""
    trust = " trust_remote_code=True," if custom_code else ""
    lines = [
        "## Use",
        "",
        "Each label's score is a sigmoid of its own logit; the label applies when the score reaches the label's "
        "threshold in `thresholds.json` (tuned for F1 on the validation split, see the labels below).",
        "",
    ]
    if custom_code:
        lines += [
            "The head (the mean of the encoder's token states, then one linear layer) is not one of transformers' "
            "own: it ships in this directory as `modeling_cockatoo.py`, which imports only torch and transformers, "
            "named by `auto_map` in `config.json`. Loading the model runs that file, so read it and pass "
            "`trust_remote_code=True`; without it transformers stops and asks for it, rather than answer with "
            "randomly initialised weights.",
            "",
        ]
    lines += [
        "```python",
        "import json",
        "from pathlib import Path",
        "",
        "from transformers import pipeline",
        "",
        f'model_dir = Path("{model_dir_name}")  # from the Hub: Path(huggingface_hub.snapshot_download("<user>/<repo>"))',
        "classify = pipeline(",
        f'    "text-classification", model=str(model_dir),{trust} top_k=None, function_to_apply="sigmoid"',
        ")",
        'thresholds = json.loads((model_dir / "thresholds.json").read_text())',
        'texts = ["I know where you live and I will hurt you tonight", "What time does the library open on Saturday?"]',
        "for text, result in zip(texts, classify(texts)):",
        '    scores = {r["label"]: r["score"] for r in result}',
        "    flagged = [label for label, score in scores.items() if score >= thresholds[label]]",
        '    print(json.dumps({"text": text, "flagged": flagged, "scores": scores}))',
        "```",
        "",
        f"`AutoModelForSequenceClassification.from_pretrained(model_dir,{trust.rstrip(',')})` loads the same model "
        "(the sigmoids of its logits are the scores). The pipeline scores a text in one pass, up to the encoder's "
        "limit (`truncation=True` cuts longer ones); the project's server, `app.py`, scores long texts in "
        "overlapping windows and keeps each label's maximum, and applies `thresholds.json` itself. To publish this "
        "directory, upload it as it is, card, thresholds and code included: `hf upload <user>/<repo> "
        f"{model_dir_name} .` (`push_to_hub` on the loaded model sends only the config, the weights and the code).",
        "",
    ]
    return lines


def write_model_card(
    model_dir: Path,
    *,
    title: str,
    base_model: str,
    data_dir: str,
    label_names: Sequence[str],
    label_stats: Mapping[str, Mapping[str, float]],
    source_counts: Mapping[str, Mapping[str, int]],
    credits: Sequence[SourceCredit],
    thresholds: Mapping[str, float],
    eval_results: Mapping[str, Any],
    settings: Mapping[str, Any],
) -> Path:
    """``README.md`` in the model directory: Hub metadata, how to use it, labels, training data (rows, licence,
    citation per source), metrics, plots, settings."""
    custom = settings.get("pooling", "mean") == "mean"  # the mean-pooling head ships as code (modeling_cockatoo.py)
    lines = [
        "---",
        "library_name: transformers",
        "pipeline_tag: text-classification",
        f"base_model: {base_model}",
        f"tags: [text-classification, multi-label-classification, moderation{', custom_code' if custom else ''}]",
        "---",
        "",
        f"# {title}",
        "",
        f"Multi-label moderation classifier ({', '.join(label_names)}) fine-tuned from `{base_model}` by "
        f"`train_text.py` on the prepared dataset `{data_dir}`. Each label is an independent sigmoid score; a text "
        "is flagged for a label when its score reaches that label's threshold (`thresholds.json`).",
        *(
            [
                "",
                f'`{UMBRELLA_LABEL}` is the broad label, "a moderation system should flag this": positive in the '
                "training data wherever another label is, and where a source's broad flag is (e.g. ToxicChat's "
                "toxicity, any OpenAI moderation category); a text is `flagged` when any label, "
                f"`{UMBRELLA_LABEL}` included, reaches its threshold.",
            ]
            if UMBRELLA_LABEL in label_names
            else []
        ),
        "",
        *usage_section(title, custom),
        "## Labels",
        "",
        "| index | label | train rows that know it | train positives | pos_weight | threshold |",
        "|---|---|---|---|---|---|",
    ]
    for j, name in enumerate(label_names):
        stats = label_stats.get(name, {})
        lines.append(
            f"| {j} | {name} | {int(stats.get('known', 0))} | {int(stats.get('positive', 0))} | "
            f"{_fmt(stats.get('pos_weight'))} | {thresholds[name]:.2f} |"
        )
    lines += ["", "## Training data", ""]
    lines += training_data_table(source_counts, credits)
    lines += [
        "",
        "Rows per split of the prepared dataset. Labels a source does not annotate are unknown for its rows and are "
        "left out of the loss and the metrics.",
        "",
        "## Metrics",
        "",
        "Precision, recall and F1 at the default 0.5 and at the per-label thresholds tuned for F1 on the "
        "validation split; areas under the ROC and precision-recall curves. Counted on known labels only.",
    ]
    for split, result in eval_results.items():
        if not isinstance(result, Mapping) or AT_DEFAULT not in result:
            continue
        lines += ["", f"### {split} ({result.get('rows', '?')} rows)", ""]
        lines.append(metrics_table(label_names, result[AT_DEFAULT], result[AT_TUNED]))
    lines += [
        "",
        "## Plots",
        "",
        f"![precision-recall curves]({PLOTS_DIR}/{PR_CURVES_PNG})",
        "",
        f"![F1 against threshold]({PLOTS_DIR}/{F1_THRESHOLD_PNG})",
        "",
        "## Training",
        "",
        "| setting | value |",
        "|---|---|",
    ]
    for key in (
        "pooling",
        "linear_probe",
        "freeze_layers",
        "dropout",
        "epochs",
        "max_steps",
        "batch_size",
        "grad_accum",
        "lr",
        "head_lr",
        "max_length",
        "loss",
        "loss_reduction",
        "any_of_weight",
        "seed",
        "precision",
    ):
        if key in settings:
            lines.append(f"| {key} | {settings[key]} |")
    for key in ("global_step", "world_size", "best_checkpoint"):
        if key in eval_results:
            lines.append(f"| {key} | {eval_results[key]} |")
    lines += [
        "",
        "All resolved settings are in `training_settings.json`; the figures above are in `eval_results.json`.",
        "",
    ]
    path = Path(model_dir) / MODEL_CARD
    path.write_text("\n".join(lines))
    return path
