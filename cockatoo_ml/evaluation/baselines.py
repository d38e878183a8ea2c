"""Baselines a fine-tuned model must beat, trained on the train split of the prepared dataset with the same
label masks (a row teaches a label only where it knows it):

- ``tfidf``: TF-IDF of word 1-2-grams and char_wb 2-5-grams (sublinear tf) and one class-balanced logistic
  regression per label: what a linear model gets from the words alone.
- ``frozen``: the model's own pretrained base encoder, frozen, mean-pooled over its tokens, and one
  class-balanced logistic regression per label (a linear probe): what the pretrained features already know.
  A fine-tuned model below it has lost what it started with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion
from sklearn.preprocessing import StandardScaler
from tqdm.auto import tqdm

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.errors import ConfigError, ModelLoadError
from cockatoo_ml.evaluation.data import EvalRows
from cockatoo_ml.hf_modeling.modeling_cockatoo import mean_pool
from cockatoo_ml.registry import evaluation as defaults
from cockatoo_ml.registry.models import resolve_base_model

log = logging.getLogger(__name__)


class Baseline(Protocol):
    name: str

    def fit(self, rows: EvalRows) -> Baseline: ...

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray: ...


class PerLabelProbe:
    """One class-balanced logistic regression per label on fixed features, each fitted on the rows that know
    its label. A label whose known training rows hold one class only scores that class's rate everywhere."""

    def __init__(self) -> None:
        self.models: list[LogisticRegression | float] = []

    def fit(self, features: np.ndarray | sparse.spmatrix, rows: EvalRows) -> None:
        self.models = []
        for j, name in enumerate(rows.label_names):
            known = rows.label_mask[:, j] > 0
            truth = rows.labels[known, j] > 0.5
            if truth.all() or not truth.any():
                log.warning("baseline: label %s has %d known training rows of one class only", name, known.sum())
                self.models.append(float(truth.mean()) if truth.size else 0.0)
                continue
            model = LogisticRegression(
                C=defaults.LOGREG_C, class_weight="balanced", max_iter=defaults.LOGREG_MAX_ITER, solver="liblinear"
            )
            model.fit(features[known], truth)
            self.models.append(model)

    def predict(self, features: np.ndarray | sparse.spmatrix, n_rows: int) -> np.ndarray:
        out: np.ndarray = np.empty((n_rows, len(self.models)), dtype=np.float64)
        for j, model in enumerate(self.models):
            out[:, j] = model if isinstance(model, float) else model.predict_proba(features)[:, 1]
        return out


class TfidfBaseline:
    """TF-IDF (word 1-2-grams + char_wb 2-5-grams, sublinear tf) + class-balanced logistic regression."""

    name = "tfidf"

    def __init__(self) -> None:
        self.vectorizer = FeatureUnion(
            [
                (
                    "word",
                    TfidfVectorizer(
                        analyzer="word",
                        ngram_range=defaults.TFIDF_WORD_NGRAMS,
                        sublinear_tf=True,
                        min_df=defaults.TFIDF_MIN_DF,
                    ),
                ),
                (
                    "char",
                    TfidfVectorizer(
                        analyzer="char_wb",
                        ngram_range=defaults.TFIDF_CHAR_NGRAMS,
                        sublinear_tf=True,
                        min_df=defaults.TFIDF_MIN_DF,
                    ),
                ),
            ]
        )
        self.probe = PerLabelProbe()

    def fit(self, rows: EvalRows) -> TfidfBaseline:
        features = self.vectorizer.fit_transform(rows.texts)
        log.info("tfidf baseline: %d training rows, %d features", features.shape[0], features.shape[1])
        self.probe.fit(features, rows)
        return self

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        return self.probe.predict(self.vectorizer.transform(list(texts)), len(texts))


class FrozenEncoderBaseline:
    """The pretrained encoder, frozen and mean-pooled over its tokens (at most ``max_tokens``), with a
    standardised, class-balanced logistic regression per label."""

    name = "frozen"

    def __init__(self, encoder: str, max_tokens: int = defaults.FROZEN_MAX_TOKENS) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.encoder_name = encoder
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(encoder)
            self.model = AutoModel.from_pretrained(encoder, dtype=torch.float32).eval()
        except (OSError, ValueError) as exc:
            raise ModelLoadError(f"cannot load the frozen baseline's encoder {encoder!r} ({exc})") from None
        # Never past the encoder's position embeddings (a small encoder may have fewer than max_tokens).
        limits = [
            n
            for n in (
                getattr(self.model.config, "max_position_embeddings", 0),
                getattr(self.tokenizer, "model_max_length", 0),
            )
            if 0 < int(n or 0) < 1_000_000
        ]
        self.max_tokens = min([max_tokens, *limits])
        self.scaler = StandardScaler()
        self.probe = PerLabelProbe()

    @torch.inference_mode()
    def embed(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """Mean of the last hidden states over each text's real tokens; texts batched by length."""
        ids = self.tokenizer(list(texts), truncation=True, max_length=self.max_tokens, verbose=False)["input_ids"]
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
        out = np.empty((len(ids), self.model.config.hidden_size), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        with tqdm(
            total=len(ids), desc=f"embedding ({Path(self.encoder_name).name})", unit="text", disable=not progress
        ) as bar:
            for batch in _length_batches(order, ids, defaults.FROZEN_BATCH_TOKENS):
                width = len(ids[batch[-1]])  # sorted: the last is the longest
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for row, i in enumerate(batch):
                    input_ids[row, : len(ids[i])] = torch.tensor(ids[i])
                    mask[row, : len(ids[i])] = 1
                hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                out[batch] = mean_pool(hidden, mask).numpy()  # as the served --pooling mean model reads it
                bar.update(len(batch))
        return out

    def fit(self, rows: EvalRows) -> FrozenEncoderBaseline:
        features = self.scaler.fit_transform(self.embed(rows.texts))
        self.probe.fit(features, rows)
        return self

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        return self.probe.predict(self.scaler.transform(self.embed(texts, progress)), len(texts))


def _length_batches(order: list[int], ids: list[list[int]], budget: int) -> list[list[int]]:
    """Runs of the length-sorted rows whose padded size (rows x longest) stays within ``budget`` tokens."""
    batches: list[list[int]] = []
    for i in order:
        if batches and (len(batches[-1]) + 1) * len(ids[i]) <= budget:
            batches[-1].append(i)
        else:
            batches.append([i])
    return batches


def base_encoder_of(model_dir: Path) -> str:
    """The pretrained encoder a model directory was fine-tuned from (its ``training_settings.json``)."""
    path = Path(model_dir) / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(
            f"--baseline frozen needs the model's base encoder, but {path} does not exist; pass --base-model"
        )
    settings = json.loads(path.read_text())
    name = settings.get("base_model_path") or settings.get("base_model")
    if not name:
        raise ConfigError(f"{path} names no base_model; pass --base-model for --baseline frozen")
    resolved = resolve_base_model(name)
    if settings.get("base_model_path") and not Path(resolved).exists():  # trained on another machine
        resolved = resolve_base_model(settings.get("base_model") or name)
    return resolved


def build_baseline(name: str, *, model_dir: Path | None = None, base_model: str | None = None) -> Baseline:
    """An unfitted baseline by name (``tfidf`` or ``frozen``)."""
    if name == "tfidf":
        return TfidfBaseline()
    if name == "frozen":
        if base_model:
            return FrozenEncoderBaseline(resolve_base_model(base_model))
        if model_dir is None:
            raise ConfigError("--baseline frozen needs a model directory (or --base-model) to find its encoder")
        return FrozenEncoderBaseline(base_encoder_of(model_dir))
    raise ConfigError(f"unknown baseline {name!r}; choose from {', '.join(defaults.BASELINES)}")
