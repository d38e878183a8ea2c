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
import re
import shutil
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset, DatasetDict
from transformers import (
    AutoTokenizer,
    PreTrainedTokenizerBase,
    Trainer,
    TrainerCallback,
    TrainingArguments,
    set_seed,
)
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint

from cockatoo_ml.artifacts import (
    DEFAULT_THRESHOLD,
    EVAL_RESULTS_FILE,
    PARITY_FILE,
    SETTINGS_FILE,
    load_thresholds,
    save_thresholds,
)
from cockatoo_ml.cli import report_settings, settings_to_dict
from cockatoo_ml.data.contract import SourceCredit, load_processed, load_source_credits, warn_non_commercial
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.inference.parity import write_parity_sample
from cockatoo_ml.metrics.multilabel import multilabel_metrics, sigmoid
from cockatoo_ml.metrics.thresholds import tune_thresholds
from cockatoo_ml.modeling import (
    MeanPoolingClassifier,
    freeze_bottom_layers,
    load_classifier,
    new_classifier,
    set_dropout,
)
from cockatoo_ml.publish import staging_dir, swap_into_place
from cockatoo_ml.registry import paths
from cockatoo_ml.registry import training as defaults
from cockatoo_ml.registry.models import resolve_base_model
from cockatoo_ml.registry.training import RESUME_LATEST, TrainSettings
from cockatoo_ml.settings import parse_args, world_size
from cockatoo_ml.training.devices import precision_flags, precision_name
from cockatoo_ml.training.loss import MultiLabelLoss, pos_weight_from_known
from cockatoo_ml.training.metrics import TrainerMetrics
from cockatoo_ml.training.probe import init_head_from_probe
from cockatoo_ml.training.report import (
    AT_DEFAULT,
    AT_TUNED,
    metrics_table,
    write_model_card,
    write_plots,
)
from cockatoo_ml.training.telemetry import telemetry_from_env
from cockatoo_ml.training.tokenize import LENGTH_COLUMN, MultiLabelCollator, length_order, tokenize_dataset

log = logging.getLogger(__name__)

NOT_RECORDED = "not recorded (prepared before prepare_data.py recorded licences; prepare it again)"


def parse_settings(argv: Sequence[str] | None = None) -> TrainSettings:
    """Defaults, environment, recipe file (``train_text.py recipes/demo.toml``), then flags."""
    return parse_args(TrainSettings, argv, description="Fine-tune a multi-label moderation classifier.")


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
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: Any = None,
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
                params = [
                    p
                    for n, p in model.named_parameters()
                    if p.requires_grad and _is_head(n) == head and (n in decay) == decayed
                ]
                if params:
                    groups.append(
                        {
                            "params": params,
                            "weight_decay": self.args.weight_decay if decayed else 0.0,
                            **({"lr": self.head_lr} if head else {}),
                        }
                    )
        optimizer_cls, optimizer_kwargs = self.get_optimizer_cls_and_kwargs(self.args, model)
        optimizer: torch.optim.Optimizer = optimizer_cls(groups, **optimizer_kwargs)
        self.optimizer = optimizer
        return optimizer


def _is_head(parameter_name: str) -> bool:
    return parameter_name.split(".")[0] in {"classifier", "score", "pooler"} or ".pooler." in parameter_name


# --- resolving settings ---------------------------------------------------------------------------------------


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
    per_step = settings.batch_size * settings.grad_accum * world_size()
    total = (
        settings.max_steps if settings.max_steps > 0 else math.ceil(settings.epochs * math.ceil(train_rows / per_step))
    )
    return max(1, math.ceil(total / defaults.EVALS_PER_RUN))


def _training_arguments(settings: TrainSettings, eval_steps: int, *, for_training: bool) -> TrainingArguments:
    precision = precision_flags(settings.precision)
    on_cuda = torch.cuda.is_available()
    cpu_processes = not on_cuda and world_size() > 1
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


def _training_data(data_dir: Path, train: Dataset) -> list[SourceCredit]:
    """Each source of the train split with its rows there and the licence and citation prepare_data.py recorded."""
    recorded = {credit.name: credit for credit in load_source_credits(data_dir)}
    return [
        replace(recorded.get(name, SourceCredit(name, NOT_RECORDED, NOT_RECORDED, 0)), rows=rows)
        for name, rows in sorted(Counter(train["source"]).items())
    ]


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
    """Probabilities, labels and label_mask of a tokenized split, in the split's row order.

    Scored in length-sorted batches: in row order a batch pads to its longest text, three times the tokens."""
    order = length_order(split)
    output = trainer.predict(split.select(order), metric_key_prefix="predict")
    logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
    labels, mask = output.label_ids
    back = np.argsort(order, kind="stable")
    return sigmoid(logits)[back], np.asarray(labels)[back], np.asarray(mask)[back]


def _split_results(
    probs: np.ndarray, labels: np.ndarray, mask: np.ndarray, names: Sequence[str], thresholds: dict[str, float]
) -> dict[str, Any]:
    return {
        "rows": len(probs),
        AT_DEFAULT: multilabel_metrics(probs, labels, mask, names, DEFAULT_THRESHOLD),
        AT_TUNED: multilabel_metrics(probs, labels, mask, names, thresholds),
    }


def _label_stats(train: Dataset, names: Sequence[str], pos_weight: torch.Tensor) -> dict[str, dict[str, float]]:
    labels = np.asarray(train["labels"], dtype=np.float32)
    known = np.asarray(train["label_mask"], dtype=np.float32) > 0
    return {
        name: {
            "known": int(known[:, j].sum()),
            "positive": int(((labels[:, j] > 0.5) & known[:, j]).sum()),
            "any_of": int(((labels[:, j] > 0.5) & ~known[:, j]).sum()),  # in an "at least one of" flag
            "pos_weight": float(pos_weight[j]),
        }
        for j, name in enumerate(names)
    }


# --- entry points ----------------------------------------------------------------------------------------------


def train(settings: TrainSettings, extra_callbacks: Sequence[TrainerCallback] = ()) -> Path:
    """Fine-tune, tune thresholds, evaluate and write the model directory; returns its path."""
    data_dir = settings.data or paths.PROCESSED_DIR
    dataset, label_names = _load_dataset(data_dir, need=("train", "validation"))
    training_data = _training_data(data_dir, dataset["train"])
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
        "training_data": [asdict(credit) for credit in training_data],
    }
    if args.process_index == 0:
        report_settings("training", resolved)
        warn_non_commercial(training_data, "the training data")

    # Rank 0 tokenizes and fills the datasets cache; the other ranks then read it back.
    with args.main_process_first(desc="tokenizing"):
        tokenized = tokenize_dataset(dataset, tokenizer, max_length, splits=("train", *defaults.EVAL_SPLITS))

    pos_weight = pos_weight_from_known(dataset["train"]["labels"], dataset["train"]["label_mask"])
    loss_fn = MultiLabelLoss(
        settings.loss,
        pos_weight,
        settings.asl_gamma_neg,
        settings.asl_gamma_pos,
        settings.asl_clip,
        reduction=settings.loss_reduction,
        any_of_weight=settings.any_of_weight,
    )
    model = _load_model(base_model, label_names, settings.seed, settings.pooling, settings.dropout)
    _freeze(model, settings.freeze_layers)
    collator = MultiLabelCollator(tokenizer, pad_to_multiple_of=8 if torch.cuda.is_available() else None)
    trainer = MultiLabelTrainer(
        model=model,
        args=args,
        train_dataset=tokenized["train"],
        # length-sorted: batches pad less (the metrics do not depend on the row order)
        eval_dataset=tokenized["validation"].select(length_order(tokenized["validation"])),
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
    staged = staging_dir(settings.output_dir)  # published whole by swap_into_place, or not at all
    if trainer.is_world_process_zero():
        shutil.rmtree(staged, ignore_errors=True)  # a leftover of an interrupted earlier run
    trainer.accelerator.wait_for_everyone()
    # model, config.json (id2label, problem type), tokenizer, and for a mean-pooling model the modeling_cockatoo.py
    # that transformers runs with trust_remote_code
    trainer.save_model(str(staged))
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
        _write_model_dir(
            staged,
            resolved,
            label_names,
            thresholds,
            results,
            predictions["validation"],
            dataset,
            _label_stats(dataset["train"], label_names, pos_weight),
            training_data,
        )
        _write_parity(staged, dataset["validation"])
        swap_into_place(staged, settings.output_dir)
        _remove_checkpoints(settings.checkpoints)
        log.info(
            "validation metrics (%s vs tuned thresholds):\n%s",
            DEFAULT_THRESHOLD,
            metrics_table(label_names, results["validation"][AT_DEFAULT], results["validation"][AT_TUNED]),
        )
        log.info("model directory ready: %s", settings.output_dir)
    trainer.accelerator.wait_for_everyone()
    return settings.output_dir


def _load_model(
    name_or_path: str, label_names: Sequence[str], seed: int, pooling: str, dropout: float | None = None
) -> torch.nn.Module:
    # The new classification head is initialised here, before the Trainer seeds anything: seed it, or every run
    # starts from another head (as Hugging Face's examples do with set_seed before from_pretrained).
    set_seed(seed)
    try:
        # transformers 5 loads a checkpoint in its stored dtype; a half-precision base must still train with
        # float32 master weights (mixed precision is the Trainer's job, via --precision).
        model = new_classifier(name_or_path, label_names, pooling, dtype=torch.float32)  # type: ignore[arg-type]
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot load model weights from {name_or_path!r} ({type(exc).__name__}: {exc})") from exc
    if dropout is not None:
        set_dropout(model, dropout)
    return model


def _freeze(model: torch.nn.Module, layers: int) -> None:
    try:
        trainable, total = freeze_bottom_layers(model, layers)
    except ValueError as exc:
        raise ConfigError(f"--freeze-layers {layers}: {exc}") from None
    if layers:
        log.info("embeddings and %d bottom layers frozen: %d of %d parameters train", layers, trainable, total)


def _linear_probe(
    model: torch.nn.Module,
    train: Dataset,
    collator: MultiLabelCollator,
    settings: TrainSettings,
    label_names: Sequence[str],
    device: torch.device,
) -> None:
    if not isinstance(model, MeanPoolingClassifier):
        log.info("--linear-probe applies to --pooling mean only; the %s head starts at random", settings.pooling)
        return
    started = time.monotonic()
    model.to(device)
    accuracy = init_head_from_probe(
        model,
        train,
        collator,
        settings.eval_batch_size or 2 * settings.batch_size,
        label_names,
        rows_per_label=defaults.PROBE_ROWS_PER_LABEL,
        seed=settings.seed,
    )
    log.info(
        "linear probe fitted in %.0f s; balanced-head training accuracy per label: %s",
        time.monotonic() - started,
        {k: round(v, 3) for k, v in accuracy.items()},
    )


def _write_model_dir(
    staged: Path,
    resolved: dict[str, Any],
    label_names: Sequence[str],
    thresholds: dict[str, float],
    results: dict[str, Any],
    validation: tuple[np.ndarray, np.ndarray, np.ndarray],
    dataset: DatasetDict,
    label_stats: dict[str, dict[str, float]],
    training_data: Sequence[SourceCredit],
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
        credits=training_data,
        thresholds=thresholds,
        eval_results=results,
        settings=resolved,
    )


def _write_parity(model_dir: Path, validation: Dataset) -> None:
    """The parity sample the server checks its fast path with (inference/parity.py)."""
    columns = validation.select_columns(["text", "labels", "label_mask"]).to_dict()
    classifier = TextClassifier.load(model_dir, dtype="float32")
    truth, mask = np.asarray(columns["labels"]), np.asarray(columns["label_mask"])
    write_parity_sample(classifier, model_dir, columns["text"], truth, mask)


def write_parity_only(settings: TrainSettings) -> Path:
    """``--parity-only``: the parity sample for a model trained before training wrote one."""
    model_dir, _, data_dir = _trained_model(settings)
    dataset, _ = _load_dataset(data_dir, need=("validation",))
    _write_parity(model_dir, dataset["validation"])
    log.info("parity sample written: %s", model_dir / PARITY_FILE)
    return model_dir / PARITY_FILE


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
    model_dir, trained_with, data_dir = _trained_model(settings)
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


def _trained_model(settings: TrainSettings) -> tuple[Path, dict[str, Any], Path]:
    """The finished model in --output-dir, the settings it was trained with and its data (--data or those)."""
    model_dir = settings.output_dir
    if not (model_dir / "config.json").is_file():
        raise ModelLoadError(f"no trained model in {model_dir} (no config.json); train one first or pass --output-dir")
    trained_with: dict[str, Any] = {}
    if (model_dir / SETTINGS_FILE).is_file():
        trained_with = json.loads((model_dir / SETTINGS_FILE).read_text())
    return model_dir, trained_with, settings.data or Path(trained_with.get("data", paths.PROCESSED_DIR))


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
