"""How much the serving precisions change a model's answers: scores and ``positive_labels`` (with the model's tuned
thresholds) in bfloat16 and int8 against float32, on the same texts.

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
from cockatoo_ml.serving.model import TextClassifier  # noqa: E402


@dataclass
class PrecisionArgs:
    model_dir: str = field(default="data/demo_model", metadata={"help": "Trained model directory."})
    texts_file: str = field(default="", metadata={"help": "One text per line (default: demo corpus + tweets)."})
    tweets: int = field(default=500, metadata={"help": "Tweets added to the demo corpus by default."})


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
    for dtype in ("float32", "bfloat16", "int8"):
        classifier = TextClassifier.load(Path(args.model_dir), dtype=dtype)
        scores[dtype] = np.array([result.scores for result in classifier.score(texts)])
    thresholds = np.array([classifier.thresholds[label] for label in classifier.labels])
    reference = scores["float32"] >= thresholds
    print(f"{args.model_dir}: {len(texts)} texts x {len(classifier.labels)} labels = {reference.size} decisions")
    print(f"{'precision':10} {'max |change|':>13} {'mean |change|':>14} {'decisions flipped':>18}")
    for dtype in ("bfloat16", "int8"):
        change = np.abs(scores[dtype] - scores["float32"])
        flipped = int(((scores[dtype] >= thresholds) != reference).sum())
        print(f"{dtype:10} {change.max():13.4f} {change.mean():14.5f} {flipped:9d} ({flipped / reference.size:.2%})")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
