"""Baselines: trained per label on the known rows only; the frozen encoder is the model's own base, mean-pooled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.errors import ConfigError
from cockatoo_ml.evaluation.baselines import (
    FrozenEncoderBaseline,
    PerLabelProbe,
    TfidfBaseline,
    base_encoder_of,
    build_baseline,
)
from cockatoo_ml.evaluation.data import EvalRows, rows_from_split
from cockatoo_ml.registry import evaluation as defaults
from tests.conftest import EXAMPLES, LABELS


def test_tfidf_baseline_learns_the_fixture(tiny_processed_dir: Path) -> None:
    baseline = TfidfBaseline().fit(rows_from_split(tiny_processed_dir, "train"))
    test = rows_from_split(tiny_processed_dir, "test")
    scores = baseline.score(test.texts, progress=False)
    assert scores.shape == (len(test), len(LABELS)) and ((scores >= 0) & (scores <= 1)).all()
    for j in range(len(LABELS)):
        known = test.label_mask[:, j] > 0
        assert average_precision_score(test.labels[known, j], scores[known, j]) > 0.9


def test_tfidf_features_are_word_and_char_ngrams_with_sublinear_tf() -> None:
    word, char = (step for _, step in TfidfBaseline().vectorizer.transformer_list)
    assert (word.analyzer, word.ngram_range, word.sublinear_tf) == ("word", defaults.TFIDF_WORD_NGRAMS, True)
    assert (char.analyzer, char.ngram_range, char.sublinear_tf) == ("char_wb", defaults.TFIDF_CHAR_NGRAMS, True)
    assert defaults.TFIDF_WORD_NGRAMS == (1, 2) and defaults.TFIDF_CHAR_NGRAMS == (2, 5)


def test_probe_learns_each_label_from_its_known_rows_only() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    labels = np.column_stack([features[:, 0] > 0, features[:, 1] > 0]).astype(np.float32)
    mask = np.ones_like(labels)
    mask[:20, 1] = 0
    labels[:20, 1] = 1 - labels[:20, 1]  # unknown cells hold the opposite of the truth: used, they would hurt
    rows = EvalRows(texts=[""] * 60, labels=labels, label_mask=mask, sources=["s"] * 60,
                    label_names=("a", "b"), description="fixture")
    probe = PerLabelProbe()
    probe.fit(features, rows)
    by_hand = LogisticRegression(class_weight="balanced", C=defaults.LOGREG_C, solver="liblinear",
                                 max_iter=defaults.LOGREG_MAX_ITER).fit(features[20:], labels[20:, 1] > 0.5)
    np.testing.assert_allclose(probe.predict(features, 60)[:, 1], by_hand.predict_proba(features)[:, 1])
    # Class-balanced: with 1 positive in 20 the scores still spread round 0.5, not round the 5% base rate.
    skewed = EvalRows(texts=[""] * 20, labels=(np.arange(20) == 0)[:, None], label_mask=np.ones((20, 1)),
                      sources=["s"] * 20, label_names=("a",), description="fixture")
    probe.fit(features[:20], skewed)
    assert probe.predict(features[:20], 20).mean() > 0.3


def test_a_label_with_one_class_in_training_scores_its_rate() -> None:
    rows = EvalRows(texts=[""] * 4, labels=np.zeros((4, 1)), label_mask=np.ones((4, 1)), sources=["s"] * 4,
                    label_names=("a",), description="fixture")
    probe = PerLabelProbe()
    probe.fit(np.eye(4), rows)
    assert probe.predict(np.eye(4), 4).tolist() == [[0.0]] * 4


@pytest.fixture(scope="module")
def frozen_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model, recorded as fine-tuned from itself (a real encoder of its own: quick to embed with)."""
    out = tmp_path_factory.mktemp("frozen") / "model"
    shutil.copytree(tiny_model_dir, out)
    (out / SETTINGS_FILE).write_text(json.dumps({"base_model": "somewhere/else", "base_model_path": str(out)}))
    return out


def test_frozen_encoder_is_read_from_training_settings(frozen_model_dir: Path, tmp_path: Path) -> None:
    assert base_encoder_of(frozen_model_dir) == str(frozen_model_dir)
    moved = tmp_path / "moved"  # trained on another machine: base_model_path is gone, the preset name resolves
    moved.mkdir()
    (moved / SETTINGS_FILE).write_text(json.dumps({"base_model": "minilm", "base_model_path": "/elsewhere/minilm"}))
    assert Path(base_encoder_of(moved)).name == "model" and Path(base_encoder_of(moved)).is_dir()
    with pytest.raises(ConfigError, match="pass --base-model"):
        base_encoder_of(tmp_path)


def test_frozen_embedding_is_the_mean_over_real_tokens(frozen_model_dir: Path) -> None:
    baseline = build_baseline("frozen", model_dir=frozen_model_dir)
    assert isinstance(baseline, FrozenEncoderBaseline)
    short, long = "hi there", " ".join(EXAMPLES["scam"] * 3)
    together = baseline.embed([short, long], progress=False)
    alone = baseline.embed([short], progress=False)
    np.testing.assert_allclose(together[0], alone[0], atol=1e-5)  # padding beside a long text changes nothing
    with torch.inference_mode():
        encoded = baseline.tokenizer([short], return_tensors="pt")
        hidden = baseline.model(**encoded).last_hidden_state[0]
    np.testing.assert_allclose(alone[0], hidden.mean(0).numpy(), atol=1e-5)
    assert defaults.FROZEN_MAX_TOKENS == 256 and baseline.max_tokens == 64  # capped at the tiny encoder's window
    too_long = baseline.embed([" ".join(["word"] * 1000)], progress=False)  # truncated, not an error
    assert np.isfinite(too_long).all()


def test_frozen_baseline_fits_and_scores(frozen_model_dir: Path, tiny_processed_dir: Path) -> None:
    baseline = build_baseline("frozen", model_dir=frozen_model_dir).fit(rows_from_split(tiny_processed_dir, "train"))
    test = rows_from_split(tiny_processed_dir, "test")
    scores = baseline.score(test.texts, progress=False)
    assert scores.shape == (len(test), len(LABELS)) and np.isfinite(scores).all()


def test_unknown_baseline_and_missing_encoder_are_errors() -> None:
    with pytest.raises(ConfigError, match="unknown baseline 'bm25'"):
        build_baseline("bm25")
    with pytest.raises(ConfigError, match="needs a model directory"):
        build_baseline("frozen")
