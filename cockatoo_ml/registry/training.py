"""Training defaults for ``train_text.py``. Flags override them per run; the often-changed ones also read a
``COCKATOO_*`` environment variable (see README, "Configuration"). The resolved values of every run are saved
as ``training_settings.json`` in its model directory."""

from __future__ import annotations

from typing import Final

# --- optimisation -----------------------------------------------------------------------------------------
EPOCHS = 3.0
BATCH_SIZE = 16  # per device; the effective batch is BATCH_SIZE * GRAD_ACCUM * number of processes
GRAD_ACCUM = 1
LEARNING_RATE = 2e-5  # good for base-size encoders; small ones such as MiniLM like ~5e-5
WEIGHT_DECAY = 0.01
WARMUP_RATIO = 0.1  # share of the run spent warming the learning rate up
MAX_LENGTH = 256  # tokens per text; longer texts are truncated (the seed padded every text to this)
SEED = 42

# --- evaluation, checkpoints, logs ------------------------------------------------------------------------
EVALS_PER_RUN = 4  # with no --eval-steps, evaluate (and checkpoint) this many times in a run, last step included
SAVE_TOTAL_LIMIT = 2  # checkpoints kept on disk; the best one (by macro-F1) is always kept as well
LOGGING_STEPS = 25
# Macro PR-AUC over labels on the validation split: F1 at one threshold on 19 validation positives is noise, the
# area over every threshold is not (and thresholds are tuned afterwards anyway).
BEST_METRIC = "pr_auc"
CHECKPOINTS_SUFFIX = ".checkpoints"  # checkpoints + TensorBoard logs live beside the model dir, not inside it
EVAL_SPLITS = ("validation", "test")  # evaluated after training and stored in eval_results.json

# --- architecture and recipe (issue 9: what made the fine-tuned model beat TF-IDF and its own frozen encoder) ---
POOLING: Final = "mean"  # "mean": average of the token states (how sentence encoders were trained); "cls": HF's own head
LINEAR_PROBE = True  # LP-FT: fit the head as a logistic regression on frozen features before fine-tuning
HEAD_LR = None  # learning rate of the classification head; None = the same as --lr
LOSS_REDUCTION: Final = "label"  # "label": each label's mean over its known cells, then the mean over labels; "cell"

CARD_BASELINES = ("tfidf",)  # trained beside the model at the end of training (frozen costs one more encoder pass)

# --- loss ---------------------------------------------------------------------------------------------------
LOSS: Final = "bce"  # "bce": masked BCE with per-label pos_weight; "asl": asymmetric loss
POS_WEIGHT_MAX = 50.0  # cap on negatives/positives so a rare label cannot blow the loss up
ASL_GAMMA_NEG = 4.0  # ASL focusing on easy negatives (Ridnik et al. 2021 defaults)
ASL_GAMMA_POS = 0.0
ASL_CLIP = 0.05  # probability margin shifted off negatives

# --- thresholds -------------------------------------------------------------------------------------------
THRESHOLD_GRID_STEP = 0.01  # F1-optimal thresholds are searched on 0.01 .. 0.99

# --- telemetry (as in the seed project) ---------------------------------------------------------------------
TELEMETRY_ENV = "COCKATOO_TELEMETRY"  # 1/true/on switches telemetry on without the flag
TRAINING_WEBHOOK_ENV = "METRICS_WEBHOOK_URL"  # gets a payload on every training log
VALIDATION_WEBHOOK_ENV = "METRICS_VALIDATION_WEBHOOK_URL"  # gets a payload on every evaluation
API_KEY_ENV = "METRICS_API_KEY"  # sent as the Authorization header; never logged
EXPERIMENT_ID = "constellation-one-text-001"
TELEMETRY_TIMEOUT_S = 5.0  # per HTTP request
TELEMETRY_RETRIES = 2  # extra attempts after a failed send
TELEMETRY_RETRY_BACKOFF_S = 0.5  # doubled after each failed attempt
TELEMETRY_QUEUE_SIZE = 256  # payloads waiting to be sent; when full, new ones are dropped (training never waits)
TELEMETRY_CLOSE_TIMEOUT_S = 10.0  # how long the end of training waits for queued payloads
