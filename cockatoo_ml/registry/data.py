"""Defaults of the data stage (prepare_data.py, download_data.py). Flags and COCKATOO_* variables override them."""

from __future__ import annotations

# Split of the de-duplicated texts into train / validation / test (must be > 0 each; normalised to sum 1).
SPLIT_RATIOS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
SPLIT_SEED = 1234  # COCKATOO_SEED overrides; the same seed and inputs give the same splits

# Cleaning: Unicode normal form applied to every text before whitespace is collapsed and ends are stripped.
UNICODE_FORM = "NFC"
# A row whose every label is unknown teaches the model nothing (its loss is fully masked): drop it.
DROP_UNLABELLED = True

# Files written beside the prepared DatasetDict (the label table is contract.STATS_FILE).
PREPARE_SETTINGS_FILE = "prepare_settings.json"

# download_data.py writes <folder>/<prefix>.<source>.json once every file arrived; it holds the spec
# fingerprint, so a complete source with the same spec is not fetched again (one per source: sources may
# share a folder).
DOWNLOAD_MARKER_PREFIX = ".cockatoo_download"

ENV_SOURCES = "COCKATOO_SOURCES"  # a sources TOML used when --sources is not given
ENV_RAW_DIR = "COCKATOO_RAW_DIR"  # where raw sources live (default data/raw)
ENV_PROCESSED_DIR = "COCKATOO_PROCESSED_DIR"  # where prepare_data.py writes (default data/processed_text)
ENV_SEED = "COCKATOO_SEED"
