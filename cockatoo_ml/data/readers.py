"""Readers: one function per file format, each returning a DataFrame and how many rows it could not parse.

Readers keep every column as the file has it (nested JSON objects are flattened to dotted names such as
``annotations.toxicity.majority_human``); mapping columns to labels is ``mapping.py``'s job.
"""

from __future__ import annotations

import csv
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.json as pa_json
import pyarrow.parquet as pq

from cockatoo_ml.data.sources import ReaderOptions, SourceSpec
from cockatoo_ml.errors import DataError

log = logging.getLogger(__name__)

PAIRED_TEXT_COLUMN = "text"  # the columns a paired_txt source offers to its rules
PAIRED_LABEL_COLUMN = "label"
TREE_TEXT_COLUMN = "text"  # the text column of a json source read with reader.tree_keys


@dataclass
class RawTable:
    frame: pd.DataFrame
    bad_rows: int = 0  # lines/records that could not be parsed and were skipped


def default_patterns(spec: SourceSpec) -> tuple[str, ...]:
    if spec.format == "paired_txt":
        return (f"*{spec.reader.text_suffix}",)
    return (f"*.{spec.format}",)


def find_source_files(spec: SourceSpec, source_dir: Path) -> list[Path]:
    """Files matching the spec's patterns, sorted so every run reads them in the same order."""
    found: set[Path] = set()
    for pattern in spec.files or default_patterns(spec):
        found.update(p for p in source_dir.glob(pattern) if p.is_file())
    return sorted(found)


def _count_skipped_lines(caught: list[warnings.WarningMessage]) -> int:
    # pandas' C parser reports bad lines as ParserWarnings ("Skipping line N: ..."), several per message.
    return sum(str(w.message).count("Skipping line") for w in caught)


def read_delimited(path: Path, options: ReaderOptions, default_separator: str) -> RawTable:
    kwargs: dict[str, Any] = {
        "sep": options.separator or default_separator,
        "encoding": options.encoding,
        "encoding_errors": "replace",
        "on_bad_lines": "warn",
        "keep_default_na": False,  # "NA" or "null" in a text column is text; only empty fields are missing
        "na_values": [""],
    }
    if not options.quoting:
        kwargs["quoting"] = csv.QUOTE_NONE
    if not options.header:
        kwargs["header"] = None
        kwargs["names"] = list(options.column_names)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", pd.errors.ParserWarning)
        try:
            frame = pd.read_csv(path, **kwargs)
        except pd.errors.EmptyDataError:
            return RawTable(pd.DataFrame())
        except pd.errors.ParserError as exc:
            raise DataError(f"cannot parse {path}: {exc}") from None
    return RawTable(frame, _count_skipped_lines(caught))


def read_csv(path: Path, options: ReaderOptions) -> RawTable:
    return read_delimited(path, options, ",")


def read_tsv(path: Path, options: ReaderOptions) -> RawTable:
    return read_delimited(path, options, "\t")


def _flatten(records: list[Any]) -> pd.DataFrame:
    # json_normalize turns nested objects into dotted columns and has a fast path for flat records.
    return pd.json_normalize(records) if records else pd.DataFrame()


def _tree_rows(node: Any, keys: tuple[str, ...], path: tuple[str, ...]) -> tuple[list[tuple[str, ...]], int]:
    """Walk ``{key: {key: [text, ...]}}`` down ``len(keys)`` levels: rows of (*keys, text), and how many leaves
    (or branches) did not have the expected shape."""
    if len(path) == len(keys):
        if not isinstance(node, list):
            return [], 1
        texts = [item for item in node if isinstance(item, str)]
        return [(*path, text) for text in texts], len(node) - len(texts)
    if not isinstance(node, dict):
        return [], 1
    rows: list[tuple[str, ...]] = []
    bad = 0
    for key, child in node.items():
        found, skipped = _tree_rows(child, keys, (*path, str(key)))
        rows.extend(found)
        bad += skipped
    return rows, bad


def read_json_tree(path: Path, document: Any, keys: tuple[str, ...]) -> RawTable:
    """A nested object whose keys name each row's groups (reader.tree_keys), down to lists of texts."""
    rows, bad = _tree_rows(document, keys, ())
    if bad:
        log.warning("%s: %d entr(y/ies) not shaped as %d level(s) of objects over lists of texts", path, bad, len(keys))
    return RawTable(pd.DataFrame(rows, columns=[*keys, TREE_TEXT_COLUMN]), bad)


def read_json(path: Path, options: ReaderOptions) -> RawTable:
    try:
        document = json.loads(path.read_text(encoding=options.encoding, errors="replace"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"cannot parse {path} as JSON ({exc}); if it has one object per line use format 'jsonl'"
        ) from None
    if options.tree_keys:
        return read_json_tree(path, document, options.tree_keys)
    records = document
    for key in options.record_path.split(".") if options.record_path else ():
        if not isinstance(records, dict) or key not in records:
            found = sorted(records) if isinstance(records, dict) else type(records).__name__
            raise DataError(f"{path}: record_path {options.record_path!r} not found (at {key!r}; found {found})")
        records = records[key]
    if isinstance(records, dict):
        raise DataError(
            f"{path} holds a JSON object, not a list of records; set reader.record_path to one of {sorted(records)}"
        )
    bad = sum(1 for r in records if not isinstance(r, dict))
    return RawTable(_flatten([r for r in records if isinstance(r, dict)]), bad)


def _parse_lines(text: str) -> RawTable:
    """Slow path: parse line by line, counting lines that are not a JSON object."""
    records, bad = [], 0
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            bad += 1
            continue
        if isinstance(record, dict):
            records.append(record)
        else:
            bad += 1
    return RawTable(_flatten(records), bad)


def _read_json_lines(path: Path, options: ReaderOptions, compression: str | None) -> RawTable:
    if options.encoding.lower().replace("-", "") == "utf8":
        try:  # fast path: Arrow's multi-threaded reader; nested objects flatten to dotted column names
            with pa.input_stream(str(path), compression=compression) as stream:
                table = pa_json.read_json(stream)
            while any(pa.types.is_struct(f.type) for f in table.schema):
                table = table.flatten()
            return RawTable(table.to_pandas())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            pass  # a broken line or a column with mixed types: fall back to the line-by-line parser
        except OSError as exc:  # damaged compression, unreadable file
            raise DataError(f"cannot read {path}: {exc}") from None
    try:
        with pa.input_stream(str(path), compression=compression) as stream:
            text = stream.read().decode(options.encoding, errors="replace")
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return _parse_lines(text)


def read_jsonl(path: Path, options: ReaderOptions) -> RawTable:
    return _read_json_lines(path, options, None)


def read_jsonl_gz(path: Path, options: ReaderOptions) -> RawTable:
    return _read_json_lines(path, options, "gzip")


def read_parquet(path: Path, options: ReaderOptions) -> RawTable:
    try:
        return RawTable(pq.read_table(path).to_pandas())
    except Exception as exc:  # pyarrow raises several types (ArrowInvalid, OSError) for a damaged file
        raise DataError(f"cannot read parquet file {path}: {exc}") from None


def _lines(path: Path, encoding: str) -> list[str]:
    # Split on "\n" only: str.splitlines would also split on U+2028 and friends inside a tweet.
    text = path.read_text(encoding=encoding, errors="replace").replace("\r\n", "\n")
    lines = text.split("\n")
    return lines[:-1] if lines and lines[-1] == "" else lines


def read_paired_txt(path: Path, options: ReaderOptions) -> RawTable:
    """``<split>_text.txt`` + ``<split>_labels.txt``: line i of one belongs to line i of the other."""
    label_path = path.with_name(path.name[: -len(options.text_suffix)] + options.label_suffix)
    if not label_path.is_file():
        raise DataError(f"{path} has no label file beside it (expected {label_path.name})")
    texts, labels = _lines(path, options.encoding), _lines(label_path, options.encoding)
    if len(texts) != len(labels):
        raise DataError(
            f"{path.name} has {len(texts)} lines but {label_path.name} has {len(labels)}; they must pair up"
        )
    return RawTable(pd.DataFrame({PAIRED_TEXT_COLUMN: texts, PAIRED_LABEL_COLUMN: labels}))


READERS: dict[str, Callable[[Path, ReaderOptions], RawTable]] = {
    "csv": read_csv,
    "tsv": read_tsv,
    "json": read_json,
    "jsonl": read_jsonl,
    "jsonl.gz": read_jsonl_gz,
    "parquet": read_parquet,
    "paired_txt": read_paired_txt,
}


def read_source_file(path: Path, spec: SourceSpec) -> RawTable:
    return READERS[spec.format](path, spec.reader)
