"""Publishing a directory whole: write it aside, then rename it into place.

A reader (a server starting, the next stage) finds at ``target`` the old complete directory or the new complete
one (or, for an instant, none), never half of one; and a run that fails midway leaves the old one as it was.
Used for prepared datasets, model directories and the cascade's student.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def publish_dir(target: Path) -> Iterator[Path]:
    """``with publish_dir(out) as staged:`` write into ``staged`` (an empty folder beside ``out``); when the block
    ends, it replaces ``out``. When the block raises, ``staged`` is deleted and ``out`` is untouched."""
    target = Path(target)
    staged = staging_dir(target)
    shutil.rmtree(staged, ignore_errors=True)  # a leftover of an interrupted earlier run
    staged.mkdir(parents=True)
    try:
        yield staged
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    swap_into_place(staged, target)


def staging_dir(target: Path) -> Path:
    """Where ``target`` is written before it is published: hidden, and beside it, so that the final rename stays
    on one filesystem (and so is atomic). One fixed name per target, so every process of a distributed run
    writes to the same place and a leftover of an interrupted run is found and cleared by the next."""
    return target.with_name(f".{target.name}.partial")


def swap_into_place(staged: Path, target: Path) -> None:
    """Move the finished ``staged`` to ``target``: the old one (if any) is renamed away first, then deleted.
    The files get the permissions the umask gives, as files this user writes do."""
    _give_files_umask_permissions(staged)
    old = target.with_name(f".{target.name}.old-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        os.replace(target, old)
    os.replace(staged, target)
    shutil.rmtree(old, ignore_errors=True)


def _give_files_umask_permissions(folder: Path) -> None:
    # save_pretrained writes model.safetensors through a private temp file (mode 0600); a server running as
    # another user (a container, a service account) could then not read the weights.
    umask = os.umask(0)
    os.umask(umask)
    for path in folder.rglob("*"):
        if path.is_file():
            path.chmod(0o666 & ~umask)
