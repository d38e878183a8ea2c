"""The parity guard: the bucketed bfloat16 path serves only where it decides as float32 does on the model's own
validation sample, on hardware that computes bfloat16; every fall-back to float32 is logged and says why."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from cockatoo_ml.artifacts import PARITY_FILE
from cockatoo_ml.inference import parity
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.inference.parity import (
    MAX_PR_AUC_CHANGE,
    ParitySample,
    choose_precision,
    choose_sample,
    compare,
    write_parity_sample,
)
from cockatoo_ml.inference.runtime import BUCKETED_BF16, FLOAT32
from cockatoo_ml.modeling import WEIGHTS_FILE
from tests.conftest import make_rows, varied_texts


def _native(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    # The check must not depend on the test machine's CPU (some lack AVX512-BF16: bfloat16 is then emulated).
    monkeypatch.setattr(parity, "native_bf16", lambda device: (native, "the CPU says so (test)"))


def _validation(labels: tuple[str, ...]) -> tuple[list[str], np.ndarray, np.ndarray]:
    rows = make_rows(160, labels, seed=21)
    texts = [row["text"] for row in rows] + varied_texts(80, seed=22)
    truth = np.asarray([row["labels"] for row in rows] + [[0.0] * len(labels)] * 80)
    mask = np.asarray([row["label_mask"] for row in rows] + [[0.0] * len(labels)] * 80)  # unlabelled: no PR-AUC
    return texts, truth, mask


@pytest.fixture(scope="module")
def with_sample(minilm_model_dir: Path, labels: tuple[str, ...], tmp_path_factory: pytest.TempPathFactory) -> Path:
    model_dir = tmp_path_factory.mktemp("parity") / "model"
    shutil.copytree(minilm_model_dir, model_dir)
    with pytest.MonkeyPatch.context() as patch:
        _native(patch, True)
        result = write_parity_sample(TextClassifier.load(model_dir, dtype="float32"), model_dir, *_validation(labels))
    assert result is not None and result.passed, result  # checked when the directory is built
    return model_dir


def test_compare_counts_decisions_and_the_largest_pr_auc_change() -> None:
    truth = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 0.0]])
    mask = np.array([[1.0, 1.0], [1.0, 1.0], [1.0, 1.0], [1.0, 0.0]])
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.3], [0.4, 0.7]])
    same = compare(reference.copy(), reference, truth, mask, np.array([0.5, 0.5]))
    assert (same.agreement, same.pr_auc_change, same.max_score_change, same.passed) == (1.0, 0.0, 0.0, True)
    # text 2 label 0 crosses its threshold, and now ranks below the negative text 3: PR-AUC 1 -> 5/6
    moved = reference.copy()
    moved[2, 0] = 0.3
    result = compare(moved, reference, truth, mask, np.array([0.5, 0.5]))
    assert result.agreement == 7 / 8 and not result.passed
    assert result.pr_auc_change == pytest.approx(1 - 5 / 6)
    assert result.max_score_change == pytest.approx(0.3)
    assert "87.50% of decisions" in result.describe() and f"needs {MAX_PR_AUC_CHANGE}" in result.describe()


def test_the_sample_takes_each_labels_positives_first_then_random_rows() -> None:
    truth = np.zeros((1000, 2))
    truth[[3, 500, 999], 0] = 1.0  # three positives of a rare label
    truth[:100, 1] = 1.0
    mask = np.ones_like(truth)
    mask[999, 0] = 0.0  # a positive whose label is unknown is no positive
    rows = choose_sample(truth, mask, size=50)
    assert len(rows) == 50 and list(rows) == sorted(set(rows))
    assert {3, 500} <= set(rows)
    assert (truth[rows, 1] > 0).sum() >= 32
    assert list(choose_sample(truth, mask, size=50)) == list(rows)  # the same sample every time
    assert len(choose_sample(truth[:10], mask[:10], size=50)) == 10


def test_the_sample_holds_float32_scores_of_the_models_windows(with_sample: Path, labels) -> None:
    sample = ParitySample.load(with_sample, labels)
    reference = TextClassifier.load(with_sample, dtype="float32")
    assert (sample.window, sample.stride) == (reference.window, reference.stride) == (128, 31)
    assert len(sample.texts) == 240 and sample.float32.shape == (240, len(labels))
    scores = np.asarray([s.scores for s in reference.score(sample.texts[:20])])
    np.testing.assert_allclose(sample.float32[:20], scores, atol=1e-6)
    assert json.loads((with_sample / PARITY_FILE).read_text())["build_check"]["passed"] is True


@pytest.mark.slow
def test_a_model_that_passes_serves_the_bucketed_path(with_sample: Path, monkeypatch, caplog) -> None:
    _native(monkeypatch, True)
    with caplog.at_level(logging.INFO, logger="cockatoo_ml.inference.parity"):
        classifier = TextClassifier.load(with_sample)  # dtype auto
    assert classifier.precision.path == BUCKETED_BF16 and classifier.bucketed and classifier.dtype == "bfloat16"
    assert "of decisions equal float32's" in classifier.precision.reason
    assert "serving the bucketed bfloat16 path" in caplog.text


@pytest.mark.slow
def test_a_sample_cut_into_other_windows_is_scored_again_in_float32(with_sample: Path, monkeypatch, caplog) -> None:
    _native(monkeypatch, True)
    with caplog.at_level(logging.INFO, logger="cockatoo_ml.inference.parity"):
        classifier = TextClassifier.load(with_sample, max_window_tokens=64)
    assert classifier.window == 64 and classifier.precision.path == BUCKETED_BF16
    assert "parity sample cut at 128 tokens, this model at 64: scoring it in float32" in caplog.text


@pytest.mark.slow
def test_a_model_made_to_fail_the_check_falls_back_to_float32(with_sample: Path, tmp_path: Path, monkeypatch, caplog):
    """Weights changed after the sample was written: its float32 scores no longer match what the model says."""
    model_dir = tmp_path / "model"
    shutil.copytree(with_sample, model_dir)
    weights = load_file(str(model_dir / WEIGHTS_FILE))
    generator = torch.Generator().manual_seed(0)
    weights["classifier.weight"] += torch.randn(weights["classifier.weight"].shape, generator=generator) * 2
    save_file(weights, str(model_dir / WEIGHTS_FILE), metadata={"format": "pt"})
    _native(monkeypatch, True)
    with caplog.at_level(logging.WARNING):
        classifier = TextClassifier.load(model_dir)
    assert classifier.precision.path == FLOAT32 and not classifier.bucketed and classifier.dtype == "float32"
    assert "failed the parity check" in classifier.precision.reason
    assert "serving in float32: the bucketed bfloat16 path failed the parity check" in caplog.text


def test_without_native_bfloat16_auto_is_float32_and_says_why(with_sample: Path, monkeypatch, caplog) -> None:
    _native(monkeypatch, False)
    with caplog.at_level(logging.INFO, logger="cockatoo_ml.inference.parity"):
        classifier = TextClassifier.load(with_sample)
    assert classifier.precision.path == FLOAT32 and classifier.precision.reason == "the CPU says so (test)"
    assert "serving in float32: the CPU says so (test)" in caplog.text


@pytest.mark.parametrize("damage", ["missing", "unreadable", "other_labels"])
def test_without_a_usable_sample_auto_is_float32_and_says_why(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch, caplog, damage: str
) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    if damage == "unreadable":
        (model_dir / PARITY_FILE).write_text("{not json")
    elif damage == "other_labels":
        sample = ParitySample(("toxic",), ["a"], np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 1)), 64, 15)
        sample.save(model_dir)
    _native(monkeypatch, True)
    with caplog.at_level(logging.WARNING):
        classifier = TextClassifier.load(model_dir)
    assert classifier.precision.path == FLOAT32
    expected = {
        "missing": "no parity.json in the model directory",
        "unreadable": "parity.json is unreadable (JSONDecodeError",
        "other_labels": "parity.json does not match this model's labels",
    }[damage]
    assert expected in classifier.precision.reason and expected in caplog.text
    assert choose_precision(classifier, model_dir).path == FLOAT32  # and the classifier was left as it was
    assert classifier.precision.path == FLOAT32


def test_asked_precisions_skip_the_check(with_sample: Path, monkeypatch) -> None:
    monkeypatch.setattr(parity, "choose_precision", lambda *args: pytest.fail("checked"))
    assert TextClassifier.load(with_sample, dtype="float32").precision.path == FLOAT32
    forced = TextClassifier.load(with_sample, dtype="bfloat16").precision
    assert forced.path == BUCKETED_BF16 and "without parity check" in forced.reason
