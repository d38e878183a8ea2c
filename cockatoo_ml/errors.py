"""Our own exception types.

A ``CockatooError`` is a *user's* mistake (missing file, unknown column, bad flag): entry points turn it
into one clear line and a non-zero exit code. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CockatooError(Exception):
    """A problem the user can fix; the message names the thing and the fix."""

    exit_code: int = 2


class ConfigError(CockatooError):
    """A setting, flag, registry entry or TOML file is wrong."""


class DataError(CockatooError):
    """A dataset source or prepared dataset is missing or malformed."""


class ModelLoadError(CockatooError):
    """A model directory is missing, incomplete or unreadable."""
