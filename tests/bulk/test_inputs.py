"""Reading inputs for score.py (cockatoo_ml/bulk/inputs.py): which files, each format, the column options, fixed
batches, and rows that cannot be scored kept in place with their reason."""

from __future__ import annotations

import gzip
import json
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cockatoo_ml.bulk.inputs import Columns, FileProblem, InputFile, check_columns, estimate_rows, expand, read_batches
from cockatoo_ml.errors import ConfigError, DataError

BLANK = "text must not be empty or only whitespace, control or format characters"


def read_all(file: InputFile, columns: Columns = Columns(), batch_rows: int = 3) -> tuple[list, list, list]:
    texts, problems, ids = [], [], []
    for batch in read_batches(file, columns, batch_rows):
        texts += batch.rows.texts
        problems += batch.rows.problems
        ids += batch.rows.ids.to_pylist() if batch.rows.ids is not None else [None] * len(batch.rows)
    return texts, problems, ids


# --- which files -------------------------------------------------------------------------------------------------


def test_files_folders_and_globs_expand_in_order_once_each(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "sub").mkdir()
    for name in ("b.jsonl", "a.parquet", "sub/c.csv", "sub/d.txt.gz", "notes.md"):
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        files = expand([str(tmp_path / "*.jsonl"), str(tmp_path), str(tmp_path / "b.jsonl")])
    assert [(Path(f.url).relative_to(tmp_path).as_posix(), f.format) for f in files] == [
        ("b.jsonl", "jsonl"), ("a.parquet", "parquet"), ("sub/c.csv", "csv"), ("sub/d.txt.gz", "text"),
    ]  # fmt: skip
    assert "notes.md" in caplog.text  # skipped with a warning naming it


def test_forced_format_reads_any_name(tmp_path: Path) -> None:
    (tmp_path / "posts.json").write_text('{"text": "hi"}\n')
    with pytest.raises(ConfigError, match="--format"):
        expand([str(tmp_path / "posts.json")])
    [file] = expand([str(tmp_path / "posts.json")], "jsonl")
    assert read_all(file)[0] == ["hi"]


@pytest.mark.parametrize("pattern", ["missing.parquet", "*.csv", "empty_dir"])
def test_an_input_that_names_nothing_is_an_error(tmp_path: Path, pattern: str) -> None:
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DataError, match="no"):
        expand([str(tmp_path / pattern)])


def test_part_names_are_stable_and_tell_same_named_files_apart(tmp_path: Path) -> None:
    one, two = InputFile("/a/data.csv", "csv"), InputFile("/b/data.csv", "csv")
    assert one.part_name(7) == InputFile("/a/data.csv", "csv").part_name(7)
    assert one.part_name(7).startswith("data.csv-") and one.part_name(7).endswith("-000007.parquet")
    assert one.key != two.key


def test_an_id_column_cannot_come_from_a_text_file() -> None:
    with pytest.raises(ConfigError, match="plain text"):
        check_columns([InputFile("/x/a.txt", "text")], Columns(id="id"))


# --- each format -------------------------------------------------------------------------------------------------


def test_parquet_keeps_the_id_type_and_marks_non_strings(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    table = pa.table({"body": ["one", None, "", "four", "five"], "post": [10, 11, 12, 13, 14], "other": [0] * 5})
    pq.write_table(table, path, row_group_size=2)  # row groups of 2, batches of 3: boundaries are the batches'
    texts, problems, ids = read_all(InputFile(str(path), "parquet"), Columns("body", "post"))
    assert texts == ["one", None, None, "four", "five"]
    assert problems == [None, "text is not a string but null", BLANK, None, None]
    assert ids == [10, 11, 12, 13, 14]


def test_a_parquet_text_column_of_numbers_is_an_error_per_row(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": [1, 2]}), tmp_path / "n.parquet")
    assert read_all(InputFile(str(tmp_path / "n.parquet"), "parquet"))[1] == ["text is not a string but int"] * 2


def test_json_lines_every_line_is_a_row(tmp_path: Path) -> None:
    lines = [
        {"text": "hi", "id": 7}, "not json", [1, 2], {"id": "x"}, {"text": 5, "id": "y"}, {"text": "ab\ud800"},
        {"text": "ok", "id": "z"},
    ]  # fmt: skip
    raw = "\n".join(line if isinstance(line, str) else json.dumps(line) for line in lines) + "\n\n"
    (tmp_path / "a.jsonl").write_text(raw)
    texts, problems, ids = read_all(InputFile(str(tmp_path / "a.jsonl"), "jsonl"), Columns(id="id"))
    assert texts == ["hi", None, None, None, None, None, "ok", None]
    assert problems[0] is None and problems[1].startswith("line is not valid JSON")
    assert problems[2:6] == [
        "line is not a JSON object but an array",
        "no field 'text' (--text-column)",
        "text is not a string but int",
        "text is not valid Unicode: lone surrogate U+D800 at position 2; send UTF-8 text",
    ]
    assert problems[7].startswith("line is not valid JSON")  # the blank line before the end is a row too
    assert ids == ["7", None, None, "x", "y", None, "z", None]  # strings: JSON numbers as written


def test_compressed_json_lines(tmp_path: Path) -> None:
    with gzip.open(tmp_path / "a.jsonl.gz", "wt") as handle:
        handle.write('{"text": "one"}\n{"text": "two"}\n')
    [file] = expand([str(tmp_path / "a.jsonl.gz")])
    assert read_all(file)[0] == ["one", "two"]
    assert estimate_rows(file) is None  # a compressed file's rows cannot be told from its size


def test_csv_quoted_newlines_empty_fields_and_bad_utf8(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_bytes(b'id,text\n1,hello\n2,"multi\nline, quoted"\n3,\n4,caf\xe9\n')
    texts, problems, ids = read_all(InputFile(str(tmp_path / "a.csv"), "csv"), Columns(id="id"))
    assert texts == ["hello", "multi\nline, quoted", None, None]
    assert problems == [None, None, BLANK, "not valid UTF-8 (byte 0xe9 at position 3)"]
    assert ids == ["1", "2", "3", "4"]


def test_text_files_one_text_per_line_blank_lines_kept(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"first\r\n\nthird \xff\nlast")
    texts, problems, _ = read_all(InputFile(str(tmp_path / "a.txt"), "text"))
    assert texts == ["first", None, None, "last"]
    assert problems == [None, BLANK, "not valid UTF-8 (byte 0xff at position 6)", None]


@pytest.mark.parametrize("batch_rows", [1, 2, 3, 7, 100])
def test_batches_have_fixed_boundaries_and_number_the_rows(tmp_path: Path, batch_rows: int) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"text": [f"t{i}" for i in range(7)]}), path, row_group_size=3)
    batches = list(read_batches(InputFile(str(path), "parquet"), Columns(), batch_rows))
    assert [len(b.rows) for b in batches[:-1]] == [batch_rows] * (len(batches) - 1)
    assert [b.index for b in batches] == list(range(len(batches)))
    assert [b.first_row for b in batches] == [i * batch_rows for i in range(len(batches))]
    assert [t for b in batches for t in b.rows.texts] == [f"t{i}" for i in range(7)]


# --- files that cannot be read -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "columns", "reason"),
    [
        ("a.csv", b"body\nhi\n", Columns(), "column"),
        ("a.parquet", b"not parquet at all", Columns(), "Parquet"),
    ],
)
def test_a_file_that_cannot_be_read_is_skipped_with_its_reason(
    tmp_path: Path, name: str, content: bytes, columns: Columns, reason: str
) -> None:
    (tmp_path / name).write_bytes(content)
    problems: list[FileProblem] = []
    assert list(read_batches(InputFile(str(tmp_path / name), name.split(".")[1]), columns, 10, problems)) == []
    assert len(problems) == 1 and problems[0].from_row == 0 and reason in problems[0].describe()


def test_a_parquet_file_without_the_text_column_names_its_columns(tmp_path: Path) -> None:
    pq.write_table(pa.table({"body": ["x"]}), tmp_path / "a.parquet")
    problems: list[FileProblem] = []
    list(read_batches(InputFile(str(tmp_path / "a.parquet"), "parquet"), Columns(), 10, problems))
    assert "no column 'text' (--text-column); its columns are body" in problems[0].describe()


def test_rows_before_a_break_are_kept_and_the_rest_is_reported(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(b'{"text": "line %d"}\n' % i for i in range(5000)))
    (tmp_path / "a.jsonl.gz").write_bytes(whole[: len(whole) // 2])  # a download cut short
    problems: list[FileProblem] = []
    batches = list(read_batches(InputFile(str(tmp_path / "a.jsonl.gz"), "jsonl"), Columns(), 100, problems))
    texts = [t for b in batches for t in b.rows.texts]
    assert 0 < len(texts) < 5000 and texts == [f"line {i}" for i in range(len(texts))]
    assert len(problems) == 1 and problems[0].from_row == len(texts) and "EOFError" in problems[0].reason


def test_a_csv_row_with_too_many_fields_ends_the_file_there(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("cockatoo_ml.bulk.inputs.CSV_BLOCK_BYTES", 64)  # pyarrow parses block by block
    (tmp_path / "a.csv").write_bytes(b"text,n\n" + b"fine,1\n" * 40 + b"too,many,fields\n" + b"fine,1\n" * 5)
    problems: list[FileProblem] = []
    batches = list(read_batches(InputFile(str(tmp_path / "a.csv"), "csv"), Columns(), 8, problems))
    texts = [t for b in batches for t in b.rows.texts]
    assert 8 <= len(texts) <= 40 and set(texts) == {"fine"}
    assert problems[0].from_row == len(texts) and "rows from" in problems[0].describe()


def test_estimates_for_the_progress_bar(tmp_path: Path) -> None:
    pq.write_table(pa.table({"text": ["a"] * 12}), tmp_path / "a.parquet")
    (tmp_path / "b.jsonl").write_text('{"text": "same length"}\n' * 40)
    assert estimate_rows(InputFile(str(tmp_path / "a.parquet"), "parquet")) == 12
    assert estimate_rows(InputFile(str(tmp_path / "b.jsonl"), "jsonl")) == 40
