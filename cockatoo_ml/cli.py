"""Shared plumbing for the top-level scripts: .env loading, logging, and turning user errors into exit codes."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from cockatoo_ml.errors import CockatooError
from cockatoo_ml.logging import configure_logging
from cockatoo_ml.settings import load_env_file

log = logging.getLogger("cockatoo_ml")


def run_main(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> int:
    """Run an entry point: load ``.env`` (never overriding the real environment), configure logging, and
    print a ``CockatooError`` as one line with its exit code instead of a traceback."""
    try:
        load_env_file()
        configure_logging()
        return int(main(argv) or 0)
    except CockatooError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def settings_to_dict(*settings: Any) -> dict[str, Any]:
    """Merge dataclass settings objects into one JSON-friendly dict (paths become strings)."""
    merged: dict[str, Any] = {}
    for obj in settings:
        for key, value in dataclasses.asdict(obj).items():
            merged[key] = str(value) if isinstance(value, Path) else value
    return merged


def report_settings(title: str, settings: dict[str, Any], save_to: Path | None = None) -> None:
    """Print the resolved settings of a run and optionally save them beside its output."""
    log.info("%s settings:\n%s", title, json.dumps(settings, indent=2, default=str, sort_keys=True))
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        save_to.write_text(json.dumps(settings, indent=2, default=str, sort_keys=True) + "\n")
