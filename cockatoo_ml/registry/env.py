"""Reading ``COCKATOO_*`` environment variables with a clear error for a malformed value."""

from __future__ import annotations

import os
from typing import Any


def env_str(name: str, default: str) -> str:
    """``$name`` when set and not empty, else ``default``."""
    return os.environ.get(name, "").strip() or default


def _env_number(name: str, default: float, cast: type, kind: str) -> Any:
    from cockatoo_ml.errors import ConfigError

    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return cast(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not {kind}; unset it or give e.g. {name}={default}") from None


def env_int(name: str, default: int) -> int:
    return _env_number(name, default, int, "a whole number")


def env_float(name: str, default: float) -> float:
    return _env_number(name, default, float, "a number")


def env_flag(name: str) -> bool:
    """True when ``$name`` is 1/true/yes/on (any case)."""
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
