"""Server settings from the environment (cockatoo_ml/registry/serving.py) and the root app.py's start-up."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.serving import ServingSettings, serving_settings_from_env
from cockatoo_ml.serving.app import create_app_from_env


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    import os

    for name in list(os.environ):
        if name.startswith("COCKATOO_"):
            monkeypatch.delenv(name)
    return monkeypatch


def test_defaults() -> None:
    settings = serving_settings_from_env()
    assert settings == ServingSettings()
    assert settings.model_dir == Path("constellation_one_text") and settings.display_name == "constellation_one_text"
    assert settings.api_key == "" and settings.log_texts is False
    assert settings.dtype == "auto"  # the fast path where the hardware and the parity check allow, else float32
    assert settings.bucket_tokens == (16, 32, 64, 128, 256, 512)


@pytest.mark.parametrize(
    ("value", "expected"), [("64, 16,32", (16, 32, 64)), ("128", (128,)), ("32,32,8", (8, 32))]
)
def test_bucket_tokens_are_a_sorted_list(clean_env: pytest.MonkeyPatch, value: str, expected: tuple[int, ...]) -> None:
    clean_env.setenv("COCKATOO_BUCKET_TOKENS", value)
    assert serving_settings_from_env().bucket_tokens == expected


def test_environment_overrides_and_types(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COCKATOO_MODEL_DIR", "/srv/models/v2")
    clean_env.setenv("COCKATOO_MICRO_BATCH_SIZE", "8")
    clean_env.setenv("COCKATOO_MICRO_BATCH_WAIT_MS", "2.5")
    clean_env.setenv("COCKATOO_LOG_TEXTS", "on")
    clean_env.setenv("COCKATOO_API_KEY", "k3y")
    settings = serving_settings_from_env()
    assert settings.model_dir == Path("/srv/models/v2") and settings.display_name == "v2"
    assert settings.micro_batch_size == 8 and settings.micro_batch_wait_ms == 2.5 and settings.log_texts is True
    assert "k3y" not in repr(settings) and settings.public_dict()["api_key"] == "set"


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("COCKATOO_MAX_BATCH_TEXTS", "many", "COCKATOO_MAX_BATCH_TEXTS='many'"),
        ("COCKATOO_MICRO_BATCH_SIZE", "0", "COCKATOO_MICRO_BATCH_SIZE must be at least 1"),
        ("COCKATOO_WINDOW_OVERLAP", "0.95", "COCKATOO_WINDOW_OVERLAP must be within 0 .. 0.9"),
        ("COCKATOO_MAX_QUEUE", "10", "COCKATOO_MAX_QUEUE (10) is below COCKATOO_MAX_BATCH_TEXTS (256)"),
        ("COCKATOO_DTYPE", "float16", "COCKATOO_DTYPE='float16' is not one of auto, float32, bfloat16"),
        ("COCKATOO_MODEL_THREADS", "-1", "COCKATOO_MODEL_THREADS must not be negative, got -1"),
        ("COCKATOO_TORCH_THREADS", "-2", "COCKATOO_TORCH_THREADS must not be negative, got -2"),
        ("COCKATOO_MAX_TEXT_TOKENS", "0", "COCKATOO_MAX_TEXT_TOKENS must be at least 1"),
        ("COCKATOO_MAX_QUEUE_TOKENS", "100", "COCKATOO_MAX_QUEUE_TOKENS (100) is below COCKATOO_MAX_REQUEST_TOKENS"),
        ("COCKATOO_BODY_TIMEOUT_S", "0", "COCKATOO_BODY_TIMEOUT_S must be positive, got 0"),
        ("COCKATOO_GRACEFUL_TIMEOUT", "soon", "COCKATOO_GRACEFUL_TIMEOUT='soon' is not a whole number"),
        ("COCKATOO_BUCKET_TOKENS", "16,x", "expected positive whole numbers of tokens, comma-separated"),
        ("COCKATOO_BUCKET_TOKENS", "0,16", "expected positive whole numbers of tokens, comma-separated"),
    ],
)
def test_bad_values_are_one_clear_error(clean_env: pytest.MonkeyPatch, name: str, value: str, message: str) -> None:
    clean_env.setenv(name, value)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        serving_settings_from_env()


def test_app_from_env_serves_the_configured_model(clean_env: pytest.MonkeyPatch, tiny_model_dir: Path) -> None:
    clean_env.setenv("COCKATOO_MODEL_DIR", str(tiny_model_dir))
    clean_env.setenv("COCKATOO_MODEL_NAME", "constellation_one_text")
    app = create_app_from_env()
    assert app.extensions["cockatoo"]["settings"].display_name == "constellation_one_text"
    assert app.extensions["cockatoo"]["classifier"].labels == ("scam", "violence", "nsfw", "harassment")


def test_app_from_env_exits_with_one_line_on_a_user_error(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("COCKATOO_MODEL_DIR", str(tmp_path / "missing"))
    with pytest.raises(SystemExit) as caught:
        create_app_from_env()
    assert str(caught.value).startswith(f"error: model directory {tmp_path / 'missing'} does not exist")
    clean_env.setenv("COCKATOO_MODEL_DIR", str(tmp_path))
    clean_env.setenv("COCKATOO_MICRO_BATCH_SIZE", "-1")
    with pytest.raises(SystemExit, match="error: COCKATOO_MICRO_BATCH_SIZE must be at least 1"):
        create_app_from_env()


def test_the_openai_category_map_from_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert serving_settings_from_env().category_map() == {
        "nsfw": ("sexual",),
        "harassment": ("harassment",),
        "violence": ("violence",),
    }
    clean_env.setenv("COCKATOO_OPENAI_CATEGORIES", " violence=violence, violence = harassment/threatening,scam=illicit")
    assert serving_settings_from_env().category_map() == {
        "violence": ("violence", "harassment/threatening"),
        "scam": ("illicit",),
    }


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nsfw", r"COCKATOO_OPENAI_CATEGORIES: 'nsfw' is not label=category \(e\.g\. nsfw=sexual\)"),
        ("=sexual", r"'=sexual' is not label=category"),
        ("nsfw=sexy", r"'sexy' \(for nsfw\) is not an OpenAI moderation category; use one of harassment, "),
        ("nsfw=Sexual", r"'Sexual' \(for nsfw\) is not an OpenAI moderation category"),
    ],
)
def test_a_malformed_openai_category_map_stops_start_up(
    clean_env: pytest.MonkeyPatch, value: str, message: str
) -> None:
    clean_env.setenv("COCKATOO_OPENAI_CATEGORIES", value)
    with pytest.raises(ConfigError, match=message):
        serving_settings_from_env()
