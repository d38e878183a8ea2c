"""The output folder of score.py (cockatoo_ml/bulk/outputs.py): parts written whole or not at all, which parts
exist, their counts in the footer, and a job record that keeps two jobs' rows apart."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cockatoo_ml.bulk.outputs import JOB_FILE, PartStore, PartSummary, summary_dict
from cockatoo_ml.errors import ConfigError

JOB = {"batch_size": 4, "model": "/m"}


def store_in(tmp_path: Path) -> PartStore:
    store = PartStore(str(tmp_path / "out"))
    store.prepare(JOB)
    return store


def test_a_written_part_has_its_rows_and_its_counts_in_the_footer(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    summary = PartSummary(rows=2, errors=1, flagged=1, positives={"scam": 1}, tiers={"model": 1})
    store.write("a-000000.parquet", pa.table({"x": [1, 2]}), summary)
    assert store.parts() == {"a-000000.parquet"}
    assert pq.read_table(tmp_path / "out" / "a-000000.parquet").column("x").to_pylist() == [1, 2]
    assert store.summary_of("a-000000.parquet") == summary


def test_a_part_that_fails_while_written_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_in(tmp_path)

    def broken(table: pa.Table, where: object) -> None:
        where.write(b"PAR1 half a file")  # type: ignore[attr-defined]
        raise OSError("disk full")

    monkeypatch.setattr(pq, "write_table", broken)
    with pytest.raises(OSError, match="disk full"):
        store.write("a-000000.parquet", pa.table({"x": [1]}), PartSummary(rows=1))
    assert store.parts() == set() and sorted(p.name for p in (tmp_path / "out").iterdir()) == [JOB_FILE]


def test_temporary_files_of_a_crashed_run_are_removed_and_never_count_as_parts(tmp_path: Path) -> None:
    store = store_in(tmp_path)
    leftover = tmp_path / "out" / ".a-000001.parquet.tmp-0123"
    leftover.write_bytes(b"PAR1")
    (tmp_path / "out" / "_summary.json").write_text("{}")
    assert store.parts() == set()
    store.prepare(JOB)  # the rerun
    assert not leftover.exists()


def test_a_rerun_with_other_settings_is_refused(tmp_path: Path) -> None:
    store_in(tmp_path)
    with pytest.raises(ConfigError, match=r"batch_size: 4 then, 8 now"):
        PartStore(str(tmp_path / "out")).prepare({**JOB, "batch_size": 8})
    PartStore(str(tmp_path / "out")).prepare(dict(JOB))  # the same settings resume


def test_a_folder_of_parquet_files_from_elsewhere_is_refused(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    pq.write_table(pa.table({"x": [1]}), tmp_path / "out" / "someone-else.parquet")
    with pytest.raises(ConfigError, match="no _job.json"):
        PartStore(str(tmp_path / "out")).prepare(JOB)


def test_summaries_add_up() -> None:
    total = PartSummary()
    total.add(PartSummary(3, 1, 1, {"scam": 1}, {"model": 2}))
    total.add(PartSummary(2, 0, 2, {"scam": 1, "nsfw": 2}, {"student": 2}))
    assert total == PartSummary(5, 1, 3, {"scam": 2, "nsfw": 2}, {"model": 2, "student": 2})
    shown = summary_dict(total, ["scam", "violence", "nsfw"], ["x: skipped: broken"], parts=2, parts_resumed=1)
    assert shown["scored"] == 4 and shown["positives"] == {"scam": 2, "violence": 0, "nsfw": 2}
