"""Download the dataset sources into data/raw/<source>/ (from the Hugging Face Hub, or --from-dir DIR).

python download_data.py                      # the Hub sources of sources/hub.toml
python download_data.py --only phishing toxic_chat
python download_data.py --sources sources/public_corpus.toml --from-dir ../shared/datasets
"""

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.data.download import main

if __name__ == "__main__":
    sys.exit(run_main(main))
