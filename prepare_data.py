"""Prepare the moderation datasets: load sources, map labels, clean, de-duplicate, split, save.

python prepare_data.py                       # the Hub sources of sources/hub.toml, from data/raw
python prepare_data.py --sources sources/public_corpus.toml --raw-dir ../shared/datasets --output DIR
python prepare_data.py --help
"""

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.data.prepare import main

if __name__ == "__main__":
    sys.exit(run_main(main))
