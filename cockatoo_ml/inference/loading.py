"""Loading a model directory as every consumer scores with it: the classifier (windows, precision, threads,
thresholds) and, when the directory has a ``student/`` and the cascade is on, its cascade."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.inference.cascade import Cascade, load_cascade
from cockatoo_ml.inference.classifier import EXPECTED_FILES, TextClassifier
from cockatoo_ml.inference.runtime import thread_plan
from cockatoo_ml.registry.serving import ServingSettings

# What transformers names labels when a config has no id2label: such a model cannot be matched to data.
_PLACEHOLDER_LABEL = re.compile(r"LABEL_\d+")


def check_model_dir(model_dir: Path) -> None:
    """Fail before loading anything when a model directory lacks config.json, label names or weights."""
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        what = "does not exist" if not model_dir.exists() else "has no config.json"
        raise ModelLoadError(f"model directory {model_dir} {what}; expected {EXPECTED_FILES}")
    try:
        id2label = json.loads(config_path.read_text()).get("id2label") or {}
    except (ValueError, AttributeError) as exc:
        raise ModelLoadError(f"{config_path} is not a JSON object ({exc})") from None
    if not id2label or all(_PLACEHOLDER_LABEL.fullmatch(str(name)) for name in id2label.values()):
        raise ModelLoadError(
            f"{config_path} names no labels (id2label is missing or only LABEL_0, LABEL_1, ...); "
            f"expected {EXPECTED_FILES}"
        )
    if not any(model_dir.glob("*.safetensors")) and not any(model_dir.glob("pytorch_model*.bin")):
        raise ModelLoadError(f"model directory {model_dir} has no weights (*.safetensors); expected {EXPECTED_FILES}")


def model_thread_plan(settings: ServingSettings) -> tuple[int, int]:
    """(parallel forward passes, torch threads per pass) for ``settings``."""
    return thread_plan(settings.model_threads, settings.torch_threads, processes=settings.worker_processes)


def load_classifier(settings: ServingSettings) -> TextClassifier:
    """The model in ``settings.model_dir`` as the server scores with it (precision, windows, thread plan)."""
    model_threads, torch_threads = model_thread_plan(settings)
    return TextClassifier.load(
        settings.model_dir,
        max_window_tokens=settings.max_window_tokens,
        window_overlap=settings.window_overlap,
        max_batch_tokens=settings.micro_batch_tokens,
        torch_threads=torch_threads,
        parallel_passes=model_threads,
        dtype=settings.dtype,
        bucket_tokens=settings.bucket_tokens,
        fixed_rows=settings.fixed_rows,
    )


def load_scorer(settings: ServingSettings) -> tuple[TextClassifier, Cascade | None]:
    """The classifier and, unless the cascade is off or the directory has no student, its cascade."""
    classifier = load_classifier(settings)
    cascade = load_cascade(settings.model_dir, settings.cascade == "on", classifier, settings.student_word_cache_mb)
    return classifier, cascade
