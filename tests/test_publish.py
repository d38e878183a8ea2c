"""publish_dir: a directory is written aside and renamed into place whole; a failure midway loses nothing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cockatoo_ml.publish import publish_dir, staging_dir, swap_into_place


def make_old(target: Path) -> None:
    (target / "sub").mkdir(parents=True)
    (target / "old.txt").write_text("old")
    (target / "sub" / "old.bin").write_bytes(b"old weights")


def contents(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_the_new_directory_replaces_the_old_one_whole(tmp_path: Path) -> None:
    target = tmp_path / "model"
    make_old(target)
    before = contents(target)
    with publish_dir(target) as staged:
        assert staged.parent == tmp_path and staged.name.startswith(".") and not any(staged.iterdir())
        (staged / "new.txt").write_text("new")
        assert contents(target) == before  # nothing of the new one shows until the block ends
        (staged / "sub").mkdir()
        (staged / "sub" / "new.bin").write_bytes(b"new weights")
    assert contents(target) == {"new.txt": b"new", "sub/new.bin": b"new weights"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or old directory left behind


def test_a_failure_midway_leaves_the_old_directory_intact(tmp_path: Path) -> None:
    target = tmp_path / "data"
    make_old(target)
    before = contents(target)
    with pytest.raises(RuntimeError, match="disk full"), publish_dir(target) as staged:
        (staged / "half.arrow").write_bytes(b"half of it")
        raise RuntimeError("disk full")
    assert contents(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]


def test_a_first_publication_creates_the_directory_and_its_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "out"
    with publish_dir(target) as staged:
        (staged / "x.json").write_text("{}")
    assert contents(target) == {"x.json": b"{}"}


def test_a_leftover_of_an_interrupted_run_is_cleared_first(tmp_path: Path) -> None:
    target = tmp_path / "model"
    leftover = staging_dir(target)
    leftover.mkdir()
    (leftover / "stale.txt").write_text("from a run that was killed")
    with publish_dir(target) as staged:
        assert staged == leftover and not any(staged.iterdir())
        (staged / "fresh.txt").write_text("fresh")
    assert contents(target) == {"fresh.txt": b"fresh"}


def test_published_files_are_readable_by_other_users(tmp_path: Path) -> None:
    """save_pretrained leaves model.safetensors at 0600; the published directory follows the umask instead."""
    target, staged = tmp_path / "model", staging_dir(tmp_path / "model")
    (staged / "plots").mkdir(parents=True)
    (staged / "model.safetensors").write_bytes(b"weights")
    (staged / "model.safetensors").chmod(0o600)
    (staged / "plots" / "pr.png").write_bytes(b"png")
    (staged / "plots" / "pr.png").chmod(0o600)
    previous = os.umask(0o022)
    try:
        swap_into_place(staged, target)
    finally:
        os.umask(previous)
    assert (target / "model.safetensors").stat().st_mode & 0o777 == 0o644
    assert (target / "plots" / "pr.png").stat().st_mode & 0o777 == 0o644
