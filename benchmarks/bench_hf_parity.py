"""A model directory in plain transformers against our server: how far apart their scores are.

    .venv/bin/python benchmarks/bench_hf_parity.py --model-dir data/demo_model
    .venv/bin/python benchmarks/bench_hf_parity.py --model-dir constellation_one_text --texts 200

Takes the first --texts lines of ../shared/datasets/tweeteval_hate/val_text.txt (--text-file) that fit the
model's window in one piece, plus the README's four example texts, and scores them twice: with the server's
``TextClassifier`` (float32), and, in a process that has only torch and transformers (tests/hf_modeling/hub_user.py),
with the text-classification pipeline (``trust_remote_code=True, top_k=None, function_to_apply="sigmoid"``) and
with AutoModelForSequenceClassification (one padded batch). Prints, for each of the two, the largest and the mean
absolute difference over every text and label, and how many texts get other positive labels at the model's
thresholds.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from cockatoo_ml.inference.classifier import TextClassifier  # noqa: E402
from tests.hf_modeling.hub_user import hub_user  # noqa: E402

DEFAULT_TEXTS = REPO_ROOT.parent / "shared" / "datasets" / "tweeteval_hate" / "val_text.txt"
README_TEXTS = [
    "I could kill for a coffee",
    "I know where you live and I will hurt you tonight",
    "send me nudes right now",
    "you are a pathetic idiot and everyone hates you",
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, default=REPO_ROOT / "data" / "demo_model")
    parser.add_argument("--texts", type=int, default=46, help="lines of --text-file to take (default 46: 50 texts)")
    parser.add_argument("--text-file", type=Path, default=DEFAULT_TEXTS)
    args = parser.parse_args()

    classifier = TextClassifier.load(args.model_dir, dtype="float32")
    fits = [
        line
        for line in args.text_file.read_text(encoding="utf-8").splitlines()
        if line.strip() and len(classifier.tokenizer(line)["input_ids"]) <= classifier.window
    ]
    texts = README_TEXTS + fits[: args.texts]
    served = np.array([score.scores for score in classifier.score(texts)])
    seen = hub_user(texts, args.model_dir)[str(args.model_dir)]
    thresholds = np.array([classifier.thresholds[label] for label in classifier.labels])
    print(
        f"model {args.model_dir} ({classifier.window}-token window), {len(texts)} texts, {len(classifier.labels)} labels"
    )
    print(f"transformers ran {seen['module']}")
    for way in ("pipeline", "AutoModelForSequenceClassification"):
        diff = np.abs(np.array(seen[way]) - served)
        decisions = ((np.array(seen[way]) >= thresholds) != (served >= thresholds)).any(axis=1).sum()
        print(
            f"{way}: max |diff| {diff.max():.2e}, mean {diff.mean():.2e}, texts with other positive labels {decisions}"
        )
    refused = [name for name, error in seen["without_trust_remote_code"].items() if error]
    print(f"without trust_remote_code, refused by: {', '.join(refused) or 'none'}")


if __name__ == "__main__":
    main()
