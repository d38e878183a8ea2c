"""``distill.py``: a trained model directory -> ``<model dir>/student/``, the cascade's cheap first tier.

The teacher (the model directory, loaded as the server loads it: same windows, precision and thresholds) scores
the training split's texts and any unlabelled texts given; each candidate student is fitted to those scores and
measured on the validation split: per label the sure bands (``bands.py``), then the share of texts it answers
(sure on every label) and how often those answers agree with the teacher, and its speed. The candidate that
answers the most validation texts is kept: the bands already hold every candidate to the same agreement, so
the one answering most saves the most transformer time. The test split, when there is one, gives a held-out
check of the bands. Only texts that fit in one of the teacher's windows are ever answered by the student: in a
longer text one harmful passage is diluted in the student's average, while the teacher keeps each window's
maximum.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.distillation.bands import Band, cascade_agreement, sure, sure_bands
from cockatoo_ml.distillation.students import Features, StaticFeatures, Student, TfidfFeatures
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.registry import distillation as defaults
from cockatoo_ml.serving.model import TextClassifier

log = logging.getLogger(__name__)


@dataclass
class DistillSettings:
    """Flags of ``distill.py``; defaults from ``cockatoo_ml/registry/distillation.py``."""

    model: Path = field(metadata={"help": "Trained model directory (train_text.py output); writes <model>/student/."})
    data: Path | None = field(
        default=None,
        metadata={"help": f"Prepared dataset whose train split teaches the student and whose validation split sets "
                  f"the bands. Default: the dataset the model was trained on ({SETTINGS_FILE} 'data')."},
    )
    texts: Path | None = field(
        default=None, metadata={"help": "Unlabelled texts, one per line, also scored by the teacher to teach the student."}
    )
    candidates: list[str] = field(
        default_factory=lambda: list(defaults.CANDIDATES),
        metadata={"help": "Students to train and measure: static (model2vec embeddings of the model itself), "
                  "tfidf. The one answering most validation texts is kept."},
    )
    target_agreement: float = field(
        default=defaults.TARGET_AGREEMENT,
        metadata={"help": "A sure band holds the student's scores where its decision agreed with the teacher's "
                  "this often on validation."},
    )
    static_token_pattern: str | None = field(
        default=None,
        metadata={"help": "Tokens matching this regular expression are left out of the static student's "
                  "vocabulary (model2vec's token_remove_pattern; default: its [unusedN] pattern)."},
    )


def check_settings(settings: DistillSettings) -> None:
    unknown = [kind for kind in settings.candidates if kind not in defaults.CANDIDATES]
    if unknown or not settings.candidates:
        raise ConfigError(f"--candidates {' '.join(settings.candidates)}: choose from {', '.join(defaults.CANDIDATES)}")
    if not 0.5 < settings.target_agreement <= 1.0:
        raise ConfigError(f"--target-agreement is a share above 0.5 and at most 1 (got {settings.target_agreement})")
    if settings.texts is not None and not settings.texts.is_file():
        raise DataError(f"--texts {settings.texts}: no such file; give a text file with one text per line")


@dataclass
class Scored:
    """Texts with the teacher's scores and how many windows each took."""

    texts: list[str]
    scores: np.ndarray
    windows: np.ndarray


def teacher_scores(teacher: TextClassifier, texts: Sequence[str], what: str) -> Scored:
    from tqdm.auto import tqdm

    scores, windows = [], []
    step = defaults.TEACHER_BATCH_TEXTS
    for start in tqdm(range(0, len(texts), step), desc=f"teacher scoring {what}", unit="batch"):
        for result in teacher.score(texts[start : start + step]):
            scores.append(result.scores)
            windows.append(result.windows)
    shape = (len(texts), len(teacher.labels))
    return Scored(list(texts), np.asarray(scores, dtype=np.float64).reshape(shape), np.asarray(windows))


def measure(
    student: Student, split: Scored, thresholds: Sequence[float], bands: Sequence[Band] | None, target: float
) -> tuple[list[Band], dict[str, Any]]:
    """The student on a split: the bands (computed here unless given) and the cascade's agreement with them."""
    started = time.perf_counter()
    scores = np.concatenate(
        [student.scores(split.texts[i : i + defaults.SPEED_BATCH_TEXTS])
         for i in range(0, len(split.texts), defaults.SPEED_BATCH_TEXTS)]
    ) if split.texts else np.zeros((0, len(thresholds)))
    elapsed = time.perf_counter() - started
    one_window = split.windows == 1
    if bands is None:
        bands = sure_bands(scores[one_window], split.scores[one_window], thresholds, target)
    answered = sure(scores, bands).all(axis=1) & one_window
    result = cascade_agreement(scores, split.scores, thresholds, answered)
    result["student_texts_per_s"] = len(split.texts) / elapsed if elapsed > 0 else float("inf")
    return list(bands), result


def fit_features(kind: str, model_dir: Path, texts: Sequence[str], settings: DistillSettings) -> Features:
    if kind == "static":
        return StaticFeatures.distill(model_dir, token_pattern=settings.static_token_pattern)
    return TfidfFeatures.fit(texts)


def build_student(settings: DistillSettings) -> Path:
    """Train, measure and keep the best student; writes ``<model>/student/`` (replaced whole) and returns it."""
    from cockatoo_ml.data.contract import load_processed
    from cockatoo_ml.registry.api import serving_settings_from_env
    from cockatoo_ml.serving.app import load_classifier

    check_settings(settings)
    model_dir = Path(settings.model)
    teacher = load_classifier(serving_settings_from_env(model_dir=model_dir))
    data_dir = settings.data or _trained_on(model_dir)
    dataset, labels = load_processed(data_dir)
    if list(labels) != list(teacher.labels):
        raise DataError(f"{data_dir} has labels {labels} but the model in {model_dir} predicts {list(teacher.labels)}")
    for split in ("train", "validation"):
        if split not in dataset or len(dataset[split]) == 0:
            raise DataError(f"{data_dir} has no {split!r} rows; the student needs train and validation splits")
    extra = _read_texts(settings.texts) if settings.texts else []
    train = teacher_scores(teacher, [*dataset["train"]["text"], *extra], "train")
    validation = teacher_scores(teacher, dataset["validation"]["text"], "validation")
    test = teacher_scores(teacher, dataset["test"]["text"], "test") if "test" in dataset else None
    thresholds = [teacher.thresholds[label] for label in labels]

    candidates: dict[str, dict[str, Any]] = {}
    trained: dict[str, tuple[Student, list[Band]]] = {}
    for kind in settings.candidates:
        started = time.perf_counter()
        student = Student.fit(fit_features(kind, model_dir, train.texts, settings), train.texts, train.scores, labels)
        fit_s = time.perf_counter() - started
        bands, on_validation = measure(student, validation, thresholds, None, settings.target_agreement)
        candidates[kind] = {"validation": on_validation, "fit_s": round(fit_s, 1)}
        if test is not None:
            candidates[kind]["test"] = measure(student, test, thresholds, bands, settings.target_agreement)[1]
        trained[kind] = (student, bands)
        log.info("student %s: %s", kind, json.dumps(candidates[kind]))
    best = max(
        candidates,
        key=lambda k: (candidates[k]["validation"]["answered_share"], candidates[k]["validation"]["student_texts_per_s"]),
    )
    student, bands = trained[best]
    report = {
        "student": best,
        "why": "answers the most validation texts at the same band agreement"
        if len(candidates) > 1 else "the only candidate",
        "labels": list(labels),
        "thresholds": dict(zip(labels, thresholds, strict=True)),
        "target_agreement": settings.target_agreement,
        "max_windows": 1,
        "bands": {label: band.to_dict() for label, band in zip(labels, bands, strict=True)},
        "validation": candidates[best]["validation"],
        **({"test": candidates[best]["test"]} if test is not None else {}),
        "candidates": candidates,
        "teacher": {"model_dir": str(model_dir), "data": str(data_dir), "dtype": teacher.dtype,
                    "train_texts": len(train.texts), "unlabelled_texts": len(extra)},
    }
    target = write_student_dir(model_dir, student, report)
    log.info("student %s written to %s: answers %.1f%% of validation texts, %.2f%% of those as the teacher decided",
             best, target, 100 * report["validation"]["answered_share"],
             100 * report["validation"]["answered_agreement"])
    return target


def write_student_dir(model_dir: Path, student: Student, report: dict[str, Any]) -> Path:
    """Write beside, then swap in: a server starting meanwhile sees the old student or the new, never half."""
    target = model_dir / defaults.STUDENT_DIR
    staged = model_dir / f".{defaults.STUDENT_DIR}.partial"
    shutil.rmtree(staged, ignore_errors=True)
    student.save(staged)
    (staged / defaults.CASCADE_FILE).write_text(json.dumps(report, indent=2) + "\n")
    old = model_dir / f".{defaults.STUDENT_DIR}.old"
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    staged.rename(target)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _trained_on(model_dir: Path) -> Path:
    path = model_dir / SETTINGS_FILE
    try:
        data = json.loads(path.read_text()).get("data") if path.is_file() else None
    except ValueError:
        data = None
    if not data:
        raise ModelLoadError(f"{path} does not say which dataset the model was trained on; pass --data DIR")
    return Path(data)


def _read_texts(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def main(argv: Sequence[str] | None = None) -> int:
    from transformers import HfArgumentParser

    parser = HfArgumentParser(DistillSettings, description="Train the cascade's cheap student tier for a model.")
    (settings,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    build_student(settings)
    return 0
