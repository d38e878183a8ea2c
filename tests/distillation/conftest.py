"""A copy of the tiny model per test (distillation writes into the model directory)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest


@pytest.fixture
def model_copy(tiny_model_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "model"
    shutil.copytree(tiny_model_dir, target)
    return target
