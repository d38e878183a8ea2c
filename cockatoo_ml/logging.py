"""One place that configures logging for every entry point."""

from __future__ import annotations

import logging

_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure_logging(level: str | int | None = None) -> None:
    """Configure the root logger once; ``COCKATOO_LOG_LEVEL`` (``GeneralSettings``) unless ``level`` is given."""
    if level is None:
        from cockatoo_ml.registry.general import GeneralSettings
        from cockatoo_ml.settings import from_env

        level = from_env(GeneralSettings).log_level
    if isinstance(level, str):
        level = level.upper()
    logging.basicConfig(level=level, format=_FORMAT, datefmt="%H:%M:%S", force=True)
    # Third-party libraries are chatty at INFO; keep them to warnings unless we are debugging.
    if logging.getLogger().level > logging.DEBUG:
        for noisy in ("httpx", "urllib3", "filelock", "fsspec", "hpack", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.WARNING)


def escape_for_log(value: str) -> str:
    """``value`` with every non-printable character (newlines, ANSI escapes, bidi controls) written as a Python
    escape, so a client cannot forge or hide log lines."""
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(c if c.isprintable() and c != "\\" else c.encode("unicode_escape").decode("ascii") for c in value)
