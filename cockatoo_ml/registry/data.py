"""Defaults and settings of the data stage (download_data.py, prepare_data.py): flags, the often-changed ones also
a ``COCKATOO_*`` environment variable (docs/configuration.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.paths import PROCESSED_DIR, RAW_DIR
from cockatoo_ml.settings import setting

# Split of the de-duplicated texts into train / validation / test (must be > 0 each; normalised to sum 1).
SPLIT_RATIOS: dict[str, float] = {"train": 0.8, "validation": 0.1, "test": 0.1}
SPLIT_SEED = 1234  # the same seed and inputs give the same splits

# Cleaning: Unicode normal form applied to every text before whitespace is collapsed and ends are stripped.
UNICODE_FORM: Literal["NFC", "NFKC", "NFD", "NFKD"] = "NFC"
# A row whose every label is unknown teaches the model nothing (its loss is fully masked): drop it.
DROP_UNLABELLED = True

# Files written beside the prepared DatasetDict (the label table is contract.STATS_FILE).
PREPARE_SETTINGS_FILE = "prepare_settings.json"

# download_data.py writes <folder>/<prefix>.<source>.json once every file arrived; it holds the spec
# fingerprint, so a complete source with the same spec is not fetched again (one per source: sources may
# share a folder).
DOWNLOAD_MARKER_PREFIX = ".cockatoo_download"


@dataclass
class SourceSelection:
    """The settings both data scripts share: which sources, which of them, and their folder."""

    sources: str = setting(
        "", env="COCKATOO_SOURCES", help="Sources TOML file (default: the Hub sources, sources/hub.toml)."
    )
    only: list[str] = setting(default_factory=list, help="Only these sources (names).")
    raw_dir: str = setting(
        "",
        env="COCKATOO_RAW_DIR",
        help=f"Folder with one sub-folder per source: download_data.py writes there (default {RAW_DIR}), "
        f"prepare_data.py reads there (default: the sources TOML's raw_dir, else {RAW_DIR}).",
    )


@dataclass
class DownloadSettings(SourceSelection):
    """Flags of ``download_data.py``."""

    from_dir: str = setting("", help="Copy the sources from DIR/<source>/ instead of the Hub (air-gapped machines).")
    force: bool = setting(False, help="Fetch again even when a source is marked complete.")
    hf_token: str = setting(
        "",
        env="HF_TOKEN",
        flag=False,
        secret=True,
        help="Hugging Face token for gated or private Hub datasets and models (the Hub libraries read it too).",
    )


@dataclass
class PrepareSettings(SourceSelection):
    """Flags of ``prepare_data.py``."""

    output: str = setting(
        str(PROCESSED_DIR), env="COCKATOO_PROCESSED_DIR", help="Where to save the prepared DatasetDict."
    )
    seed: int = setting(SPLIT_SEED, env="COCKATOO_SEED", help="Seed of the train/validation/test split.")
    train_ratio: float = setting(SPLIT_RATIOS["train"], help="Share of texts in train.")
    validation_ratio: float = setting(SPLIT_RATIOS["validation"], help="Share in validation.")
    test_ratio: float = setting(SPLIT_RATIOS["test"], help="Share in test.")
    unicode_form: Literal["NFC", "NFKC", "NFD", "NFKD"] = setting(UNICODE_FORM, help="Unicode normal form.")
    keep_unlabelled: bool = setting(
        not DROP_UNLABELLED, help="Keep rows whose every label is unknown (they carry no training signal)."
    )

    def ratios(self) -> tuple[float, float, float]:
        """The train/validation/test shares, normalised to sum 1."""
        given = (self.train_ratio, self.validation_ratio, self.test_ratio)
        if min(given) <= 0:
            raise ConfigError(f"split ratios must all be > 0, got train/validation/test = {list(given)}")
        return given[0] / sum(given), given[1] / sum(given), given[2] / sum(given)
