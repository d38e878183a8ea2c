"""download_data.py: fetch each source's files into ``<raw_dir>/<source>/``, from the Hub or a local folder.

Idempotent: after every file arrived a marker (``registry.data.DOWNLOAD_MARKER_PREFIX``) records the spec's
fingerprint, and a source whose marker matches is not fetched again. Resumable: ``snapshot_download`` keeps
partial files under ``<source>/.cache/huggingface`` and continues them on the next run.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import snapshot_download
from huggingface_hub.errors import (
    HfHubHTTPError,
    HFValidationError,
    HTTPError,
    LocalEntryNotFoundError,
    OfflineModeIsEnabled,
)
from huggingface_hub.utils import filter_repo_objects
from tqdm.auto import tqdm

from cockatoo_ml.data.sources import SourceSpec, load_source_set, select_sources
from cockatoo_ml.registry import data as defaults
from cockatoo_ml.registry.data import DownloadSettings
from cockatoo_ml.registry.paths import RAW_DIR
from cockatoo_ml.settings import parse_args

log = logging.getLogger(__name__)

# What an unreachable, offline or refusing Hub (or a malformed repo id) raises; anything else is a bug and
# keeps its traceback.
HUB_ERRORS = (HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled, HTTPError, OSError)


@dataclass
class DownloadResult:
    name: str
    origin: str
    status: str  # downloaded | copied | up to date | failed | local only
    files: int = 0
    size: int = 0
    message: str = ""

    @property
    def failed(self) -> bool:
        return self.status == "failed"


def fingerprint(spec: SourceSpec) -> dict[str, object]:
    """What makes two downloads of a source the same; a changed spec is fetched again."""
    return {
        "hub_repo": spec.hub_repo,
        "hub_config": spec.hub_config,
        "hub_revision": spec.hub_revision,
        "patterns": list(spec.download_patterns),
    }


def marker_path(folder: Path, spec: SourceSpec) -> Path:
    return folder / f"{defaults.DOWNLOAD_MARKER_PREFIX}.{spec.name}.json"


def is_complete(folder: Path, spec: SourceSpec) -> bool:
    marker = marker_path(folder, spec)
    try:
        return json.loads(marker.read_text())["fingerprint"] == fingerprint(spec)
    except (OSError, ValueError, KeyError):
        return False


def data_files(folder: Path) -> list[Path]:
    """The source's own files (not our marker, not the Hub's resume cache)."""
    return [
        p
        for p in folder.rglob("*")
        if p.is_file()
        and not p.name.startswith(defaults.DOWNLOAD_MARKER_PREFIX)
        and ".cache" not in p.relative_to(folder).parts
    ]


def write_marker(folder: Path, spec: SourceSpec, origin: str) -> tuple[int, int]:
    files = data_files(folder)
    size = sum(p.stat().st_size for p in files)
    payload = {"fingerprint": fingerprint(spec), "origin": origin, "files": len(files), "bytes": size}
    marker_path(folder, spec).write_text(json.dumps(payload, indent=2) + "\n")
    return len(files), size


def one_line(exc: BaseException) -> str:
    """A Hub error as one short line (its messages span several lines and repeat advice)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= 200 else text[:197] + "..."


def copy_from_dir(spec: SourceSpec, source: Path, target: Path) -> int:
    """Copy the files the spec wants (all when it names none) from a local folder, keeping sub-folders."""
    relative = sorted(p.relative_to(source).as_posix() for p in data_files(source))
    wanted = list(filter_repo_objects(relative, allow_patterns=list(spec.download_patterns) or None))
    for name in wanted:
        destination = target / name
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / name, destination)
    return len(wanted)


def download_one(
    spec: SourceSpec, raw_dir: Path, from_dir: Path | None, token: str | None, force: bool
) -> DownloadResult:
    target = spec.source_dir(raw_dir)
    origin = str(from_dir / spec.folder_name) if from_dir else (spec.hub_repo or "")
    if not from_dir and not spec.hub_repo:
        return DownloadResult(spec.name, "-", "local only", message="no hub_repo: put its files in " + str(target))
    if not force and is_complete(target, spec):
        files = data_files(target)
        return DownloadResult(spec.name, origin, "up to date", len(files), sum(p.stat().st_size for p in files))
    if from_dir:
        source = from_dir / spec.folder_name
        if not source.is_dir():
            return DownloadResult(spec.name, origin, "failed", message=f"{source} not found")
        target.mkdir(parents=True, exist_ok=True)
        if copy_from_dir(spec, source, target) == 0:
            return DownloadResult(
                spec.name, origin, "failed", message=f"no files matching {list(spec.download_patterns)} in {source}"
            )
        status = "copied"
    else:
        assert spec.hub_repo, "a spec with neither from_dir nor hub_repo returned above"
        try:
            snapshot_download(
                spec.hub_repo,
                repo_type="dataset",
                revision=spec.hub_revision,
                local_dir=target,
                allow_patterns=list(spec.download_patterns) or None,
                token=token,
            )
        except HUB_ERRORS as exc:
            return DownloadResult(spec.name, origin, "failed", message=one_line(exc))
        if not data_files(target):
            return DownloadResult(
                spec.name, origin, "failed", message=f"no files matched {list(spec.download_patterns)}"
            )
        status = "downloaded"
    n_files, size = write_marker(target, spec, origin)
    return DownloadResult(spec.name, origin, status, n_files, size)


def download_sources(
    specs: Sequence[SourceSpec],
    raw_dir: Path,
    from_dir: Path | None = None,
    token: str | None = None,
    force: bool = False,
) -> list[DownloadResult]:
    results = []
    for spec in tqdm(specs, desc="sources", unit="source"):
        result = download_one(spec, raw_dir, from_dir, token, force)
        if result.failed:
            hint = "" if from_dir else " (check the network or HF_ENDPOINT/HF_TOKEN, or use --from-dir DIR)"
            log.error("%s: download from %s failed: %s%s", spec.name, result.origin, result.message, hint)
        results.append(result)
    return results


def format_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def format_summary(results: Sequence[DownloadResult]) -> str:
    width = max([len(r.name) for r in results] + [6])
    lines = [f"{'source':<{width}}  {'status':<10}  {'files':>5}  {'size':>9}  origin / note"]
    for r in results:
        note = r.message or r.origin
        lines.append(f"{r.name:<{width}}  {r.status:<10}  {r.files:>5}  {format_size(r.size):>9}  {note}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(DownloadSettings, argv, description="Download the dataset sources.")
    specs = select_sources(load_source_set(settings.sources).sources, settings.only)
    from_dir = Path(settings.from_dir) if settings.from_dir else None
    results = download_sources(
        specs, Path(settings.raw_dir or RAW_DIR), from_dir, settings.hf_token or None, settings.force
    )
    print(format_summary(results))
    failed = [r.name for r in results if r.failed]
    if failed:
        log.error("%d of %d source(s) failed: %s", len(failed), len(results), ", ".join(failed))
        return 1
    return 0
