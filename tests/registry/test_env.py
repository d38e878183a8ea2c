"""Environment readers shared by every stage (cockatoo_ml/registry/env.py)."""

from __future__ import annotations

import pytest

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.env import env_flag, env_float, env_int, env_str


@pytest.mark.parametrize(("raw", "on"), [("1", True), ("TRUE", True), ("on", True), ("0", False), ("", False), ("no", False)])
def test_env_flag(monkeypatch: pytest.MonkeyPatch, raw: str, on: bool) -> None:
    monkeypatch.setenv("COCKATOO_TEST_FLAG", raw)
    assert env_flag("COCKATOO_TEST_FLAG") is on


def test_env_numbers_and_strings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COCKATOO_TEST_N", " 7 ")
    assert env_int("COCKATOO_TEST_N", 1) == 7 and env_float("COCKATOO_TEST_N", 1.0) == 7.0
    monkeypatch.setenv("COCKATOO_TEST_N", "")
    assert env_int("COCKATOO_TEST_N", 3) == 3 and env_str("COCKATOO_TEST_N", "x") == "x"
    monkeypatch.setenv("COCKATOO_TEST_N", "seven")
    with pytest.raises(ConfigError, match="COCKATOO_TEST_N='seven' is not a whole number"):
        env_int("COCKATOO_TEST_N", 1)
