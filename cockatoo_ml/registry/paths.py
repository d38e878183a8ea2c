"""Where each stage reads and writes by default (relative to the working directory)."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

RAW_DIR = Path("data/raw")  # download_data.py -> one folder per source
PROCESSED_DIR = Path("data/processed_text")  # prepare_data.py -> datasets.DatasetDict
MODEL_DIR = Path("constellation_one_text")  # train_text.py -> servable model directory

HUB_SOURCES = REPO_ROOT / "sources" / "hub.toml"  # the Hub datasets: the data scripts without --sources
DEMO_SOURCES = REPO_ROOT / "sources" / "demo.toml"  # the embedded demo corpus (quickstart)
PUBLIC_CORPUS_SOURCES = REPO_ROOT / "sources" / "public_corpus.toml"  # ../shared/datasets
