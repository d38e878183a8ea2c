"""How much the serving precisions change a model's answers: scores and ``positive_labels`` (with the model's tuned
thresholds) in bfloat16 and int8 against float32, on the same texts; and, per precision, how much a text's
scores depend on the texts it is batched with (random batches of ``--batch-texts``, as the server's micro-batches,
against the text scored alone).

    .venv/bin/python benchmarks/bench_precision.py                          # the demo model (./quickstart.sh)
    .venv/bin/python benchmarks/bench_precision.py --model-dir constellation_one_text

Texts: the demo corpus and the first 500 tweets of ../shared/datasets/tweeteval_hate (one in ten made long, as in
bench_serve.py), or one text per line from --texts-file.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_serve import DEFAULT_TEXTS, load_texts  # noqa: E402
from cockatoo_ml.cli import run_main  # noqa: E402
from cockatoo_ml.errors import DataError  # noqa: E402
from cockatoo_ml.inference.classifier import TextClassifier  # noqa: E402


@dataclass
class PrecisionArgs:
    model_dir: str = field(default="data/demo_model", metadata={"help": "Trained model directory."})
    texts_file: str = field(default="", metadata={"help": "One text per line (default: demo corpus + tweets)."})
    tweets: int = field(default=500, metadata={"help": "Tweets added to the demo corpus by default."})
    batch_texts: int = field(default=32, metadata={"help": "Texts per random batch (COCKATOO_MICRO_BATCH_SIZE)."})
    batch_tokens: int = field(default=512, metadata={"help": "Padded tokens per pass (COCKATOO_MICRO_BATCH_TOKENS)."})
    rounds: int = field(default=3, metadata={"help": "Random batch compositions per precision."})


def default_texts(tweets: int) -> list[str]:
    corpus = REPO_ROOT / "demo" / "corpus.jsonl"
    texts = [json.loads(line)["text"] for line in corpus.read_text(encoding="utf-8").splitlines() if line.strip()]
    return texts + load_texts(DEFAULT_TEXTS, 0.1, 0)[:tweets]


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(PrecisionArgs).parse_args_into_dataclasses(args=argv)
    if args.texts_file:
        path = Path(args.texts_file)
        if not path.is_file():
            raise DataError(f"no texts at {path}; pass --texts-file with one text per line")
        texts = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    else:
        texts = default_texts(args.tweets)
    scores: dict[str, np.ndarray] = {}
    batch_drift: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # dtype -> (scores alone, scores in random batches)
    for dtype in ("float32", "bfloat16", "int8"):
        classifier = TextClassifier.load(Path(args.model_dir), dtype=dtype, max_batch_tokens=args.batch_tokens)
        scores[dtype] = np.array([result.scores for result in classifier.score(texts)])
        batch_drift[dtype] = batch_composition(classifier, texts, args.batch_texts, args.rounds)
    thresholds = np.array([classifier.thresholds[label] for label in classifier.labels])
    reference = scores["float32"] >= thresholds
    print(f"{args.model_dir}: {len(texts)} texts x {len(classifier.labels)} labels = {reference.size} decisions")
    print(f"{'precision':10} {'max |change|':>13} {'mean |change|':>14} {'decisions flipped':>18}")
    for dtype in ("bfloat16", "int8"):
        change = np.abs(scores[dtype] - scores["float32"])
        flipped = int(((scores[dtype] >= thresholds) != reference).sum())
        print(f"{dtype:10} {change.max():13.4f} {change.mean():14.5f} {flipped:9d} ({flipped / reference.size:.2%})")
    print(f"\nbatch composition: each text alone vs in {args.rounds} random batches of {args.batch_texts} texts")
    print(f"{'precision':10} {'max |change|':>13} {'texts >1e-6':>12} {'texts >1e-3':>12} {'decisions flipped':>18}")
    for dtype, (alone, batched) in batch_drift.items():
        change = np.abs(batched - alone[None])  # rounds x texts x labels
        moved = change.max(axis=2)
        flipped = int(((batched >= thresholds) != (alone >= thresholds)[None]).sum())
        decisions = batched.size
        print(
            f"{dtype:10} {change.max():13.2e} {(moved > 1e-6).mean():12.1%} {(moved > 1e-3).mean():12.1%} "
            f"{flipped:9d} ({flipped / decisions:.3%})"
        )
    return 0


def batch_composition(
    classifier: TextClassifier, texts: list[str], batch_texts: int, rounds: int
) -> tuple[np.ndarray, np.ndarray]:
    """Each text's scores alone, and in ``rounds`` random shuffles cut into batches of ``batch_texts``."""
    alone = np.array([classifier.score([text])[0].scores for text in texts])
    rng = np.random.default_rng(0)
    batched = np.empty((rounds, *alone.shape))
    for round_ in range(rounds):
        order = rng.permutation(len(texts))
        for start in range(0, len(order), batch_texts):
            chunk = order[start : start + batch_texts]
            batched[round_, chunk] = [result.scores for result in classifier.score([texts[i] for i in chunk])]
    return alone, batched


if __name__ == "__main__":
    sys.exit(run_main(main))
