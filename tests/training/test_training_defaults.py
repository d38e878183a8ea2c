"""Training defaults and their environment overrides (cockatoo_ml/registry/training.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry import training as defaults
from cockatoo_ml.registry.models import DEFAULT_BASE_MODEL
from cockatoo_ml.registry.paths import MODEL_DIR
from cockatoo_ml.training.run import parse_settings


def test_flags_default_to_the_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COCKATOO_BASE_MODEL", "COCKATOO_MODEL_DIR", "COCKATOO_BATCH_SIZE", "COCKATOO_EPOCHS", "COCKATOO_LR"):
        monkeypatch.delenv(name, raising=False)
    settings = parse_settings([])
    assert settings.base_model == DEFAULT_BASE_MODEL and settings.output_dir == MODEL_DIR
    assert (settings.batch_size, settings.epochs, settings.lr) == (defaults.BATCH_SIZE, defaults.EPOCHS, defaults.LEARNING_RATE)
    assert settings.checkpoints == Path(f"{MODEL_DIR}{defaults.CHECKPOINTS_SUFFIX}")
    assert settings.resume is None and settings.telemetry is False


def test_environment_overrides_and_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKATOO_BATCH_SIZE", "4")
    monkeypatch.setenv("COCKATOO_BASE_MODEL", "minilm")
    monkeypatch.setenv("COCKATOO_LR", "1e-4")
    settings = parse_settings([])
    assert (settings.batch_size, settings.base_model, settings.lr) == (4, "minilm", 1e-4)
    assert parse_settings(["--batch-size", "8"]).batch_size == 8


def test_bad_environment_values_are_user_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKATOO_BATCH_SIZE", "lots")
    with pytest.raises(ConfigError, match="COCKATOO_BATCH_SIZE"):
        parse_settings([])
    monkeypatch.setenv("COCKATOO_BATCH_SIZE", "")
    monkeypatch.setenv("COCKATOO_EPOCHS", "two")
    with pytest.raises(ConfigError, match="not a number"):
        parse_settings([])


def test_bare_resume_means_latest_and_a_path_is_kept() -> None:
    assert parse_settings(["--resume"]).resume == "latest"
    assert parse_settings(["--resume", "ckpt/checkpoint-4"]).resume == "ckpt/checkpoint-4"
