"""The training run, start to finish: prepared dataset -> fine-tuned model directory.

``train`` loads the prepared dataset, tokenizes it once, fine-tunes with the ``transformers`` Trainer (masked
multi-label loss, length-grouped batches, dynamic padding, best checkpoint by macro-F1), tunes per-label
thresholds on validation, evaluates validation and test, and writes the model directory aside before renaming
it into place. ``evaluate_model_dir`` (``--eval-only``) scores a finished model directory again.
The same code runs as one process or under ``torchrun`` / ``accelerate launch``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import math
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import (
    AutoTokenizer,
    HfArgumentParser,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from cockatoo_ml.artifacts import EVAL_RESULTS_FILE, SETTINGS_FILE, load_thresholds, save_thresholds
from cockatoo_ml.cli import report_settings, settings_to_dict
from cockatoo_ml.data.contract import load_processed
from cockatoo_ml.distillation.run import DistillSettings, build_student
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.modeling import MeanPoolingClassifier, load_classifier, new_classifier
from cockatoo_ml.registry import paths
from cockatoo_ml.registry import training as defaults
from cockatoo_ml.registry.env import env_float, env_int, env_str
from cockatoo_ml.registry.models import DEFAULT_BASE_MODEL, resolve_base_model
from cockatoo_ml.training.devices import precision_flags, precision_name
from cockatoo_ml.training.loss import MultiLabelLoss, pos_weight_from_known
from cockatoo_ml.training.probe import init_head_from_probe
from cockatoo_ml.training.metrics import TrainerMetrics, multilabel_metrics, sigmoid
from cockatoo_ml.training.report import (
    AT_DEFAULT,
    AT_TUNED,
    MODEL_CARD,
    metrics_table,
    write_model_card,
    write_plots,
)
from cockatoo_ml.training.telemetry import telemetry_from_env
from cockatoo_ml.training.thresholds import tune_thresholds
from cockatoo_ml.training.tokenize import LENGTH_COLUMN, MultiLabelCollator, tokenize_dataset

log = logging.getLogger(__name__)

RESUME_LATEST = "latest"
EVALUATION_DIR = "evaluation"  # in the model directory: the evaluation stage's report against the baselines


@dataclass
class TrainSettings:
    """Flags of ``train_text.py`` (``--foo-bar`` sets ``foo_bar``); defaults from ``cockatoo_ml.registry``."""

    data: Path | None = field(
        default=None,
        metadata={"help": f"Prepared dataset folder (prepare_data.py output). Default: {paths.PROCESSED_DIR}; "
                  "with --eval-only, the dataset the model was trained on."},
    )
    base_model: str = field(
        default_factory=lambda: env_str("COCKATOO_BASE_MODEL", DEFAULT_BASE_MODEL),
        metadata={"help": "Hub id, local folder or preset (minilm, deberta-v3-base, roberta-base, ...) to fine-tune. "
                  "Env: COCKATOO_BASE_MODEL."},
    )
    output_dir: Path = field(
        default_factory=lambda: Path(env_str("COCKATOO_MODEL_DIR", str(paths.MODEL_DIR))),
        metadata={"help": "Model directory to write (replaced atomically at the end). Env: COCKATOO_MODEL_DIR."},
    )
    checkpoint_dir: Path | None = field(
        default=None,
        metadata={"help": f"Checkpoints and TensorBoard logs. Default: <output-dir>{defaults.CHECKPOINTS_SUFFIX}"},
    )
    epochs: float = field(
        default_factory=lambda: env_float("COCKATOO_EPOCHS", defaults.EPOCHS),
        metadata={"help": "Passes over the training split (ignored when --max-steps > 0). Env: COCKATOO_EPOCHS."},
    )
    max_steps: int = field(default=-1, metadata={"help": "Stop after this many optimiser steps (> 0 overrides --epochs)."})
    batch_size: int = field(
        default_factory=lambda: env_int("COCKATOO_BATCH_SIZE", defaults.BATCH_SIZE),
        metadata={"help": "Training batch per device. Env: COCKATOO_BATCH_SIZE."},
    )
    eval_batch_size: int | None = field(default=None, metadata={"help": "Evaluation batch per device (default 2x --batch-size)."})
    grad_accum: int = field(default=defaults.GRAD_ACCUM, metadata={"help": "Gradient accumulation steps."})
    lr: float = field(
        default_factory=lambda: env_float("COCKATOO_LR", defaults.LEARNING_RATE),
        metadata={"help": "Peak learning rate (linear warm-up, linear decay). Env: COCKATOO_LR."},
    )
    weight_decay: float = field(default=defaults.WEIGHT_DECAY, metadata={"help": "AdamW weight decay."})
    warmup_ratio: float = field(default=defaults.WARMUP_RATIO, metadata={"help": "Share of steps spent warming up."})
    max_length: int | None = field(
        default=None,
        metadata={"help": f"Tokens per text (longer texts are truncated). Default: {defaults.MAX_LENGTH}, capped at the "
                  "model's window; with --eval-only, the value the model was trained with."},
    )
    seed: int = field(default=defaults.SEED, metadata={"help": "Random seed (weights of the new head, shuffling)."})
    resume: str | None = field(
        default=None,
        metadata={"help": "Continue an interrupted run: bare --resume takes the newest checkpoint in --checkpoint-dir, "
                  "or give a checkpoint folder.", "nargs": "?", "const": RESUME_LATEST},
    )
    eval_only: bool = field(default=False, metadata={"help": "Score the finished model in --output-dir on --eval-split "
                                                             "and compare with its eval_results.json; trains nothing."})
    eval_split: Literal["test", "validation"] = field(default="test", metadata={"help": "Split scored by --eval-only."})
    eval_steps: int = field(
        default=0,
        metadata={"help": f"Evaluate and checkpoint every N steps (0: {defaults.EVALS_PER_RUN} times per run)."},
    )
    logging_steps: int = field(default=defaults.LOGGING_STEPS, metadata={"help": "Log loss/learning rate every N steps."})
    save_total_limit: int = field(default=defaults.SAVE_TOTAL_LIMIT, metadata={"help": "Checkpoints kept (plus the best)."})
    baselines: list[str] = field(
        default_factory=lambda: list(defaults.CARD_BASELINES),
        metadata={"help": "Baselines trained on the same train rows and put beside the model on the test split in the "
                  "model card and evaluation/ (tfidf, frozen; as evaluate.py --baseline); 'none' for no comparison."},
    )
    pooling: Literal["mean", "cls"] = field(
        default=defaults.POOLING,
        metadata={"help": "mean: a linear layer on the mean of the token states (how sentence encoders such as MiniLM "
                  "were trained); cls: the architecture's own AutoModelForSequenceClassification head."},
    )
    linear_probe: bool = field(
        default=defaults.LINEAR_PROBE,
        metadata={"help": "Before fine-tuning, fit the head as one logistic regression per label on the frozen "
                  "encoder's features (LP-FT); --no-linear-probe starts from a random head. Mean pooling only."},
    )
    head_lr: float | None = field(
        default=defaults.HEAD_LR, metadata={"help": "Learning rate of the classification head (default: --lr)."}
    )
    loss_reduction: Literal["label", "cell"] = field(
        default=defaults.LOSS_REDUCTION,
        metadata={"help": "label: every label weighs the same in the loss, however few rows know it; cell: every "
                  "known (row, label) cell weighs the same, so the most annotated label dominates."},
    )
    loss: Literal["bce", "asl"] = field(
        default=defaults.LOSS, metadata={"help": "bce: masked BCE with per-label pos_weight; asl: asymmetric loss."}
    )
    asl_gamma_neg: float = field(default=defaults.ASL_GAMMA_NEG, metadata={"help": "ASL focusing on negatives."})
    asl_gamma_pos: float = field(default=defaults.ASL_GAMMA_POS, metadata={"help": "ASL focusing on positives."})
    asl_clip: float = field(default=defaults.ASL_CLIP, metadata={"help": "ASL probability margin for negatives."})
    precision: Literal["auto", "fp32", "fp16", "bf16"] = field(
        default="auto", metadata={"help": "auto: bf16 (or fp16 on older GPUs) + TF32 on CUDA, fp32 on CPU."}
    )
    num_workers: int | None = field(default=None, metadata={"help": "DataLoader workers (default: 2 on CUDA, 0 on CPU)."})
    telemetry: bool = field(
        default=False,
        metadata={"help": f"Send live metrics to {defaults.TRAINING_WEBHOOK_ENV} / {defaults.VALIDATION_WEBHOOK_ENV} "
                  f"(also on when {defaults.TELEMETRY_ENV}=1)."},
    )
    student: bool = field(
        default=False,
        metadata={"help": "After training, build the cascade's cheap student tier (<output-dir>/student/, as distill.py)."},
    )
    experiment_id: str = field(
        default_factory=lambda: env_str("COCKATOO_EXPERIMENT_ID", defaults.EXPERIMENT_ID),
        metadata={"help": "experiment_id in telemetry payloads. Env: COCKATOO_EXPERIMENT_ID."},
    )

    @property
    def checkpoints(self) -> Path:
        return self.checkpoint_dir or self.output_dir.with_name(self.output_dir.name + defaults.CHECKPOINTS_SUFFIX)


def parse_settings(argv: Sequence[str] | None = None) -> TrainSettings:
    parser = HfArgumentParser(TrainSettings, description="Fine-tune a multi-label moderation classifier.")
    (settings,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    for name in ("batch_size", "grad_accum", "logging_steps", "save_total_limit"):
        if getattr(settings, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(settings, name)})")
    if not 0 <= settings.warmup_ratio < 1:
        raise ConfigError(f"--warmup-ratio is a share of the run, from 0 up to (not including) 1 (got {settings.warmup_ratio})")
    if settings.max_length is not None and settings.max_length < 8:
        raise ConfigError(f"--max-length must be at least 8 (got {settings.max_length})")
    return settings


class MultiLabelTrainer(Trainer):
    """A Trainer whose loss counts only known labels: batches carry ``labels`` and ``label_mask``."""

    optimizer: torch.optim.Optimizer | None  # the Trainer's attribute (transformers is not type-checked here)

    def __init__(self, *args: Any, loss_fn: MultiLabelLoss, head_lr: float | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.loss_fn = loss_fn
        self.head_lr = head_lr
        # Our loss is a mean per batch, so the Trainer must divide it by the accumulation steps itself.
        self.model_accepts_loss_kwargs = False

    def compute_loss(
        self, model: torch.nn.Module, inputs: dict[str, Any], return_outputs: bool = False, num_items_in_batch: Any = None
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        targets, mask = inputs.pop("labels"), inputs.pop("label_mask")
        outputs = model(**inputs)
        loss = self.loss_fn(outputs.logits, targets, mask)
        return (loss, outputs) if return_outputs else loss

    def create_optimizer(self, model: torch.nn.Module | None = None) -> torch.optim.Optimizer:
        """The Trainer's AdamW, with the classification head in parameter groups of its own learning rate."""
        if self.head_lr is None or self.optimizer is not None:
            return super().create_optimizer(model)
        model = self.model if model is None else model
        decay = set(self.get_decay_parameter_names(model))
        groups = []
        for head in (False, True):
            for decayed in (True, False):
                params = [p for n, p in model.named_parameters()
                          if p.requires_grad and _is_head(n) == head and (n in decay) == decayed]
                if params:
                    groups.append({"params": params, "weight_decay": self.args.weight_decay if decayed else 0.0,
                                   **({"lr": self.head_lr} if head else {})})
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer: torch.optim.Optimizer = optimizer_cls(groups, **optimizer_kwargs)
        self.optimizer = optimizer
        return optimizer


def _is_head(parameter_name: str) -> bool:
    return parameter_name.split(".")[0] in {"classifier", "score", "pooler"} or ".pooler." in parameter_name


# --- resolving settings ---------------------------------------------------------------------------------------


def _world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _max_length(requested: int | None, tokenizer: PreTrainedTokenizerBase) -> int:
    """The requested window, capped at what the tokenizer/model supports (tiny models have short windows)."""
    wanted = requested or defaults.MAX_LENGTH
    window = tokenizer.model_max_length
    if window and window < 1_000_000 and wanted > window:  # transformers uses ~1e30 for "no limit"
        log.warning("--max-length %d exceeds the model's window of %d tokens; using %d", wanted, window, window)
        return int(window)
    return wanted


def _eval_steps(settings: TrainSettings, train_rows: int) -> int:
    if settings.eval_steps > 0:
        return settings.eval_steps
    per_step = settings.batch_size * settings.grad_accum * _world_size()
    total = settings.max_steps if settings.max_steps > 0 else math.ceil(settings.epochs * math.ceil(train_rows / per_step))
    return max(1, math.ceil(total / defaults.EVALS_PER_RUN))


def _training_arguments(settings: TrainSettings, eval_steps: int, *, for_training: bool) -> TrainingArguments:
    precision = precision_flags(settings.precision)
    on_cuda = torch.cuda.is_available()
    cpu_processes = not on_cuda and _world_size() > 1
    tensorboard = importlib.util.find_spec("tensorboard") is not None
    return TrainingArguments(
        output_dir=str(settings.checkpoints),
        num_train_epochs=settings.epochs,
        max_steps=settings.max_steps,
        per_device_train_batch_size=settings.batch_size,
        per_device_eval_batch_size=settings.eval_batch_size or 2 * settings.batch_size,
        gradient_accumulation_steps=settings.grad_accum,
        learning_rate=settings.lr,
        weight_decay=settings.weight_decay,
        warmup_steps=settings.warmup_ratio,  # a value below 1 is a ratio of the total steps in transformers v5
        seed=settings.seed,
        # Evaluate and checkpoint together so the best checkpoint (by macro-F1) can be reloaded at the end.
        eval_strategy="steps" if for_training else "no",
        eval_steps=eval_steps,
        save_strategy="steps" if for_training else "no",
        save_steps=eval_steps,
        save_total_limit=settings.save_total_limit,
        load_best_model_at_end=for_training,
        metric_for_best_model=defaults.BEST_METRIC,
        greater_is_better=True,
        logging_steps=settings.logging_steps,
        logging_first_step=True,
        report_to=["tensorboard"] if tensorboard and for_training else "none",
        train_sampling_strategy="group_by_length",
        length_column_name=LENGTH_COLUMN,
        remove_unused_columns=False,  # our collator picks the columns; `length` must reach the sampler
        label_names=["labels", "label_mask"],
        dataloader_num_workers=settings.num_workers if settings.num_workers is not None else (2 if on_cuda else 0),
        dataloader_pin_memory=on_cuda,
        ddp_find_unused_parameters=False,
        # Several processes without CUDA (torchrun on CPUs): accelerate only sets up gloo DDP when told "cpu".
        use_cpu=cpu_processes,
        ddp_backend="gloo" if cpu_processes else None,
        disable_tqdm=False,
        **precision,
    )


def _load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    try:
        return AutoTokenizer.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        raise ModelLoadError(
            f"cannot load a tokenizer from {name_or_path!r} ({type(exc).__name__}); give a Hub id, a local model "
            "folder or a preset such as --base-model minilm"
        ) from exc


def _load_dataset(data_dir: Path, need: Sequence[str]) -> tuple[DatasetDict, list[str]]:
    dataset, labels = load_processed(data_dir)
    for split in need:
        if split not in dataset or len(dataset[split]) == 0:
            raise DataError(f"prepared dataset {data_dir} has no rows in split {split!r}; re-run prepare_data.py")
    return dataset, labels


def _resume_checkpoint(settings: TrainSettings) -> str | None:
    """The checkpoint to continue from; refuses a fresh run over another run's checkpoints."""
    existing = get_last_checkpoint(settings.checkpoints) if settings.checkpoints.is_dir() else None
    if settings.resume is None:
        if existing:
            raise ConfigError(
                f"{settings.checkpoints} holds checkpoints of an interrupted run; continue it with --resume, "
                "or delete that folder (or choose --checkpoint-dir) to start afresh"
            )
        return None
    if settings.resume == RESUME_LATEST:
        if not existing:
            raise ConfigError(f"--resume: no checkpoint in {settings.checkpoints}; train without --resume first")
        return existing
    if not (Path(settings.resume) / "trainer_state.json").is_file():
        raise ConfigError(f"--resume {settings.resume}: not a checkpoint folder (no trainer_state.json)")
    return settings.resume


# --- predictions and results -----------------------------------------------------------------------------------


def _predict(trainer: Trainer, split: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Probabilities, labels and label_mask of a tokenized split (aligned, whatever the batch order)."""
    output = trainer.predict(split, metric_key_prefix="predict")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    labels, mask = output.label_ids
    return sigmoid(logits), np.asarray(labels), np.asarray(mask)


def _split_results(
    probs: np.ndarray, labels: np.ndarray, mask: np.ndarray, names: Sequence[str], thresholds: dict[str, float]
) -> dict[str, Any]:
    return {
        "rows": int(len(probs)),
        AT_DEFAULT: multilabel_metrics(probs, labels, mask, names, 0.5),
        AT_TUNED: multilabel_metrics(probs, labels, mask, names, thresholds),
    }


def _label_stats(train: Dataset, names: Sequence[str], pos_weight: torch.Tensor) -> dict[str, dict[str, float]]:
    labels = np.asarray(train["labels"], dtype=np.float32)
    known = np.asarray(train["label_mask"], dtype=np.float32) > 0
    return {
        name: {
            "known": int(known[:, j].sum()),
            "positive": int(((labels[:, j] > 0.5) & known[:, j]).sum()),
            "pos_weight": float(pos_weight[j]),
        }
        for j, name in enumerate(names)
    }


def replace_dir_atomically(staged: Path, target: Path) -> None:
    """Move a finished directory into place: the old one (if any) is renamed away first, then deleted, so
    ``target`` is at every moment either the old complete model or the new complete model (or briefly absent)."""
    _give_files_umask_permissions(staged)
    old = target.with_name(f".{target.name}.old-{int(time.time())}")
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def _give_files_umask_permissions(folder: Path) -> None:
    # save_pretrained writes model.safetensors through a private temp file (mode 0600); a server running as
    # another user (a container, a service account) could then not read the weights.
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)


def _staging_dir(target: Path) -> Path:
    # Same parent as the target so the final rename stays on one filesystem (and so is atomic).
    return target.with_name(f".{target.name}.partial")


# --- entry points ----------------------------------------------------------------------------------------------


def train(settings: TrainSettings, extra_callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Fine-tune, tune thresholds, evaluate and write the model directory; returns its path."""
    data_dir = settings.data or paths.PROCESSED_DIR
    dataset, label_names = _load_dataset(data_dir, need=("train", "validation"))
    base_model = resolve_base_model(settings.base_model)
    tokenizer = _load_tokenizer(base_model)
    max_length = _max_length(settings.max_length, tokenizer)
    resume_from = _resume_checkpoint(settings)
    eval_steps = _eval_steps(settings, len(dataset["train"]))
    args = _training_arguments(settings, eval_steps, for_training=True)
    telemetry = telemetry_from_env(settings.telemetry, settings.experiment_id) if args.process_index == 0 else None

    resolved = {
        **settings_to_dict(settings),
        "data": str(data_dir),
        "base_model_path": base_model,
        "labels": list(label_names),
        "max_length": max_length,
        "eval_steps": eval_steps,
        "precision": precision_name(precision_flags(settings.precision)),
        "tf32": bool(precision_flags(settings.precision)["tf32"]),
        "world_size": args.world_size,
        "checkpoint_dir": str(settings.checkpoints),
    }
    if args.process_index == 0:
        report_settings("training", resolved)

    # Rank 0 tokenizes and fills the datasets cache; the other ranks then read it back.
    with args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_dataset(dataset, tokenizer, max_length, splits=("train", *defaults.EVAL_SPLITS))

    pos_weight = pos_weight_from_known(dataset["train"]["labels"], dataset["train"]["label_mask"])
    loss_fn = MultiLabelLoss(settings.loss, pos_weight, settings.asl_gamma_neg, settings.asl_gamma_pos, settings.asl_clip,
                             reduction=settings.loss_reduction)
    model = _load_model(base_model, label_names, settings.seed, settings.pooling)
    collator = MultiLabelCollator(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None)
    trainer = MultiLabelTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        eval_dataset=tokenized["validation"],
        processing_class=tokenizer,
        data_collator=collator,
        compute_metrics=TrainerMetrics(label_names),
        callbacks=[*([telemetry] if telemetry else []), *extra_callbacks],
        loss_fn=loss_fn,
        head_lr=settings.head_lr,
    )
    if settings.linear_probe and resume_from is None:
        _linear_probe(model, tokenized["train"], collator, settings, label_names, trainer.args.device)
    try:
        trainer.train(resume_from_checkpoint=resume_from)
    finally:
        if telemetry:
            telemetry.close()

    # Every rank predicts (results are gathered across processes); rank 0 writes.
    predictions = {name: _predict(trainer, tokenized[name]) for name in defaults.EVAL_SPLITS if name in tokenized}
    staged = _staging_dir(settings.output_dir)
    if trainer.is_world_process_zero():
        shutil.rmtree(staged, ignore_errors=True)  # a leftover of an interrupted earlier run
    trainer.accelerator.wait_for_everyone()
    trainer.save_model(str(staged))  # model, config.json (id2label, problem type) and tokenizer
    if trainer.is_world_process_zero() and not (staged / "config.json").is_file():
        # A mean-pooling classifier is no PreTrainedModel: the Trainer saved its weights, the config is ours.
        trainer.accelerator.unwrap_model(trainer.model).config.save_pretrained(staged)
    if trainer.is_world_process_zero():
        thresholds = tune_thresholds(*predictions["validation"], label_names)
        results: dict[str, Any] = {
            name: _split_results(*preds, label_names, thresholds) for name, preds in predictions.items()
        }
        results.update(
            global_step=trainer.state.global_step,
            best_checkpoint=Path(trainer.state.best_model_checkpoint or "").name or None,
            world_size=args.world_size,
        )
        _write_model_dir(staged, resolved, label_names, thresholds, results, predictions["validation"], dataset,
                         _label_stats(dataset["train"], label_names, pos_weight))
        _compare_with_baselines(staged, data_dir, settings.baselines, "test" if "test" in dataset else "validation")
        replace_dir_atomically(staged, settings.output_dir)
        _remove_checkpoints(settings.checkpoints)
        log.info("validation metrics (0.5 vs tuned thresholds):\n%s",
                 metrics_table(label_names, results["validation"][AT_DEFAULT], results["validation"][AT_TUNED]))
        log.info("model directory ready: %s", settings.output_dir)
    trainer.accelerator.wait_for_everyone()
    if settings.student and trainer.is_world_process_zero():
        build_student(DistillSettings(model=settings.output_dir, data=data_dir))
    return settings.output_dir


def _load_model(name_or_path: str, label_names: Sequence[str], seed: int, pooling: str) -> torch.nn.Module:
    # The new classification head is initialised here, before the Trainer seeds anything: seed it, or every run
    # starts from another head (as Hugging Face's examples do with set_seed before from_pretrained).
    set_seed(seed)
    try:
        # transformers 5 loads a checkpoint in its stored dtype; a half-precision base must still train with
        # float32 master weights (mixed precision is the Trainer's job, via --precision).
        return new_classifier(name_or_path, label_names, pooling, dtype=torch.float32)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model weights from {name_or_path!r} ({type(exc).__name__}: {exc})") from exc


def _linear_probe(
    model: torch.nn.Module, train: Dataset, collator: MultiLabelCollator, settings: TrainSettings,
    label_names: Sequence[str], device: torch.device,
) -> None:
    if not isinstance(model, MeanPoolingClassifier):
        log.info("--linear-probe applies to --pooling mean only; the %s head starts at random", settings.pooling)
        return
    started = time.monotonic()
    model.to(device)
    accuracy = init_head_from_probe(model, train, collator, settings.eval_batch_size or 2 * settings.batch_size,
                                    label_names)
    log.info("linear probe fitted in %.0f s; balanced-head training accuracy per label: %s",
             time.monotonic() - started, {k: round(v, 3) for k, v in accuracy.items()})


def _write_model_dir(
    staged: Path,
    resolved: dict[str, Any],
    label_names: Sequence[str],
    thresholds: dict[str, float],
    results: dict[str, Any],
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    dataset: DatasetDict,
    label_stats: dict[str, dict[str, float]],
) -> None:
    save_thresholds(staged, thresholds)
    (staged / EVAL_RESULTS_FILE).write_text(json.dumps(results, indent=2) + "\n")
    (staged / SETTINGS_FILE).write_text(json.dumps(resolved, indent=2, default=str, sort_keys=True) + "\n")
    (staged / "training_args.bin").unlink(missing_ok=True)  # a pickle the server never needs
    write_plots(staged, *validation, label_names, thresholds, split="validation")
    write_model_card(
        staged,
        title=Path(resolved["output_dir"]).name,
        base_model=resolved["base_model"],
        data_dir=resolved["data"],
        label_names=label_names,
        label_stats=label_stats,
        source_counts={name: dict(Counter(split["source"])) for name, split in dataset.items()},
        thresholds=thresholds,
        eval_results=results,
        settings=resolved,
    )


def _compare_with_baselines(model_dir: Path, data_dir: Path, baselines: Sequence[str], split: str) -> None:
    """The evaluation stage's report of the finished model beside ``baselines`` on ``split``: written to
    ``evaluation/`` and added to the model card and ``eval_results.json``, so a model that a linear model beats
    says so where it is published."""
    wanted = [name for name in baselines if name != "none"]
    if not wanted:
        return
    from cockatoo_ml.evaluation.data import rows_from_split
    from cockatoo_ml.evaluation.run import evaluate_model

    report = evaluate_model(model_dir, rows_from_split(data_dir, split), baselines=wanted,
                            train_rows=rows_from_split(data_dir, "train"))
    report.write(model_dir / EVALUATION_DIR)
    results_path = model_dir / EVAL_RESULTS_FILE
    results = json.loads(results_path.read_text())
    results["baselines"] = {"split": split, "macro_pr_auc": report.macro_pr_auc_by_system(), "losses": report.losses()}
    results_path.write_text(json.dumps(results, indent=2) + "\n")
    losses = report.losses()
    with (model_dir / MODEL_CARD).open("a") as card:
        card.write(f"\n## Against baselines on the {split} split (PR-AUC)\n\n"
                   "Each baseline was trained on the same training rows with the same label masks "
                   f"(`evaluate.py --baseline`); the full report is in `{EVALUATION_DIR}/`.\n\n"
                   f"{report.comparison_table()}\n\n"
                   + (f"**The model loses in {len(losses)} place(s).**\n" if losses
                      else "The model is at or above every baseline.\n"))
    log.info("%s split against baselines (PR-AUC):\n%s", split, report.comparison_table())


def _remove_checkpoints(checkpoints: Path) -> None:
    """The finished model holds the best weights, so its checkpoints are spent; TensorBoard logs stay."""
    if not checkpoints.is_dir():
        return
    for path in checkpoints.iterdir():
        if path.is_dir() and re.fullmatch(rf"{PREFIX_CHECKPOINT_DIR}-\d+", path.name):
            shutil.rmtree(path, ignore_errors=True)


def evaluate_model_dir(settings: TrainSettings) -> dict[str, Any]:
    """``--eval-only``: score the model in ``--output-dir`` on ``--eval-split`` with its saved thresholds and
    compare with what training recorded in ``eval_results.json``."""
    model_dir = settings.output_dir
    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"no trained model in {model_dir} (no config.json); train one first or pass --output-dir")
    trained_with: dict[str, Any] = {}
    if (model_dir / SETTINGS_FILE).is_file():
        trained_with = json.loads((model_dir / SETTINGS_FILE).read_text())
    data_dir = settings.data or Path(trained_with.get("data", paths.PROCESSED_DIR))
    dataset, label_names = _load_dataset(data_dir, need=(settings.eval_split,))
    model = load_classifier(model_dir, dtype=torch.float32)
    model_labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    if model_labels != list(label_names):
        raise DataError(f"{data_dir} has labels {label_names} but the model in {model_dir} predicts {model_labels}")
    tokenizer = _load_tokenizer(str(model_dir))
    settings.max_length = settings.max_length or trained_with.get("max_length")
    settings.eval_batch_size = settings.eval_batch_size or trained_with.get("eval_batch_size")
    settings.batch_size = trained_with.get("batch_size", settings.batch_size)
    settings.checkpoint_dir = settings.checkpoint_dir or Path(trained_with.get("checkpoint_dir", settings.checkpoints))
    max_length = _max_length(settings.max_length, tokenizer)
    tokenized = tokenize_dataset(dataset, tokenizer, max_length, splits=(settings.eval_split,))
    trainer = MultiLabelTrainer(
        model=model,
        args=_training_arguments(settings, eval_steps=0, for_training=False),
        processing_class=tokenizer,
        data_collator=MultiLabelCollator(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None),
        loss_fn=MultiLabelLoss("bce"),  # only the scores matter here; the loss is reported unweighted
    )
    thresholds = load_thresholds(model_dir, label_names)
    result = _split_results(*_predict(trainer, tokenized[settings.eval_split]), label_names, thresholds)
    if trainer.is_world_process_zero():
        print(f"{settings.eval_split} ({result['rows']} rows), model {model_dir}, data {data_dir}:")
        print(metrics_table(label_names, result[AT_DEFAULT], result[AT_TUNED]))
        recorded = _recorded(model_dir, settings.eval_split)
        if recorded:
            diff = max_metric_difference(recorded, result)
            print(f"largest difference from the recorded {EVAL_RESULTS_FILE}: {diff:.2e}")
    return result


def _recorded(model_dir: Path, split: str) -> dict[str, Any] | None:
    path = model_dir / EVAL_RESULTS_FILE
    return json.loads(path.read_text()).get(split) if path.is_file() else None


def max_metric_difference(a: dict[str, Any], b: dict[str, Any]) -> float:
    """Largest absolute difference between two split results over the metrics both hold."""
    diffs = [
        abs(a[key][metric] - b[key][metric])
        for key in (AT_DEFAULT, AT_TUNED)
        for metric in set(a.get(key, {})) & set(b.get(key, {}))
    ]
    return max(diffs, default=0.0)


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_settings(argv)
    if settings.eval_only:
        evaluate_model_dir(settings)
    else:
        train(settings)
    return 0
