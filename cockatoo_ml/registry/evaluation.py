"""Defaults of ``evaluate.py``: what the metrics count, how the baselines are built, how scoring is chunked."""

from __future__ import annotations

from pathlib import Path

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
