"""Defaults and settings of ``evaluate.py``: what the metrics count, how the baselines are built, how scoring is
chunked."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.paths import MODEL_DIR_SETTING, PROCESSED_DIR
from cockatoo_ml.settings import setting

OUTPUT_ROOT = Path("runs/evaluation")  # reports go to <root>/<model>-<data>/ unless --output-dir is given
ECE_BINS = 10  # equal-width probability bins of the expected calibration error and the reliability diagram
SCORE_CHUNK_TEXTS = 256  # texts per in-process scoring call: one progress-bar step, memory stays bounded
REMOTE_BATCH_TEXTS = 256  # texts per /batch request; the server's COCKATOO_MAX_BATCH_TEXTS default
REMOTE_TIMEOUT_S = 300.0  # one /batch request on a slow CPU server
MIN_POSITIVES_TO_COMPARE = 10  # a source x label row with fewer positives is listed but never marked as a loss
# The model "loses" where its PR-AUC is below a baseline's by more than this: half the report's last digit, so a
# tie at 1.000 (0.99998 against 1.0) is not marked as a loss.
LOSS_TOLERANCE = 0.0005
# The cascade's PR-AUC may be this much below the transformer alone before the report marks it (issue 11's bound).
CASCADE_PR_AUC_TOLERANCE = 0.01

# --- baselines (issue 9) --------------------------------------------------------------------------------------
BASELINES = ("tfidf", "frozen")
TFIDF_WORD_NGRAMS = (1, 2)
TFIDF_CHAR_NGRAMS = (2, 5)  # char_wb: character n-grams inside word boundaries
TFIDF_MIN_DF = 1  # scikit-learn's default: the baseline as issue 9 measured it
LOGREG_C = 1.0
LOGREG_MAX_ITER = 2000
FROZEN_MAX_TOKENS = 256  # tokens per text the frozen encoder reads (mean-pooled)
FROZEN_BATCH_TOKENS = 8192  # padded tokens per forward pass of the frozen encoder


@dataclass
class EvaluateSettings:
    """Flags of ``evaluate.py`` (``--foo-bar`` sets ``foo_bar``)."""

    model_dir: Path = MODEL_DIR_SETTING.field()
    url: str | None = setting(
        None, help="Score a running server instead (e.g. http://127.0.0.1:8000), through /health and /batch."
    )
    header: list[str] = setting(
        default_factory=list,
        action="extend",
        help="HTTP header for --url, 'Name: value'; repeatable. E.g. 'Authorization: Bearer KEY'.",
    )
    batch_texts: int = setting(
        REMOTE_BATCH_TEXTS,
        ge=1,
        help="Texts per /batch request with --url (halved by itself when the server answers 413).",
    )
    data: Path | None = setting(
        None,
        help=f"Prepared dataset (prepare_data.py output) to evaluate --split of; its train split trains the "
        f"baselines. Default: {PROCESSED_DIR} unless --sources is given.",
    )
    split: Literal["test", "validation"] = setting("test", help="Split of --data to evaluate.")
    sources: str | None = setting(
        None,
        help="Evaluate these declared sources instead (a sources TOML, as for prepare_data.py), whole: read, "
        "mapped, cleaned and de-duplicated as prepare_data.py does, with no split.",
    )
    raw_dir: str | None = setting(
        None, help="With --sources: folder with one sub-folder per source (default: the TOML's raw_dir)."
    )
    only: list[str] = setting(default_factory=list, action="extend", help="With --sources: only these sources (names).")
    baseline: list[str] = setting(
        default_factory=list,
        action="extend",
        help="Train a baseline on the train split of --data and put it beside the model; repeatable. tfidf: TF-IDF "
        "word 1-2 + char_wb 2-5-grams + logistic regression per label; frozen: the model's own base encoder, frozen, "
        "mean-pooled, + logistic regression per label.",
    )
    base_model: str | None = setting(
        None,
        help="Encoder of --baseline frozen (preset or path). Default: the base model named in the model "
        "directory's training_settings.json.",
    )
    output_dir: Path | None = setting(
        None,
        help=f"Where the report goes (evaluation.json, evaluation.md, PNG plots). Default: "
        f"{OUTPUT_ROOT}/<model>-<split or sources>.",
    )
    tune_thresholds: Path | None = setting(
        None,
        help="Write a thresholds.json tuned for F1 on the evaluated rows to this file (serve it by copying it "
        "into a model directory). Never replaces an existing file, nor writes into the model directory, without "
        "--overwrite.",
    )
    overwrite: bool = setting(
        False, help="Let --tune-thresholds replace an existing file, e.g. MODEL_DIR/thresholds.json."
    )

    def __post_init__(self) -> None:
        unknown = sorted(set(self.baseline) - set(BASELINES))
        if unknown:
            raise ConfigError(f"--baseline {unknown[0]!r} is not one of {', '.join(BASELINES)}")
        if self.baseline and self.sources and self.data is None:
            raise ConfigError("--baseline trains on the train split of --data: pass --data with --sources")
        if self.raw_dir and not self.sources:
            raise ConfigError("--raw-dir goes with --sources")
