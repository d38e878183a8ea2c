"""The input side of bulk scoring: which files, in which format, read as fixed batches of rows.

A batch is the unit of everything after it: one scoring call, one output part, one step of resuming. Its
boundaries depend only on the file and the batch size, so a rerun cuts the same batches and can tell from the
part names which ones it already wrote. Files are opened with fsspec (local paths, ``s3://``, ``gs://``, ... with
the matching fsspec package installed); compressed text formats (``.jsonl.gz``) are decompressed on the fly.

A row whose text cannot be read (a JSON line that does not parse, bytes that are not UTF-8, a value that is not a
string, a blank text) keeps its place with the reason in ``problems`` and no text: it is reported, never dropped.
A file that cannot be read at all (no such column, not Parquet) is skipped with a warning naming it, and so is
the rest of a file that breaks part-way; ``FileProblem`` carries that to the summary.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import fsspec
import pyarrow as pa

from cockatoo_ml.errors import ConfigError, DataError
from cockatoo_ml.inference.texts import text_problem

log = logging.getLogger(__name__)

FORMATS = ("parquet", "jsonl", "csv", "text")
SUFFIXES = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".csv": "csv",
    ".txt": "text",
}
# The compressions fsspec's ``compression="infer"`` undoes for the formats read as a stream (Parquet is not).
COMPRESSED = (".gz", ".bz2", ".xz", ".lzma", ".zst")
CSV_BLOCK_BYTES = 1 << 20  # pyarrow's CSV reader parses this much at a time: memory stays bounded
PART_KEY_STEM_CHARS = 48


@dataclass(frozen=True)
class InputFile:
    """One file to score. ``url`` is how output rows name it (a local path, or the URL with its protocol);
    ``key`` starts its parts' names: the file's name, made safe, and a hash of the whole URL (two ``data.csv`` in
    different folders never share parts)."""

    url: str
    format: str

    @property
    def key(self) -> str:
        name = self.url.rstrip("/").rsplit("/", 1)[-1]
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name)[:PART_KEY_STEM_CHARS]
        return f"{stem}-{hashlib.sha1(self.url.encode()).hexdigest()[:10]}"

    def part_name(self, index: int) -> str:
        return f"{self.key}-{index:06d}.parquet"


@dataclass
class Rows:
    """Consecutive rows of one file: each row's text (None where it cannot be scored), the reason it cannot
    (None where it can) and, with ``--id-column``, its id (one Arrow array: the id keeps the column's type)."""

    texts: list[str | None]
    problems: list[str | None]
    ids: pa.Array | None = None

    def __len__(self) -> int:
        return len(self.texts)

    def take(self, start: int, stop: int) -> Rows:
        ids = self.ids.slice(start, stop - start) if self.ids is not None else None
        return Rows(self.texts[start:stop], self.problems[start:stop], ids)

    @staticmethod
    def join(parts: Sequence[Rows]) -> Rows:
        texts = [text for part in parts for text in part.texts]
        problems = [problem for part in parts for problem in part.problems]
        id_parts = [part.ids for part in parts if part.ids is not None]
        ids = pa.concat_arrays([ids.cast(id_parts[0].type) for ids in id_parts]) if id_parts else None
        return Rows(texts, problems, ids)


@dataclass
class Batch:
    """Rows ``first_row`` .. ``first_row + len(rows) - 1`` of ``file``, its batch number ``index``."""

    file: InputFile
    index: int
    first_row: int
    rows: Rows

    @property
    def part(self) -> str:
        return self.file.part_name(self.index)


@dataclass(frozen=True)
class FileProblem:
    """A file, or the rest of one from ``from_row`` on, that could not be read."""

    url: str
    from_row: int
    reason: str

    def describe(self) -> str:
        where = "skipped" if self.from_row == 0 else f"rows from {self.from_row} on skipped"
        return f"{self.url}: {where}: {self.reason}"


@dataclass(frozen=True)
class Columns:
    """Where a row's text and id are."""

    text: str = "text"
    id: str | None = None

    def wanted(self) -> list[str]:
        return [self.text] if self.id is None else [self.text, self.id]


# --- which files ----------------------------------------------------------------------------------------------


def format_of(path: str, forced: str | None = None) -> str | None:
    """The format a file is read in: ``forced`` (``--format``), else its suffix (after a compression suffix)."""
    if forced is not None:
        return forced
    name = path.lower()
    for suffix in COMPRESSED:
        name = name.removesuffix(suffix)
    return next((fmt for suffix, fmt in SUFFIXES.items() if name.endswith(suffix)), None)


def _url(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return path if _is_local(fs) else fs.unstrip_protocol(path)


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else fs.protocol
    return "file" in protocols or "local" in protocols


def expand(patterns: Iterable[str], forced_format: str | None = None) -> list[InputFile]:
    """The files ``patterns`` name, in order, each once: a file, a folder (every file in it, recursively) or a
    glob. A file matched by a folder or glob whose format cannot be told from its suffix is skipped with a
    warning; one named on its own is a ``ConfigError``, as is a pattern that matches nothing."""
    found: dict[str, InputFile] = {}
    for pattern in patterns:
        fs, path = fsspec.core.url_to_fs(pattern)
        named = not fsspec.core.has_magic(path) and not fs.isdir(path)
        if named:
            if not fs.isfile(path):
                raise DataError(f"input {pattern} does not exist")
            paths = [path]
        elif fsspec.core.has_magic(path):
            paths = [p for p in fs.glob(path) if fs.isfile(p)]
        else:
            paths = fs.find(path)
        if not paths:
            raise DataError(f"input {pattern} matches no file")
        for p in sorted(paths):
            fmt = format_of(p, forced_format)
            if fmt is None:
                if named:
                    raise ConfigError(
                        f"cannot tell the format of {pattern} from its name; name it .parquet, .jsonl, .csv or .txt, "
                        f"or pass --format ({', '.join(FORMATS)})"
                    )
                log.warning("skipping %s: not .parquet, .jsonl, .csv or .txt (pass --format to read it anyway)", p)
                continue
            url = _url(fs, p)
            found.setdefault(url, InputFile(url, fmt))
    if not found:
        raise DataError(f"no input file to score in {', '.join(patterns)}")
    return list(found.values())


def check_columns(files: Sequence[InputFile], columns: Columns) -> None:
    """Plain text files have no columns: an id column cannot come from them."""
    text_files = [f.url for f in files if f.format == "text"]
    if columns.id is not None and text_files:
        raise ConfigError(
            f"--id-column {columns.id}: {text_files[0]} is a plain text file (one text per line, no columns); leave "
            "--id-column out (rows are named by file and row) or convert it to JSON Lines"
        )


# --- reading ----------------------------------------------------------------------------------------------------


def open_input(file: InputFile) -> IO[bytes]:
    """The file's bytes; text formats decompressed on the fly."""
    compression = None if file.format == "parquet" else "infer"
    return fsspec.open(file.url, "rb", compression=compression).open()


def read_batches(
    file: InputFile, columns: Columns, batch_rows: int, problems: list[FileProblem] | None = None
) -> Iterator[Batch]:
    """``file`` in batches of ``batch_rows`` rows (the last may be shorter). A file that cannot be read, or the rest
    of it, is logged and recorded in ``problems``: what was read before it is still yielded."""
    reader = {"parquet": _parquet_rows, "jsonl": _jsonl_rows, "csv": _csv_rows, "text": _text_rows}[file.format]
    row = index = 0
    pending: list[Rows] = []
    pending_rows = 0
    try:
        with open_input(file) as stream:
            for chunk in reader(stream, columns, batch_rows):
                pending.append(chunk)
                pending_rows += len(chunk)
                while pending_rows >= batch_rows:
                    rows = Rows.join(pending)
                    yield Batch(file, index, row, rows.take(0, batch_rows))
                    row, index = row + batch_rows, index + 1
                    rest = rows.take(batch_rows, len(rows))
                    pending, pending_rows = ([rest] if len(rest) else []), len(rest)
    except (OSError, EOFError, ValueError, pa.ArrowException, DataError) as exc:  # EOFError: a truncated .gz
        problem = FileProblem(file.url, row + pending_rows, _one_line(exc))
        log.warning("%s", problem.describe())
        if problems is not None:
            problems.append(problem)
    if pending_rows:
        yield Batch(file, index, row, Rows.join(pending))


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]


def problem_of(value: object) -> str | None:
    """Why ``value`` cannot be scored (the server's words), or None."""
    problem = text_problem(value)
    return None if problem is None else problem.message


def checked(values: Iterable[Any]) -> tuple[list[str | None], list[str | None]]:
    """Each value as a text to score, or None and the reason it cannot be scored."""
    texts: list[str | None] = []
    problems: list[str | None] = []
    for value in values:
        problem = problem_of(value)
        texts.append(value if problem is None else None)
        problems.append(problem)
    return texts, problems


def _missing(columns: Columns, names: Sequence[str]) -> None:
    absent = [name for name in columns.wanted() if name not in names]
    if absent:
        flags = {columns.text: "--text-column", columns.id: "--id-column"}
        raise DataError(f"no column {absent[0]!r} ({flags[absent[0]]}); its columns are {', '.join(map(str, names))}")


def _parquet_rows(stream: IO[bytes], columns: Columns, batch_rows: int) -> Iterator[Rows]:
    import pyarrow.parquet as pq

    parquet = pq.ParquetFile(stream)
    _missing(columns, parquet.schema_arrow.names)
    for record_batch in parquet.iter_batches(batch_size=batch_rows, columns=columns.wanted()):
        texts, problems = checked(record_batch.column(columns.text).to_pylist())
        ids = record_batch.column(columns.id) if columns.id is not None else None
        yield Rows(texts, problems, ids)


def _csv_rows(stream: IO[bytes], columns: Columns, batch_rows: int) -> Iterator[Rows]:
    import pyarrow.csv as csv

    # Texts are read as bytes and decoded here: one row that is not UTF-8 must not stop the file. Ids stay strings
    # (a CSV has no types; inferring them from the first block would break on a later row).
    types = {name: pa.binary() for name in columns.wanted()}
    try:
        reader = csv.open_csv(
            stream,
            read_options=csv.ReadOptions(block_size=CSV_BLOCK_BYTES),
            convert_options=csv.ConvertOptions(
                include_columns=columns.wanted(), column_types=types, strings_can_be_null=False
            ),
        )
    except (pa.ArrowKeyError, KeyError) as exc:
        raise DataError(f"a column is missing ({_one_line(exc)}); check --text-column / --id-column") from None
    for record_batch in reader:
        decoded = [_decode(raw) for raw in record_batch.column(columns.text).to_pylist()]
        texts, problems = checked(text for text, _ in decoded)
        problems = [why or problem for problem, (_, why) in zip(problems, decoded, strict=True)]
        ids = None
        if columns.id is not None:
            ids = pa.array([_decode(raw)[0] for raw in record_batch.column(columns.id).to_pylist()], pa.string())
        yield Rows(texts, problems, ids)


def _decode(raw: bytes | None) -> tuple[str | None, str | None]:
    if raw is None:
        return None, None
    try:
        return raw.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        return None, f"not valid UTF-8 (byte 0x{raw[exc.start]:02x} at position {exc.start})"


def _lines(stream: IO[bytes]) -> Iterator[bytes]:
    """Every line (LF or CRLF), without its end; a last line without one too, but no empty line after the last
    line end."""
    for line in stream:
        yield line.removesuffix(b"\n").removesuffix(b"\r")


def _text_rows(stream: IO[bytes], columns: Columns, batch_rows: int) -> Iterator[Rows]:
    """One text per line; a blank line is a row too (its error says so), so rows are the file's lines."""
    texts: list[str | None] = []
    problems: list[str | None] = []
    for line in _lines(stream):
        text, why = _decode(line)
        problem = why or problem_of(text)
        texts.append(text if problem is None else None)
        problems.append(problem)
        if len(texts) == batch_rows:
            yield Rows(texts, problems)
            texts, problems = [], []
    if texts:
        yield Rows(texts, problems)


def _jsonl_rows(stream: IO[bytes], columns: Columns, batch_rows: int) -> Iterator[Rows]:
    """One JSON object per line; every line is a row (a line that is not an object gets an error)."""
    rows = _JsonRows(columns)
    for line in _lines(stream):
        rows.add(line)
        if len(rows.texts) == batch_rows:
            yield rows.take()
    if rows.texts:
        yield rows.take()


@dataclass
class _JsonRows:
    columns: Columns
    texts: list[str | None] = field(default_factory=list)
    problems: list[str | None] = field(default_factory=list)
    ids: list[str | None] = field(default_factory=list)

    def add(self, line: bytes) -> None:
        value: Any = None
        ident: Any = None
        try:
            record = json.loads(line)
        except ValueError as exc:  # also bytes that are not UTF-8
            problem: str | None = f"line is not valid JSON ({_one_line(exc)})"
        else:
            if not isinstance(record, dict):
                problem = f"line is not a JSON object but {_json_type(record)}"
            elif self.columns.text not in record:
                problem = f"no field {self.columns.text!r} (--text-column)"
                ident = record.get(self.columns.id) if self.columns.id else None
            else:
                value = record[self.columns.text]
                problem = problem_of(value)
                ident = record.get(self.columns.id) if self.columns.id else None
        self.texts.append(value if problem is None else None)
        self.problems.append(problem)
        # Ids are strings, JSON numbers as written: one type for every part, whatever the lines hold.
        if ident is not None and not isinstance(ident, str):
            ident = json.dumps(ident)
        # A lone surrogate (JSON "\ud800") cannot be stored as UTF-8: written escaped instead.
        self.ids.append(None if ident is None else ident.encode("utf-8", "backslashreplace").decode("utf-8"))

    def take(self) -> Rows:
        ids = pa.array(self.ids, pa.string()) if self.columns.id is not None else None
        rows = Rows(self.texts, self.problems, ids)
        self.texts, self.problems, self.ids = [], [], []
        return rows


def _json_type(value: Any) -> str:
    return {list: "an array", str: "a string", bool: "a boolean", type(None): "null"}.get(type(value), "a number")


# --- how many rows, for the progress bar's ETA ------------------------------------------------------------------

SAMPLE_BYTES = 1 << 16


def estimate_rows(file: InputFile) -> int | None:
    """About how many rows ``file`` has: a Parquet footer's count; for a text format, its size divided by the
    bytes per line of its first 64 KiB (None for a compressed one, or when it cannot be opened)."""
    try:
        if file.format == "parquet":
            import pyarrow.parquet as pq

            with open_input(file) as stream:
                return int(pq.ParquetFile(stream).metadata.num_rows)
        if file.url.lower().endswith(COMPRESSED):
            return None
        fs, path = fsspec.core.url_to_fs(file.url)
        size = int(fs.size(path))
        with fs.open(path, "rb") as stream:
            sample = stream.read(SAMPLE_BYTES)
    except (OSError, ValueError, pa.ArrowException):
        return None
    lines = sample.count(b"\n") + (not sample.endswith(b"\n") and bool(sample))
    if not lines:
        return 0
    header = 1 if file.format == "csv" else 0
    return max(0, round(size * lines / len(sample)) - header)
