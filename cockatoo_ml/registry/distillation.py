"""Defaults of ``distill.py`` (the cascade's student tier, ``<model dir>/student/``)."""

from __future__ import annotations

STUDENT_DIR = "student"  # inside the model directory
CASCADE_FILE = "cascade.json"  # bands, measured agreement, answered share, candidates' figures
TEACHER_CACHE_DIR = ".teacher_scores"  # inside the model directory: the teacher's scores, reused by the next run
TARGET_AGREEMENT = 0.995  # a band holds the student's scores where it agrees with the teacher this often ...
BAND_CONFIDENCE = 0.95  # ... by a one-sided Clopper-Pearson bound at this confidence (598 agreeing texts at least)
BAND_MIN_TEXTS = 100  # and a side of a band holds at least this many band texts
BAND_SHARE = 0.2  # of the train split, kept from the student to fit the bands (with the validation split)
BAND_SEED = 0  # which rows are kept: the same on every run, so the teacher-score cache and the figures repeat
CANDIDATES = ("static", "tfidf")  # students trained and measured; the one answering most texts is kept
TEACHER_BATCH_TEXTS = 64  # texts per TextClassifier.score call while scoring the splits
SPEED_BATCH_TEXTS = 64  # texts per student call when its speed is measured (as one /batch request)

# Students regress the teacher's logits (clipped here), so the extremes that the bands live in keep their order.
LOGIT_CLIP = 1e-4
RIDGE_ALPHA = 1.0
STATIC_PCA_DIMS = 256  # model2vec embedding size
TFIDF_MAX_FEATURES = 200_000  # word 1-2-grams + character 2-5-grams; caps the student's memory
