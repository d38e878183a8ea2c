"""Where each stage reads and writes by default (relative to the working directory)."""

from __future__ import annotations

from pathlib import Path

from cockatoo_ml.settings import Spec

REPO_ROOT = Path(__file__).resolve().parents[2]

RAW_DIR = Path("data/raw")  # download_data.py -> one folder per source
PROCESSED_DIR = Path("data/processed_text")  # prepare_data.py -> datasets.DatasetDict
MODEL_DIR = Path("constellation_one_text")  # train_text.py -> servable model directory

HUB_SOURCES = REPO_ROOT / "sources" / "hub.toml"  # the Hub datasets: the data scripts without --sources
DEMO_SOURCES = REPO_ROOT / "sources" / "demo.toml"  # the embedded demo corpus (quickstart)
PUBLIC_CORPUS_SOURCES = REPO_ROOT / "sources" / "public_corpus.toml"  # ../shared/datasets

# One declaration for every stage that names the model directory: train_text.py --output-dir, evaluate.py
# --model-dir and the server.
MODEL_DIR_SETTING = Spec(
    "Model directory: train_text.py writes it (replaced atomically at the end); the server, evaluate.py and "
    "distill.py read it.",
    default=MODEL_DIR,
    env="COCKATOO_MODEL_DIR",
)
