"""What each source adds, measured cheaply: TF-IDF + logistic regression (evaluate.py's ``tfidf`` baseline) trained
on a prepared train split with one source left out (or some of its labels hidden), scored on the validation split.

    python benchmarks/bench_sources.py --data DIR --leave-out edos convabuse ailuminate catqa \
        --hide ailuminate:violence,nsfw

Prints validation PR-AUC per label; a left-out source's own validation rows are left out of its row's figures, with
the all-sources model's figure on the same rows in brackets (so a source's own rows do not reward keeping it), and
`unsafe` on ToxicChat's and the OpenAI set's rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the repo's package
from cockatoo_ml.evaluation.baselines import TfidfBaseline
from cockatoo_ml.evaluation.data import EvalRows, rows_from_split

FOCUS = ("toxicchat", "openai_moderation")  # the chatbot-traffic sources `unsafe` is judged on


def subset(rows: EvalRows, keep: np.ndarray) -> EvalRows:
    return dataclasses.replace(
        rows,
        texts=[t for t, k in zip(rows.texts, keep, strict=True) if k],
        labels=rows.labels[keep],
        label_mask=rows.label_mask[keep],
        sources=rows.sources[keep],
    )


def hide(rows: EvalRows, source: str, labels: list[str]) -> EvalRows:
    mask = rows.label_mask.copy()
    for name in labels:
        mask[rows.sources == source, rows.label_names.index(name)] = 0.0
    return dataclasses.replace(rows, label_mask=mask)


def pr_auc(scores: np.ndarray, rows: EvalRows, j: int, where: np.ndarray) -> float | None:
    known = (rows.label_mask[:, j] > 0) & where
    truth = rows.labels[known, j] > 0.5
    return float(average_precision_score(truth, scores[known, j])) if truth.any() and not truth.all() else None


def cell(value: float | None) -> str:
    return "  -  " if value is None else f"{value:.3f}"


def row(
    name: str, train: EvalRows, valid: EvalRows, left_out: str | None, full: np.ndarray | None
) -> tuple[str, np.ndarray]:
    """One table row; beside each figure on the sources that stay in, the all-sources model's on the same rows."""
    scores = TfidfBaseline().fit(train).score(valid.texts, progress=False)
    cells = []
    others = valid.sources != left_out if left_out else np.ones(len(valid), dtype=bool)
    for j in range(len(valid.label_names)):
        mine = pr_auc(scores, valid, j, others)
        reference = pr_auc(full, valid, j, others) if full is not None and left_out else None
        cells.append(cell(mine) + (f" ({cell(reference)})" if reference is not None else ""))
    unsafe = valid.label_names.index("unsafe") if "unsafe" in valid.label_names else None
    for source in FOCUS if unsafe is not None else ():
        cells.append(cell(pr_auc(scores, valid, unsafe, valid.sources == source)))  # type: ignore[arg-type]
    known = train.label_mask > 0
    positives = [int((known[:, j] & (train.labels[:, j] > 0.5)).sum()) for j in range(len(valid.label_names))]
    return f"| {name} | " + " | ".join(cells) + " | " + " / ".join(map(str, positives)) + " |", scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--leave-out", nargs="*", default=[], help="sources to leave out of train, one run each")
    parser.add_argument("--hide", nargs="*", default=[], help="SOURCE:LABEL,LABEL: hide those labels in train")
    args = parser.parse_args()
    train, valid = rows_from_split(args.data, "train"), rows_from_split(args.data, "validation")
    heads = list(valid.label_names)
    heads += [f"unsafe {s}" for s in FOCUS] if "unsafe" in valid.label_names else []
    print("| train rows | " + " | ".join(heads) + " | train positives |")
    print("|---" * (len(heads) + 2) + "|")
    line, full = row("all sources", train, valid, None, None)
    print(line, flush=True)
    for source in args.leave_out:
        print(row(f"without {source}", subset(train, train.sources != source), valid, source, full)[0], flush=True)
    for spec in args.hide:
        source, labels = spec.split(":")
        print(
            row(f"{source} without {labels}", hide(train, source, labels.split(",")), valid, None, full)[0], flush=True
        )


if __name__ == "__main__":
    main()
