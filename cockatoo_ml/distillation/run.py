"""``distill.py``: a trained model directory -> ``<model dir>/student/``, the cascade's cheap first tier.

The teacher (the model directory, loaded as the server loads it: same windows, precision and thresholds) scores
every window of the training split's texts and of any unlabelled texts given; each candidate student is fitted
to those window scores, less a share of the texts kept aside. The band texts are texts the student never saw:
the validation split, that share, and any ``--band-texts`` (the teacher's scores need no labels). They are split
in two: the bands (``bands.py``) are fitted on one part (``fit``) and checked on the other (``held_out``), where a
band side that does not keep its promised agreement is dropped (a log line, and ``dropped`` in cascade.json). On
the held-out part each candidate is then measured with the bands it keeps: the share of texts it answers alone,
of windows and of tokens it spares the transformer, how often the cascade's decisions agree with the teacher's,
and its speed; these are the figures /health reports. The candidate that spares the transformer the most tokens
is kept: the bands hold every candidate to the same agreement, so it saves the most transformer time. The test
split, when there is one, is scored with the bands kept, too. Which texts the student was taught is recorded
(digests, ``taught_texts.npy``) so that a benchmark can count decisions on the others only. The unit throughout is
the teacher's window, never a whole long text: averaged over a long text, one harmful passage would be diluted in
the student's features, while the teacher keeps each window's maximum.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.distillation.bands import BandRule, hold_bands, sure_bands
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.inference.bands import Band, cascade_agreement, cascade_scores, sure, text_maxima
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.inference.students import Features, StaticFeatures, Student, TfidfFeatures
from cockatoo_ml.publish import publish_dir
from cockatoo_ml.registry import distillation as defaults
from cockatoo_ml.registry.distillation import DistillSettings

log = logging.getLogger(__name__)


def check_settings(settings: DistillSettings) -> None:
    unknown = [kind for kind in settings.candidates if kind not in defaults.CANDIDATES]
    if unknown or not settings.candidates:
        raise ConfigError(f"--candidates {' '.join(settings.candidates)}: choose from {', '.join(defaults.CANDIDATES)}")
    if not 0.5 < settings.target_agreement <= 1.0:
        raise ConfigError(f"--target-agreement is a share above 0.5 and at most 1 (got {settings.target_agreement})")
    if not 0.0 <= settings.band_confidence < 1.0:
        raise ConfigError(f"--band-confidence is a share from 0 to below 1 (got {settings.band_confidence})")
    if settings.band_min_texts < 1:
        raise ConfigError(f"--band-min-texts must be at least 1 (got {settings.band_min_texts})")
    if not 0.0 <= settings.band_share < 1.0:
        raise ConfigError(f"--band-share is a share from 0 to below 1 (got {settings.band_share})")
    if not 0.0 < settings.band_held_out_share < 1.0:
        raise ConfigError(f"--band-held-out-share is a share above 0 and below 1 (got {settings.band_held_out_share})")
    for flag, path in (("--texts", settings.texts), ("--band-texts", settings.band_texts)):
        if path is not None and not path.is_file():
            raise DataError(f"{flag} {path}: no such file; give a text file with one text per line")


def band_rule(settings: DistillSettings) -> BandRule:
    return BandRule(settings.target_agreement, settings.band_confidence, settings.band_min_texts)


@dataclass
class Scored:
    """Texts cut into the teacher's windows, with the teacher's scores of every window (``bands.py``: the window
    is the unit the student is taught, banded and trusted on)."""

    texts: list[str]
    window_texts: list[str]  # each window's own text (the whole text when it has one window)
    window_scores: np.ndarray  # (windows, labels)
    window_tokens: np.ndarray  # each window's token ids, special tokens included: what it costs the transformer
    owner: np.ndarray  # each window's text; a text's windows are consecutive

    @property
    def scores(self) -> np.ndarray:
        """The teacher's scores per text: each label's maximum over the text's windows."""
        return text_maxima(self.window_scores, self.owner, len(self.texts))

    @property
    def windows(self) -> np.ndarray:
        return np.bincount(self.owner, minlength=len(self.texts))

    def subset(self, rows: np.ndarray) -> Scored:
        """The given texts (a mask or indices, in that order) with their windows."""
        rows = np.asarray(rows)
        rows = np.flatnonzero(rows) if rows.dtype == bool else rows.astype(np.int64)
        first = np.concatenate(([0], np.cumsum(self.windows)))
        picked = [np.arange(first[i], first[i + 1]) for i in rows]
        windows = np.concatenate(picked) if picked else np.zeros(0, dtype=np.int64)
        owner = np.repeat(np.arange(len(rows)), [len(p) for p in picked]) if picked else windows
        return Scored(
            [self.texts[i] for i in rows],
            [self.window_texts[w] for w in windows],
            self.window_scores[windows],
            self.window_tokens[windows],
            owner.astype(np.int64),
        )

    @classmethod
    def union(cls, parts: Sequence[Scored], leave_out: Sequence[str] = ()) -> Scored:
        """The parts' texts, each once (first one kept), less any in ``leave_out``."""
        offsets = np.cumsum([0, *(len(part.texts) for part in parts)])
        joined = cls(
            [text for part in parts for text in part.texts],
            [text for part in parts for text in part.window_texts],
            np.concatenate([part.window_scores for part in parts]),
            np.concatenate([part.window_tokens for part in parts]),
            np.concatenate([part.owner + offset for part, offset in zip(parts, offsets, strict=False)]),
        )
        seen = set(leave_out)
        keep = []
        for i, text in enumerate(joined.texts):
            if text not in seen:
                seen.add(text)
                keep.append(i)
        return joined.subset(np.asarray(keep, dtype=np.int64))


def held_out_rows(count: int, share: float, seed: int = defaults.BAND_SEED) -> np.ndarray:
    """A fixed random ``share`` of ``count`` rows (as a mask), kept from the student for the bands."""
    mask = np.zeros(count, dtype=bool)
    mask[np.random.default_rng(seed).permutation(count)[: round(share * count)]] = True
    return mask


def teacher_scores(teacher: TextClassifier, texts: Sequence[str], what: str, cache: Path | None = None) -> Scored:
    """The teacher's scores of every window of ``texts``; with ``cache`` (the model directory), kept in
    ``<model>/.teacher_scores/`` under a key of the texts, the weights' files and the windows, so a second run
    (other bands or candidates) does not spend the transformer's time again."""
    from tqdm.auto import tqdm

    cut = teacher.cut(texts, spans=True)
    window_texts = cut.window_texts(texts)
    tokens = np.array([len(ids) for ids in cut.ids], dtype=np.int64)
    path = _cache_path(cache, teacher, texts) if cache is not None else None
    if path is not None and path.is_file():
        with np.load(path, allow_pickle=False) as saved:
            log.info("teacher scores of %s from %s", what, path)
            return Scored(list(texts), window_texts, saved["window_scores"], tokens, cut.owner)
    scores: list[tuple[float, ...]] = []
    step = defaults.TEACHER_BATCH_TEXTS
    # Shortest windows first, so each call packs windows of one length (the order is put back below).
    order = np.argsort(tokens, kind="stable")
    for start in tqdm(range(0, len(order), step), desc=f"teacher scoring {what}", unit="batch"):
        scores.extend(result.scores for result in teacher.score([cut.ids[i] for i in order[start : start + step]]))
    window_scores = np.empty((len(cut.ids), len(teacher.labels)), dtype=np.float64)
    if len(order):
        window_scores[order] = np.asarray(scores, dtype=np.float64)
    if path is not None:
        path.parent.mkdir(exist_ok=True)
        staged = path.with_suffix(".partial.npz")
        np.savez(staged, window_scores=window_scores)
        staged.replace(path)
    return Scored(list(texts), window_texts, window_scores, tokens, cut.owner)


def _cache_path(model_dir: Path, teacher: TextClassifier, texts: Sequence[str]) -> Path:
    """Same texts, same weights (name, size, modification time), same precision and windows: same scores."""
    digest = hashlib.sha256()
    weights = sorted(p for pattern in ("*.safetensors", "*.bin") for p in model_dir.glob(pattern))
    fingerprint = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in weights]
    key = [fingerprint, teacher.dtype, teacher.window, teacher.stride, len(texts), defaults.BAND_UNIT]
    digest.update(json.dumps(key).encode())
    for text in texts:
        digest.update(text.encode("utf-8", "surrogatepass") + b"\0")
    return model_dir / defaults.TEACHER_CACHE_DIR / f"{digest.hexdigest()[:32]}.npz"


def student_scores(student: Student, split: Scored) -> tuple[np.ndarray, float]:
    """The student's scores of a split's windows, and how many windows it scored per second."""
    started = time.perf_counter()
    step = defaults.SPEED_BATCH_TEXTS
    texts = split.window_texts
    scores = (
        np.concatenate([student.scores(texts[i : i + step]) for i in range(0, len(texts), step)])
        if texts
        else np.zeros((0, len(student.labels)))
    )
    elapsed = time.perf_counter() - started
    return scores, len(texts) / elapsed if elapsed > 0 else float("inf")


def measure(
    student: Student, split: Scored, thresholds: Sequence[float], bands: Sequence[Band] | None, rule: BandRule
) -> tuple[list[Band], dict[str, Any]]:
    """The student on a split's windows: the bands (fitted here unless given) and the cascade's figures."""
    scores, speed = student_scores(student, split)
    if bands is None:
        bands = sure_bands(scores, split.window_scores, thresholds, rule)
    return list(bands), figures(scores, speed, split, thresholds, bands)


def figures(
    scores: np.ndarray, speed: float, split: Scored, thresholds: Sequence[float], bands: Sequence[Band]
) -> dict[str, Any]:
    """The cascade's figures on a split, given the student's window scores: per text as the server answers
    (``cascade_agreement``), and the share of the windows and of their tokens that never reach the transformer
    (its time saved)."""
    texts = split.window_texts
    sure_windows = np.asarray(sure(scores, bands).all(axis=1))
    cascade, answered = cascade_scores(scores, split.window_scores, sure_windows, split.owner, len(split.texts))
    result = cascade_agreement(cascade, split.scores, thresholds, answered)
    result["windows"] = len(texts)
    result["window_share_answered"] = float(sure_windows.mean()) if len(texts) else 0.0
    total_tokens = int(split.window_tokens.sum())
    result["token_share_answered"] = (
        float(split.window_tokens[sure_windows].sum() / total_tokens) if total_tokens else 0.0
    )
    result["student_windows_per_s"] = speed
    return result


def fit_features(kind: str, model_dir: Path, texts: Sequence[str], settings: DistillSettings) -> Features:
    if kind == "static":
        return StaticFeatures.distill(model_dir, token_pattern=settings.static_token_pattern)
    return TfidfFeatures.fit(texts)


def build_student(settings: DistillSettings) -> Path:
    """Train, measure and keep the best student; writes ``<model>/student/`` (replaced whole) and returns it."""
    from cockatoo_ml.data.contract import load_processed
    from cockatoo_ml.inference.loading import load_classifier
    from cockatoo_ml.registry.serving import serving_settings_from_env

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
    taught = teacher_scores(teacher, [*dataset["train"]["text"], *extra], "train", model_dir)
    held = held_out_rows(len(taught.texts), settings.band_share)
    train = taught.subset(~held)
    validation = teacher_scores(teacher, dataset["validation"]["text"], "validation", model_dir)
    test = teacher_scores(teacher, dataset["test"]["text"], "test", model_dir) if "test" in dataset else None
    parts = {"validation": validation, "held_out_train": taught.subset(held)}
    if settings.band_texts:
        parts["band_texts"] = teacher_scores(teacher, _read_texts(settings.band_texts), "band texts", model_dir)
    # A band text the student was taught would vouch for it unfairly: each band text is one the student never saw.
    band = Scored.union(list(parts.values()), leave_out=train.texts)
    # Half of them (by default) only check the bands fitted on the others: their figures are the ones to quote.
    held_out_mask = held_out_rows(len(band.texts), settings.band_held_out_share, seed=defaults.BAND_SEED + 1)
    fit, held_out = band.subset(~held_out_mask), band.subset(held_out_mask)
    thresholds = [teacher.thresholds[label] for label in labels]
    rule = band_rule(settings)

    candidates: dict[str, dict[str, Any]] = {}
    trained: dict[str, tuple[Student, list[Band]]] = {}
    for kind in settings.candidates:
        started = time.perf_counter()
        features = fit_features(kind, model_dir, train.window_texts, settings)
        student = Student.fit(features, train.window_texts, train.window_scores, labels)
        fit_s = time.perf_counter() - started
        fitted, on_fit = measure(student, fit, thresholds, None, rule)
        scores, speed = student_scores(student, held_out)
        bands, dropped = hold_bands(
            scores, held_out.window_scores, thresholds, fitted, settings.target_agreement, labels
        )
        for side in dropped:
            log.warning("student %s: %s", kind, side.describe(settings.target_agreement))
        candidates[kind] = {
            "held_out": figures(scores, speed, held_out, thresholds, bands),
            "fit": on_fit,
            "dropped": [side.to_dict() for side in dropped],
            "fit_s": round(fit_s, 1),
        }
        if test is not None:
            candidates[kind]["test"] = measure(student, test, thresholds, bands, rule)[1]
        trained[kind] = (student, bands)
        log.info("student %s: %s", kind, json.dumps(candidates[kind]))
    best = max(
        candidates,
        key=lambda k: (
            candidates[k]["held_out"]["token_share_answered"],
            candidates[k]["held_out"]["student_windows_per_s"],
        ),
    )
    student, bands = trained[best]
    report = {
        "student": best,
        "why": "spares the transformer the most tokens of the held-out band texts at the same band agreement"
        if len(candidates) > 1
        else "the only candidate",
        "labels": list(labels),
        "thresholds": dict(zip(labels, thresholds, strict=True)),
        "target_agreement": settings.target_agreement,
        "band_confidence": settings.band_confidence,
        "band_min_texts": settings.band_min_texts,
        # None of the band texts was taught to the student; the bands were fitted on "fit" texts and checked on
        # "held_out" ones, whose figures (with the bands kept) are the ones to quote: "fit" figures are in-sample.
        "band_texts": {
            **{name: len(part.texts) for name, part in parts.items()},
            "distinct": len(band.texts),
            "fit": len(fit.texts),
            "held_out": len(held_out.texts),
        },
        "band_held_out_share": settings.band_held_out_share,
        "unit": defaults.BAND_UNIT,
        "windows": {"window_tokens": teacher.window, "overlap_tokens": teacher.stride},
        "bands": {label: band.to_dict() for label, band in zip(labels, bands, strict=True)},
        "dropped": candidates[best]["dropped"],
        "held_out": candidates[best]["held_out"],
        "fit": candidates[best]["fit"],
        **({"test": candidates[best]["test"]} if test is not None else {}),
        "candidates": candidates,
        "teacher": {
            "model_dir": str(model_dir),
            "data": str(data_dir),
            "dtype": teacher.dtype,
            "train_texts": len(train.texts),
            "train_windows": len(train.window_texts),
            "unlabelled_texts": len(extra),
            "held_out_for_bands": int(held.sum()),
        },
    }
    target = write_student_dir(model_dir, student, report, train.texts)
    log.info(
        "student %s written to %s: on %d held-out band texts (neither taught nor used to fit the bands) it answers "
        "%.1f%% alone and spares the transformer %.1f%% of the tokens; %.2f%% of the texts get the teacher's decisions",
        best,
        target,
        report["held_out"]["texts"],
        100 * report["held_out"]["answered_share"],
        100 * report["held_out"]["token_share_answered"],
        100 * report["held_out"]["decision_agreement"],
    )
    return target


def write_student_dir(model_dir: Path, student: Student, report: dict[str, Any], taught: Sequence[str]) -> Path:
    """Write beside, then swap in: a server starting meanwhile sees the old student or the new, never half."""
    target = model_dir / defaults.STUDENT_DIR
    with publish_dir(target) as staged:
        student.save(staged)
        (staged / defaults.CASCADE_FILE).write_text(json.dumps(report, indent=2) + "\n")
        np.save(staged / defaults.TAUGHT_FILE, np.unique(text_digests(taught)), allow_pickle=False)
    return target


def text_digests(texts: Sequence[str]) -> np.ndarray:
    """Each text's 64-bit BLAKE2b digest: which texts a student was taught, recorded without the texts."""
    return np.array(
        [
            int.from_bytes(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).digest(), "little")
            for text in texts
        ],
        dtype=np.uint64,
    )


def was_taught(student_dir: Path, texts: Sequence[str]) -> np.ndarray | None:
    """Per text, whether the student in ``student_dir`` was taught it (as a whole text); None when the student
    does not say (written before ``taught_texts.npy`` existed)."""
    path = Path(student_dir) / defaults.TAUGHT_FILE
    if not path.is_file():
        return None
    return np.isin(text_digests(texts), np.load(path, allow_pickle=False))


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
    from cockatoo_ml.settings import parse_args

    build_student(parse_args(DistillSettings, argv, description="Train the cascade's cheap student tier for a model."))
    return 0
