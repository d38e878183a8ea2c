"""Defaults and settings of ``distill.py`` (the cascade's student tier, ``<model dir>/student/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cockatoo_ml.settings import setting

STUDENT_DIR = "student"  # inside the model directory
CASCADE_FILE = "cascade.json"  # bands, measured agreement, answered share, candidates' figures
TAUGHT_FILE = "taught_texts.npy"  # a digest of every text the student was taught (benchmarks leave them out)
BAND_UNIT = "window"  # students are taught and banded on the transformer's windows (cascade.json "unit")
TEACHER_CACHE_DIR = ".teacher_scores"  # inside the model directory: the teacher's scores, reused by the next run
TARGET_AGREEMENT = 0.995  # a band holds the student's scores where it agrees with the teacher this often ...
BAND_CONFIDENCE = 0.95  # ... by a one-sided Clopper-Pearson bound at this confidence (598 agreeing texts at least)
BAND_MIN_TEXTS = 100  # and a side of a band holds at least this many band texts
BAND_SHARE = 0.2  # of the train split, kept from the student to fit the bands (with the validation split)
BAND_SEED = 0  # which rows are kept: the same on every run, so the teacher-score cache and the figures repeat
BAND_HELD_OUT_SHARE = 0.5  # of the band texts, kept from fitting the bands to check them (and for the figures)
CANDIDATES = ("static", "tfidf")  # students trained and measured; the one answering most texts is kept
TEACHER_BATCH_TEXTS = 64  # texts per TextClassifier.score call while scoring the splits
SPEED_BATCH_TEXTS = 64  # texts per student call when its speed is measured (as one /batch request)

# Students regress the teacher's logits (clipped here), so the extremes that the bands live in keep their order.
LOGIT_CLIP = 1e-4
RIDGE_ALPHA = 1.0
STATIC_PCA_DIMS = 256  # model2vec embedding size
TFIDF_MAX_FEATURES = 200_000  # word 1-2-grams + character 2-5-grams; caps the student's memory
# A serving TF-IDF student's cache of its words' character n-gram columns: the budget's default (the setting is
# COCKATOO_STUDENT_WORD_CACHE_MB, registry/serving.py), and the longest word it keeps (longer: not a word).
TFIDF_WORD_CACHE_MB = 8
TFIDF_CACHED_WORD_CHARS = 100


@dataclass
class DistillSettings:
    """Flags of ``distill.py``."""

    model: Path = setting(help="Trained model directory (train_text.py output); writes <model>/student/.")
    data: Path | None = setting(
        None,
        help="Prepared dataset whose train split teaches the student and whose validation split fits the bands. "
        "Default: the dataset the model was trained on (its training settings' 'data').",
    )
    texts: Path | None = setting(
        None, help="Unlabelled texts, one per line, also scored by the teacher to teach the student."
    )
    candidates: list[str] = setting(
        default_factory=lambda: list(CANDIDATES),
        help="Students to train and measure: static (model2vec embeddings of the model itself), tfidf. The one "
        "answering most band texts is kept.",
    )
    target_agreement: float = setting(
        TARGET_AGREEMENT,
        help="A sure band holds the student's scores where its decision agrees with the teacher's at least this "
        "often: the lower confidence bound on the agreement measured on the band texts (validation, --band-share, "
        "--band-texts) must reach it (above 0.5, at most 1).",
    )
    band_confidence: float = setting(
        BAND_CONFIDENCE, help="Confidence of that one-sided Clopper-Pearson bound (0: the measured agreement itself)."
    )
    band_min_texts: int = setting(BAND_MIN_TEXTS, help="A side of a band holds at least this many band texts.")
    band_share: float = setting(
        BAND_SHARE,
        help="Share of the train split (and --texts) kept from the student to fit the bands with the validation "
        "split: the teacher's scores need no labels, and more band texts vouch for wider bands.",
    )
    band_held_out_share: float = setting(
        BAND_HELD_OUT_SHARE,
        help="Share of the band texts kept from fitting the bands, to check them (above 0, below 1): a band side "
        "whose decisions agree with the teacher's less often than --target-agreement on these texts is dropped, and "
        "the agreement cascade.json ('held_out') and /health report is measured on them.",
    )
    band_texts: Path | None = setting(
        None,
        help="Unlabelled texts, one per line, scored by the teacher to fit the bands only (never taught to the "
        "student); lines also among the student's texts are left out.",
    )
    static_token_pattern: str | None = setting(
        None,
        help="Tokens matching this regular expression are left out of the static student's vocabulary "
        "(model2vec's token_remove_pattern; default: its [unusedN] pattern).",
    )
