"""Training defaults and settings of ``train_text.py`` (docs/configuration.md): flags, the often-changed ones also
a ``COCKATOO_*`` environment variable, or a recipe file. The resolved values of every run are saved as
``training_settings.json`` in its model directory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal

from cockatoo_ml.registry.models import DEFAULT_BASE_MODEL
from cockatoo_ml.registry.paths import MODEL_DIR_SETTING, PROCESSED_DIR
from cockatoo_ml.settings import setting

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
POOLING: Final = (
    "mean"  # "mean": average of the token states (how sentence encoders were trained); "cls": HF's own head
)
LINEAR_PROBE = True  # LP-FT: fit the head as a logistic regression on frozen features before fine-tuning
DROPOUT = None  # dropout while fine-tuning; None keeps the base model's own (0.1 for BERT-likes)
# Embeddings + this many bottom transformer layers are not fine-tuned (--freeze-layers); 0 trains all of them.
FREEZE_LAYERS = 0
# The linear probe encodes at most this many training rows per label (the rows that know it, sampled with --seed):
# the thin labels keep all of theirs, harassment's 25k are cut, and the probe costs 2-4 min instead of 7 on a CPU.
PROBE_ROWS_PER_LABEL = 4000
HEAD_LR = None  # learning rate of the classification head; None = the same as --lr
LOSS_REDUCTION: Final = "label"  # "label": each label's mean over its known cells, then the mean over labels; "cell"
# Weight of the noisy-OR task for rows a source flags "at least one of" (sources.py, rule 5). Off by default: on the
# public corpus it cost validation macro PR-AUC at every evaluation (weight 1: 0.773 against 0.831 at half an
# epoch; weight 0.1: 0.850 against 0.869 at one epoch, 0.876 against 0.885 at 1.5); docs/benchmarks.md.
ANY_OF_WEIGHT = 0.0

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
EXPERIMENT_ID = "constellation-one-text-001"
TELEMETRY_TIMEOUT_S = 5.0  # per HTTP request
TELEMETRY_RETRIES = 2  # extra attempts after a failed send
TELEMETRY_RETRY_BACKOFF_S = 0.5  # doubled after each failed attempt
TELEMETRY_QUEUE_SIZE = 256  # payloads waiting to be sent; when full, new ones are dropped (training never waits)
TELEMETRY_CLOSE_TIMEOUT_S = 10.0  # how long the end of training waits for queued payloads

RESUME_LATEST = "latest"  # bare --resume


@dataclass
class TrainSettings:
    """Flags of ``train_text.py`` (``--foo-bar`` sets ``foo_bar``); the keys of a recipe file."""

    recipe: Path | None = setting(
        None,
        help="Recipe TOML file whose keys are these settings (e.g. recipes/demo.toml); may also be given as the "
        "first argument. Flags override it; it overrides the environment.",
    )
    data: Path | None = setting(
        None,
        help=f"Prepared dataset folder (prepare_data.py output). Default: {PROCESSED_DIR}; with --eval-only, "
        "the dataset the model was trained on.",
    )
    base_model: str = setting(
        DEFAULT_BASE_MODEL,
        env="COCKATOO_BASE_MODEL",
        help="Hub id, local folder or preset (minilm, deberta-v3-base, roberta-base, ...) to fine-tune.",
    )
    output_dir: Path = MODEL_DIR_SETTING.field()
    checkpoint_dir: Path | None = setting(
        None, help=f"Checkpoints and TensorBoard logs. Default: <output-dir>{CHECKPOINTS_SUFFIX}"
    )
    epochs: float = setting(
        EPOCHS, env="COCKATOO_EPOCHS", help="Passes over the training split (ignored when --max-steps > 0)."
    )
    max_steps: int = setting(-1, help="Stop after this many optimiser steps (> 0 overrides --epochs).")
    batch_size: int = setting(BATCH_SIZE, env="COCKATOO_BATCH_SIZE", ge=1, help="Training batch per device.")
    eval_batch_size: int | None = setting(None, ge=1, help="Evaluation batch per device (default 2x --batch-size).")
    grad_accum: int = setting(GRAD_ACCUM, ge=1, help="Gradient accumulation steps.")
    lr: float = setting(
        LEARNING_RATE, env="COCKATOO_LR", gt=0, help="Peak learning rate (linear warm-up, linear decay)."
    )
    weight_decay: float = setting(WEIGHT_DECAY, help="AdamW weight decay.")
    warmup_ratio: float = setting(WARMUP_RATIO, ge=0, lt=1, help="Share of steps spent warming up.")
    max_length: int | None = setting(
        None,
        ge=8,
        help=f"Tokens per text (longer texts are truncated). Default: {MAX_LENGTH}, capped at the model's "
        "window; with --eval-only, the value the model was trained with.",
    )
    seed: int = setting(SEED, help="Random seed (weights of the new head, shuffling).")
    resume: str | None = setting(
        None,
        nargs="?",
        const=RESUME_LATEST,
        help="Continue an interrupted run: bare --resume takes the newest checkpoint in --checkpoint-dir, or give a "
        "checkpoint folder.",
    )
    eval_only: bool = setting(
        False,
        help="Score the finished model in --output-dir on --eval-split and compare with its eval_results.json; "
        "trains nothing.",
    )
    eval_split: Literal["test", "validation"] = setting("test", help="Split scored by --eval-only.")
    parity_only: bool = setting(
        False,
        help="Write parity.json (validation texts, labels and float32 scores: what lets the server check its fast "
        "bfloat16 path) into the finished model in --output-dir, from --data's validation split; trains nothing. "
        "Training writes it itself.",
    )
    eval_steps: int = setting(
        0, ge=0, help=f"Evaluate and checkpoint every N steps (0: {EVALS_PER_RUN} times per run)."
    )
    logging_steps: int = setting(LOGGING_STEPS, ge=1, help="Log loss/learning rate every N steps.")
    save_total_limit: int = setting(SAVE_TOTAL_LIMIT, ge=1, help="Checkpoints kept (plus the best).")
    baselines: list[str] = setting(
        default_factory=lambda: list(CARD_BASELINES),
        help="Baselines trained on the same train rows and put beside the model on the test split in the model card "
        "and evaluation/ (tfidf, frozen; as evaluate.py --baseline); 'none' for no comparison.",
    )
    pooling: Literal["mean", "cls"] = setting(
        POOLING,
        help="mean: a linear layer on the mean of the token states (how sentence encoders such as MiniLM "
        "were trained); cls: the architecture's own AutoModelForSequenceClassification head.",
    )
    linear_probe: bool = setting(
        LINEAR_PROBE,
        help="Before fine-tuning, fit the head as one logistic regression per label on the frozen "
        "encoder's features (LP-FT); --no-linear-probe starts from a random head. Mean pooling only.",
    )
    dropout: float | None = setting(
        DROPOUT,
        ge=0,
        lt=1,
        help="Dropout rate of every dropout layer while fine-tuning (default: the base model's own, 0.1 for "
        "BERT-likes); 0 saves a seventh of a CPU training step.",
    )
    freeze_layers: int = setting(
        FREEZE_LAYERS,
        ge=0,
        help="Keep the embeddings and this many bottom transformer layers as pretrained (not fine-tuned); "
        "faster steps, and the features the encoder already had stay. 0 trains every layer.",
    )
    head_lr: float | None = setting(HEAD_LR, help="Learning rate of the classification head (default: --lr).")
    loss_reduction: Literal["label", "cell"] = setting(
        LOSS_REDUCTION,
        help="label: every label weighs the same in the loss, however few rows know it; cell: every "
        "known (row, label) cell weighs the same, so the most annotated label dominates.",
    )
    any_of_weight: float = setting(
        ANY_OF_WEIGHT,
        ge=0,
        help="Weight of the noisy-OR task for rows a source flags as positive for at least one of several "
        "labels without naming which (a source's any_of, e.g. ToxicChat's toxicity); 0 (default, measured "
        "better on the public corpus) ignores those rows.",
    )
    loss: Literal["bce", "asl"] = setting(LOSS, help="bce: masked BCE with per-label pos_weight; asl: asymmetric loss.")
    asl_gamma_neg: float = setting(ASL_GAMMA_NEG, help="ASL focusing on negatives.")
    asl_gamma_pos: float = setting(ASL_GAMMA_POS, help="ASL focusing on positives.")
    asl_clip: float = setting(ASL_CLIP, help="ASL probability margin for negatives.")
    precision: Literal["auto", "fp32", "fp16", "bf16"] = setting(
        "auto", help="auto: bf16 (or fp16 on older GPUs) + TF32 on CUDA, fp32 on CPU."
    )
    num_workers: int | None = setting(None, ge=0, help="DataLoader workers (default: 2 on CUDA, 0 on CPU).")
    telemetry: bool = setting(
        False,
        env="COCKATOO_TELEMETRY",
        help="Send live metrics to METRICS_WEBHOOK_URL / METRICS_VALIDATION_WEBHOOK_URL.",
    )
    student: bool = setting(
        False, help="After training, build the cascade's cheap student tier (<output-dir>/student/, as distill.py)."
    )
    experiment_id: str = setting(
        EXPERIMENT_ID, env="COCKATOO_EXPERIMENT_ID", help="experiment_id in telemetry payloads."
    )

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.output_dir.with_name(self.output_dir.name + CHECKPOINTS_SUFFIX)


@dataclass(frozen=True)
class TelemetrySettings:
    """Where --telemetry sends its payloads (environment only: URLs and keys stay out of shell history)."""

    training_webhook_url: str = setting(
        "",
        env="METRICS_WEBHOOK_URL",
        flag=False,
        help="Receives a JSON payload on every training log (loss, learning rate, epoch).",
    )
    validation_webhook_url: str = setting(
        "",
        env="METRICS_VALIDATION_WEBHOOK_URL",
        flag=False,
        help="Receives a JSON payload on every evaluation (per-label and macro metrics).",
    )
    api_key: str = setting(
        "",
        env="METRICS_API_KEY",
        flag=False,
        secret=True,
        help="Sent as the Authorization header of the telemetry webhooks; never logged.",
    )
