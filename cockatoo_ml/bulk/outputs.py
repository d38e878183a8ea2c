"""The output side of bulk scoring: a folder (local or any fsspec URL) of Parquet parts, one per input batch.

A part appears whole or not at all: it is written under a hidden temporary name and renamed (atomic on a local
or POSIX shared filesystem; an object store's upload is itself all or nothing). Its name says which file and
batch it holds (``InputFile.part_name``), so a rerun skips the parts that exist and writes the rest: no row twice,
none missing. Each part's footer carries its counts (``PartSummary``), so a rerun's summary covers the parts it
skipped without reading their rows. ``_job.json`` records what decides a part's content (batch size, columns,
model and scoring settings): a rerun with other values would mix two jobs' rows, and is refused.

Files whose names start with ``.`` or ``_`` are not parts: Parquet readers (pyarrow, pandas, Spark, Ray) skip them
when they read the folder.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from cockatoo_ml.errors import ConfigError

log = logging.getLogger(__name__)

JOB_FILE = "_job.json"
SUMMARY_FILE = "_summary.json"
SUMMARY_KEY = b"cockatoo_bulk"  # a part's footer metadata: its PartSummary as JSON
TMP_MARK = ".tmp-"


@dataclass
class PartSummary:
    """What one part (or, added up, a whole job) holds: rows, rows with an error, flagged rows, positives per
    label, and rows per tier."""

    rows: int = 0
    errors: int = 0
    flagged: int = 0
    positives: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)

    def add(self, other: PartSummary) -> None:
        self.rows += other.rows
        self.errors += other.errors
        self.flagged += other.flagged
        for mine, theirs in ((self.positives, other.positives), (self.tiers, other.tiers)):
            for key, count in theirs.items():
                mine[key] = mine.get(key, 0) + count

    def to_json(self) -> str:
        return json.dumps(
            {"rows": self.rows, "errors": self.errors, "flagged": self.flagged, "positives": self.positives,
             "tiers": self.tiers}, sort_keys=True
        )  # fmt: skip

    @classmethod
    def from_json(cls, raw: str | bytes) -> PartSummary:
        data = json.loads(raw)
        return cls(data["rows"], data["errors"], data["flagged"], dict(data["positives"]), dict(data["tiers"]))


class PartStore:
    """The output folder: which parts exist, writing one atomically, the job's record and its summary."""

    def __init__(self, output: str) -> None:
        self.url = output
        self.fs, self.root = fsspec.core.url_to_fs(output)
        self.root = self.root.rstrip("/")

    def path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def prepare(self, job: Mapping[str, Any]) -> None:
        """Create the folder; refuse one holding another job's parts; record this job; remove temporary files a
        crashed run left."""
        self.fs.makedirs(self.root, exist_ok=True)
        record = self.path(JOB_FILE)
        wanted = json.loads(json.dumps(job, sort_keys=True, default=str))
        if self.fs.exists(record):
            with self.fs.open(record, "r") as handle:
                before = json.load(handle)
            changed = sorted(key for key in set(before) | set(wanted) if before.get(key) != wanted.get(key))
            if changed:
                what = ", ".join(f"{key}: {before.get(key)!r} then, {wanted.get(key)!r} now" for key in changed)
                raise ConfigError(
                    f"{self.url} holds parts of a job with other settings ({what}); rerun with the same settings to "
                    "resume it, or give another --output"
                )
        elif self.parts():
            raise ConfigError(f"{self.url} holds Parquet files but no {JOB_FILE}: give an empty or new --output")
        else:
            with self.fs.open(record, "w") as handle:
                json.dump(wanted, handle, indent=2, sort_keys=True)
        for stale in self.fs.ls(self.root, detail=False):
            if TMP_MARK in stale.rsplit("/", 1)[-1]:
                self.fs.rm(stale)

    def parts(self) -> set[str]:
        """The names of the parts written so far."""
        if not self.fs.exists(self.root):
            return set()
        names = (path.rsplit("/", 1)[-1] for path in self.fs.ls(self.root, detail=False))
        return {name for name in names if name.endswith(".parquet") and not name.startswith((".", "_"))}

    def write(self, name: str, table: pa.Table, summary: PartSummary) -> None:
        """Write ``table`` as part ``name``, all or nothing, with ``summary`` in its footer."""
        metadata = {**(table.schema.metadata or {}), SUMMARY_KEY: summary.to_json().encode()}
        temporary = self.path(f".{name}{TMP_MARK}{uuid.uuid4().hex}")
        try:
            with self.fs.open(temporary, "wb") as handle:
                pq.write_table(table.replace_schema_metadata(metadata), handle)
            self.fs.mv(temporary, self.path(name))
        except BaseException:
            if self.fs.exists(temporary):
                self.fs.rm(temporary)
            raise

    def summary_of(self, name: str) -> PartSummary:
        with self.fs.open(self.path(name), "rb") as handle:
            metadata = pq.read_metadata(handle).metadata or {}
        return PartSummary.from_json(metadata[SUMMARY_KEY])

    def summaries(self, names: Iterable[str]) -> PartSummary:
        total = PartSummary()
        for name in names:
            total.add(self.summary_of(name))
        return total

    def write_summary(self, summary: Mapping[str, Any]) -> None:
        with self.fs.open(self.path(SUMMARY_FILE), "w") as handle:
            json.dump(summary, handle, indent=2, sort_keys=True)


def summary_dict(
    total: PartSummary, labels: Sequence[str], skipped_files: Sequence[str], parts: int, parts_resumed: int
) -> dict[str, Any]:
    """The job's summary as ``_summary.json`` holds it and the end of a run prints it."""
    return {
        "rows": total.rows,
        "scored": total.rows - total.errors,
        "errors": total.errors,
        "flagged": total.flagged,
        "positives": {label: total.positives.get(label, 0) for label in labels},
        "tiers": dict(sorted(total.tiers.items())),
        "parts": parts,
        "parts_resumed": parts_resumed,
        "skipped_files": list(skipped_files),
    }
