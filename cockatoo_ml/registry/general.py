"""Settings every script and the server share."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cockatoo_ml.settings import setting


@dataclass(frozen=True)
class GeneralSettings:
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = setting(
        "INFO",
        env="COCKATOO_LOG_LEVEL",
        flag=False,
        convert=str.upper,
        help="Log level of every script and the server (any case).",
    )
