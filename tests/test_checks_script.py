"""./test.sh runs ruff check, ruff format --check and mypy before pytest, and stops naming the check that failed.

The tools are stand-ins (shell scripts in a copied tree's .venv/bin) that fail on demand: this tests the script's
wiring, not the tools."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
FAKE_TOOL = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "$CALLS"
[ "$(basename "$0") $1" != "$FAIL" ] && [ "$(basename "$0")" != "$FAIL" ]
"""


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """test.sh and what it sources, with a .venv whose requirements count as installed."""
    (tmp_path / "scripts").mkdir()
    for name in ("test.sh", "scripts/venv.sh", "requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_bytes((REPO_ROOT / name).read_bytes())
    (tmp_path / "test.sh").chmod(0o755)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "ruff", "mypy"):
        (bin_dir / tool).write_text(FAKE_TOOL)
        (bin_dir / tool).chmod(0o755)
    requirements = (tmp_path / "requirements.txt").read_bytes() + (tmp_path / "requirements-dev.txt").read_bytes()
    (tmp_path / ".venv" / ".requirements.sha1").write_text(hashlib.sha1(requirements).hexdigest() + "\n")
    return tmp_path


def run_tests_script(tree: Path, fail: str, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    calls = tree / "calls.txt"
    env = {**os.environ, "CALLS": str(calls), "FAIL": fail}
    done = subprocess.run([str(tree / "test.sh"), *args], env=env, capture_output=True, text=True, timeout=60)
    return done, calls.read_text().splitlines() if calls.exists() else []


def test_all_checks_run_before_pytest_which_gets_the_extra_arguments(tree: Path) -> None:
    done, calls = run_tests_script(tree, "", "-k", "something")
    assert done.returncode == 0, done.stderr
    assert [call.split()[:2] for call in calls] == [["ruff", "check"], ["ruff", "format"], ["mypy"], ["python", "-m"]]
    assert calls[1].split()[2] == "--check"
    assert calls[-1] == "python -m pytest -k something"


@pytest.mark.parametrize(
    ("fail", "name"),
    [("ruff check", "ruff check"), ("ruff format", "ruff format --check"), ("mypy", "mypy")],
)
def test_a_failing_check_stops_the_run_and_is_named(tree: Path, fail: str, name: str) -> None:
    done, calls = run_tests_script(tree, fail)
    assert done.returncode == 1
    assert f"error: '{name}' failed" in done.stderr
    assert not any(call.startswith("python -m pytest") for call in calls), "pytest ran after a failed check"
