"""Evaluate a model against baselines on a prepared split or on declared sources (``python evaluate.py --help``).

python evaluate.py --model-dir constellation_one_text --data data/processed_text --split test --baseline tfidf
python evaluate.py --url http://127.0.0.1:8000 --header 'Authorization: Bearer KEY' --data data/processed_text
"""

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.evaluation.run import main

if __name__ == "__main__":
    sys.exit(run_main(main))
