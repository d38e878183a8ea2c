"""Defaults and settings of ``distill.py`` (the cascade's student tier, ``<model dir>/student/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from cockatoo_ml.settings import setting

STUDENT_DIR = "student"  # inside the model directory
CASCADE_FILE = "cascade.json"  # bands, measured agreement, answered share, candidates' figures
TARGET_AGREEMENT = 0.995  # a band holds the student's scores where it agreed with the teacher this often
CANDIDATES = ("static", "tfidf")  # students trained and measured; the one answering most texts is kept
TEACHER_BATCH_TEXTS = 64  # texts per TextClassifier.score call while scoring the splits
SPEED_BATCH_TEXTS = 64  # texts per student call when its speed is measured (as one /batch request)

# Students regress the teacher's logits (clipped here), so the extremes that the bands live in keep their order.
LOGIT_CLIP = 1e-4
RIDGE_ALPHA = 1.0
STATIC_PCA_DIMS = 256  # model2vec embedding size
TFIDF_MAX_FEATURES = 200_000  # word 1-2-grams + character 2-5-grams; caps the student's memory


@dataclass
class DistillSettings:
    """Flags of ``distill.py``."""

    model: Path = setting(help="Trained model directory (train_text.py output); writes <model>/student/.")
    data: Path | None = setting(
        None, help="Prepared dataset whose train split teaches the student and whose validation split sets the bands. "
        "Default: the dataset the model was trained on (its training settings' 'data')."
    )
    texts: Path | None = setting(
        None, help="Unlabelled texts, one per line, also scored by the teacher to teach the student."
    )
    candidates: list[str] = setting(
        default_factory=lambda: list(CANDIDATES),
        help="Students to train and measure: static (model2vec embeddings of the model itself), tfidf. The one "
        "answering most validation texts is kept.",
    )
    target_agreement: float = setting(
        TARGET_AGREEMENT,
        help="A sure band holds the student's scores where its decision agreed with the teacher's this often on "
        "validation (above 0.5, at most 1).",
    )
    static_token_pattern: str | None = setting(
        None, help="Tokens matching this regular expression are left out of the static student's vocabulary "
        "(model2vec's token_remove_pattern; default: its [unusedN] pattern).",
    )
