"""score.py from end to end with the local engine (cockatoo_ml/bulk/run.py, local.py): every input format and the
column options, the output's columns, the summary, rows never dropped, and resuming after a crash."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cockatoo_ml.bulk.outputs import PartStore
from cockatoo_ml.bulk.run import main
from cockatoo_ml.errors import ConfigError, DataError
from tests.bulk.conftest import TEXTS, Crash, Runner, crash_after, read_output, write_inputs, write_jsonl


def scores_of(rows: list[dict], labels: tuple[str, ...]) -> list[tuple[float, ...]]:
    return [tuple(row[label] for label in labels) for row in rows]


def test_every_format_gives_the_same_scores_and_keeps_ids_and_positions(
    run_score: Runner, tmp_path: Path, labels
) -> None:
    inputs = write_inputs(tmp_path / "in")
    results = {}
    for fmt, path in inputs.items():
        flags = ["--text-column", "body"] + (["--id-column", "post_id"] if fmt != "txt" else [])
        summary = run_score([path], tmp_path / f"out-{fmt}", *flags, "--batch-size", "5")
        rows = read_output(tmp_path / f"out-{fmt}")
        assert [row["file"] for row in rows] == [str(path)] * len(TEXTS)
        assert [row["row"] for row in rows] == list(range(len(TEXTS)))
        if fmt != "txt":
            ids = [row["post_id"] for row in rows]
            assert ids == ([100 + i for i in range(len(TEXTS))] if fmt == "parquet" else [str(100 + i) for i in range(18)])
        assert summary["rows"] == len(TEXTS) and summary["errors"] == 0 and summary["parts"] == 4  # 5+5+5+3
        results[fmt] = scores_of(rows, labels)
    assert results["parquet"] == results["jsonl"] == results["csv"] == results["txt"]


def test_output_columns_and_summary_agree(run_score: Runner, tmp_path: Path, labels) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS] + [{"text": None}, {"text": "  "}])
    summary = run_score([source], tmp_path / "out", "--batch-size", "8")
    rows = read_output(tmp_path / "out")
    assert list(rows[0]) == ["file", "row", *labels, "positive_labels", "flagged", "top_label", "tier", "windows", "error"]
    scored = [row for row in rows if row["error"] is None]
    assert summary["rows"] == len(rows) == len(TEXTS) + 2 and summary["errors"] == 2 and len(scored) == len(TEXTS)
    assert summary["flagged"] == sum(row["flagged"] for row in scored)
    assert summary["positives"] == {label: sum(label in row["positive_labels"] for row in scored) for label in labels}
    assert json.loads((tmp_path / "out" / "_summary.json").read_text()) == summary


def test_globs_and_folders_score_every_file_once(run_score: Runner, tmp_path: Path) -> None:
    inputs = write_inputs(tmp_path / "in")
    summary = run_score([tmp_path / "in", str(tmp_path / "in" / "*.txt")], tmp_path / "out", "--text-column", "body")
    rows = read_output(tmp_path / "out")
    assert summary["rows"] == 4 * len(TEXTS) and {row["file"] for row in rows} == {str(p) for p in inputs.values()}


def test_a_file_that_cannot_be_read_is_skipped_and_named_in_the_summary(
    run_score: Runner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = write_jsonl(tmp_path / "good.jsonl", [{"text": "hello"}])
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "other.parquet")
    summary = run_score([good, tmp_path / "other.parquet"], tmp_path / "out")
    assert summary["rows"] == 1 and len(summary["skipped_files"]) == 1
    assert "other.parquet: skipped: DataError: no column 'text'" in summary["skipped_files"][0]
    assert "skipped: " in capsys.readouterr().out


def test_command_line_mistakes_are_one_line_errors(run_score: Runner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "x", "error": 1}])
    with pytest.raises(ConfigError, match="output column"):
        run_score([source], tmp_path / "out", "--id-column", "error")
    with pytest.raises(DataError, match="does not exist"):
        run_score([tmp_path / "missing.jsonl"], tmp_path / "out")
    with pytest.raises(ConfigError, match="--replicas goes with --engine ray"):
        run_score([source], tmp_path / "out", "--replicas", "2")


def test_main_reads_the_servers_settings_from_the_environment(
    clean_env: pytest.MonkeyPatch, tiny_model_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "short"}, {"text": " ".join(TEXTS)}])
    clean_env.setenv("COCKATOO_MAX_TEXT_TOKENS", "40")
    assert main([str(source), "--model", str(tiny_model_dir), "--output", str(tmp_path / "out")]) == 0
    assert [row["error"] is None for row in read_output(tmp_path / "out")] == [True, False]
    assert "2 rows of 1 file(s)" in capsys.readouterr().out


# --- resuming ----------------------------------------------------------------------------------------------------


def test_a_rerun_after_a_crash_writes_only_the_missing_parts_and_equals_an_uninterrupted_run(
    run_score: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_inputs(tmp_path / "in")
    sources = [inputs["jsonl"], inputs["parquet"]]
    flags = ("--text-column", "body", "--id-column", "post_id", "--batch-size", "4")  # 5 parts per file
    whole = run_score(sources, tmp_path / "whole", *flags)

    with monkeypatch.context() as patch:
        first = crash_after(patch, 7)
        with pytest.raises(Crash):
            run_score(sources, tmp_path / "resumed", *flags)
    assert len(first) == 7 and len(PartStore(str(tmp_path / "resumed")).parts()) == 7
    with monkeypatch.context() as patch:
        second = crash_after(patch, 100)
        resumed = run_score(sources, tmp_path / "resumed", *flags)
    assert len(second) == 3 and not set(first) & set(second)  # no part twice
    assert read_output(tmp_path / "resumed") == read_output(tmp_path / "whole")  # none missing, none twice
    assert {**resumed, "parts_resumed": 0} == whole and resumed["parts_resumed"] == 7
    again = run_score(sources, tmp_path / "resumed", *flags)  # all done: nothing to score
    assert again["parts_resumed"] == 10 and again["rows"] == whole["rows"]


def test_a_rerun_with_another_batch_size_is_refused(run_score: Runner, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": t} for t in TEXTS])
    run_score([source], tmp_path / "out", "--batch-size", "4")
    with pytest.raises(ConfigError, match="batch_size: 4 then, 5 now"):
        run_score([source], tmp_path / "out", "--batch-size", "5")
