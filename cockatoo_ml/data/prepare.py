"""prepare_data.py: load sources -> map labels -> clean -> de-duplicate -> split -> save a DatasetDict.

Every step works on whole columns (pyarrow compute for text, numpy for labels), so time grows linearly with
rows; see ``benchmarks/bench_prepare.py``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from datasets import Dataset, DatasetDict, DatasetInfo
from datasets.fingerprint import generate_random_fingerprint
from datasets.table import InMemoryTable

from cockatoo_ml.cli import report_settings
from cockatoo_ml.data.contract import (
    CREDITS_KEY,
    META_FILE,
    SPLITS,
    STATS_FILE,
    SourceCredit,
    features,
    save_processed,
    warn_non_commercial,
)
from cockatoo_ml.data.mapping import map_labels, require_columns
from cockatoo_ml.data.readers import find_source_files, read_source_file
from cockatoo_ml.data.sources import SourceSpec, check_unique_names, load_source_set, select_sources
from cockatoo_ml.errors import ConfigError, DataError
from cockatoo_ml.publish import publish_dir
from cockatoo_ml.registry import data as defaults
from cockatoo_ml.registry.data import PrepareSettings
from cockatoo_ml.registry.labels import active_labels
from cockatoo_ml.registry.paths import RAW_DIR
from cockatoo_ml.settings import parse_args

log = logging.getLogger(__name__)

# Python's str.isspace() set, written for RE2: ASCII \s, \v, the C0 separators, NEL and Unicode Z* spaces.
_WHITESPACE = r"[\s\x{0B}\x{1C}-\x{1F}\x{85}\p{Z}]+"
# Any whitespace other than a single space (Zs without U+0020, spelled out), or two spaces in a row.
_NEEDS_COLLAPSE = (
    r"[\t\n\x{0B}\f\r\x{1C}-\x{1F}\x{85}\x{A0}\x{1680}\x{2000}-\x{200A}\x{202F}\x{205F}\x{3000}\p{Zl}\p{Zp}]|  "
)


@dataclass
class SourceReport:
    """What happened to one source's rows; printed as a table and saved in the stats JSON."""

    name: str
    status: str = "ok"
    files: int = 0
    rows_read: int = 0
    unparseable_rows: int = 0
    unparseable_values: int = 0
    empty_text: int = 0
    no_known_label: int = 0
    capped: int = 0  # rows with a known label left out by the source's max_rows
    duplicates: int = 0
    kept: int = 0


@dataclass
class LoadedRows:
    """All sources' rows side by side: raw text, label matrix (NaN = unknown) and the source index."""

    text: pa.Array
    labels: np.ndarray
    source: np.ndarray
    any_of: np.ndarray  # bool (rows, labels): "positive for at least one of these" (sources.py, rule 5)


def resolve_sources(settings: PrepareSettings) -> tuple[tuple[SourceSpec, ...], Path, str]:
    """The sources to prepare, the raw dir to read them from, and where the sources came from."""
    source_set = load_source_set(settings.sources)
    check_unique_names(source_set.sources, source_set.origin)
    raw_dir = Path(settings.raw_dir) if settings.raw_dir else (source_set.raw_dir or RAW_DIR)
    return select_sources(source_set.sources, settings.only), raw_dir, source_set.origin


def cap_rows(labels: np.ndarray, any_of: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """Which rows to keep so that at most ``max_rows`` carry a known label: a seeded random subset of those; rows
    without any label are kept (prepare drops and counts them later)."""
    informative = np.flatnonzero(~np.isnan(labels).all(axis=1) | any_of.any(axis=1))
    keep: np.ndarray = np.ones(len(labels), dtype=bool)
    if max_rows and len(informative) > max_rows:
        rng = np.random.default_rng(seed)
        keep[rng.choice(informative, len(informative) - max_rows, replace=False)] = False
    return keep


def load_source(
    spec: SourceSpec, raw_dir: Path, labels: Sequence[str], report: SourceReport, seed: int = defaults.SPLIT_SEED
) -> tuple[pd.Series, np.ndarray, np.ndarray] | None:
    """Read and map one source: (raw text, labels with NaN = unknown, any_of cells); a missing folder or file
    is a warning and the source is skipped. A source's ``max_rows`` keeps a seeded subset of its rows."""
    folder = spec.source_dir(raw_dir)
    if not folder.is_dir():
        report.status = f"skipped: {folder} not found"
        log.warning("source %s: folder %s not found; skipped (download it or pass --raw-dir)", spec.name, folder)
        return None
    paths = find_source_files(spec, folder)
    if not paths:
        patterns = list(spec.files) or ["(default for format)"]
        report.status = f"skipped: no files matching {patterns}"
        log.warning("source %s: no files matching %s in %s; skipped", spec.name, patterns, folder)
        return None
    frames = []
    for path in paths:
        raw = read_source_file(path, spec)
        report.unparseable_rows += raw.bad_rows
        if raw.frame.empty:
            log.warning("source %s: %s holds no rows", spec.name, path)
            continue
        require_columns(raw.frame, spec, path)
        frames.append(raw.frame[spec.needed_columns()])
        report.files += 1
    if not frames:
        report.status = "skipped: files hold no rows"
        return None
    frame = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
    report.rows_read = len(frame)
    mapped = map_labels(frame, spec, labels)
    report.unparseable_values = mapped.bad_values
    if report.unparseable_rows or report.unparseable_values:
        log.warning(
            "source %s: %d unparseable row(s) skipped, %d unreadable label value(s) read as unknown",
            spec.name,
            report.unparseable_rows,
            report.unparseable_values,
        )
    keep = cap_rows(mapped.labels, mapped.any_of, spec.max_rows, seed)
    report.capped = int(np.sum(~keep))
    return mapped.text[keep].reset_index(drop=True), mapped.labels[keep], mapped.any_of[keep]


def load_all(
    specs: Sequence[SourceSpec],
    raw_dir: Path,
    labels: Sequence[str],
    reports: list[SourceReport],
    seed: int = defaults.SPLIT_SEED,
) -> LoadedRows:
    texts: list[pa.Array] = []
    matrices: list[np.ndarray] = []
    groups: list[np.ndarray] = []
    owners: list[np.ndarray] = []
    for index, spec in enumerate(specs):
        loaded = load_source(spec, raw_dir, labels, reports[index], seed)
        if loaded is None:
            continue
        text, matrix, any_of = loaded
        array = pa.array(text.astype("string"), from_pandas=True)  # may come back chunked
        array = array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array
        texts.append(array.cast(pa.large_string()))
        matrices.append(matrix)
        groups.append(any_of)
        owners.append(np.full(len(matrix), index, dtype=np.int32))
    if not texts:
        raise DataError(
            f"no rows were loaded from any of the {len(specs)} source(s) under {raw_dir}; "
            "check the warnings above, run download_data.py, or pass --raw-dir / --sources"
        )
    return LoadedRows(pa.concat_arrays(texts), np.concatenate(matrices), np.concatenate(owners), np.concatenate(groups))


def clean_texts(text: pa.Array, unicode_form: str) -> pa.Array:
    """Unicode-normalise, collapse every whitespace run to one space, strip the ends (nulls stay null)."""
    text = pc.utf8_normalize(text, form=unicode_form)
    # Regex replacement is the slow step: run it only on the rows that need it (a cheap match finds them).
    needs = pc.fill_null(pc.match_substring_regex(text, _NEEDS_COLLAPSE), False)
    if pc.any(needs).as_py():
        collapsed = pc.replace_substring_regex(text.filter(needs), _WHITESPACE, " ")
        text = pc.replace_with_mask(text, needs, collapsed.cast(text.type))
    return pc.utf8_trim(text, characters=" ")


def count_by_source(mask: np.ndarray, source: np.ndarray, n_sources: int) -> np.ndarray:
    return np.bincount(source[mask], minlength=n_sources)


def deduplicate(
    text: pa.Array, labels: np.ndarray, source: np.ndarray, any_of: np.ndarray | None = None
) -> tuple[pa.Array, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge rows with the same cleaned text: a label is known if any copy knows it and positive if any known
    copy says so; the row keeps the first copy's source. An "at least one of" flag of any copy holds for the
    merged row, over the labels still unknown there, unless one of its labels is known positive. Returns the
    unique texts, merged labels, their sources, a mask of the rows that were folded into an earlier copy and
    the merged ``any_of`` cells."""
    encoded = text.dictionary_encode()  # codes follow first appearance, so code order = first-copy order
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    n_unique = len(encoded.dictionary)
    _, first = np.unique(codes, return_index=True)
    duplicate: np.ndarray = np.ones(len(codes), dtype=bool)
    duplicate[first] = False
    known = ~np.isnan(labels)
    merged = np.full((n_unique, labels.shape[1]), np.nan, dtype=np.float32)
    for j in range(labels.shape[1]):
        any_known = np.bincount(codes, weights=known[:, j], minlength=n_unique) > 0
        any_positive = np.bincount(codes, weights=known[:, j] & (labels[:, j] == 1), minlength=n_unique) > 0
        merged[any_known, j] = any_positive[any_known]
    merged_any_of = np.zeros(merged.shape, dtype=bool)
    if any_of is not None and any_of.any():
        for j in range(labels.shape[1]):
            merged_any_of[:, j] = np.bincount(codes, weights=any_of[:, j], minlength=n_unique) > 0
        satisfied = ((merged == 1) & merged_any_of).any(axis=1)
        merged_any_of &= np.isnan(merged) & ~satisfied[:, None]
    return encoded.dictionary, merged, source[first], duplicate, merged_any_of


def assign_splits(
    labels: np.ndarray, source: np.ndarray, ratios: np.ndarray, seed: int, names: Sequence[str] = ()
) -> np.ndarray:
    """Split index (0 train, 1 validation, 2 test) per row, stratified by source and label pattern.

    Rows with the same source and the same positive/negative/unknown pattern form a stratum; each stratum is
    shuffled and cut by the ratios with a random phase, so even tiny strata spread fairly. Texts are unique
    after de-duplication, so no text can land in two splits.
    """
    rng = np.random.default_rng(seed)
    n, n_labels = labels.shape
    state = np.where(np.isnan(labels), 2, labels).astype(np.int64)  # 0 negative, 1 positive, 2 unknown
    pattern = state @ (3 ** np.arange(n_labels, dtype=np.int64))
    strata = source.astype(np.int64) * 3**n_labels + pattern
    order = np.lexsort((rng.random(n), strata))
    sorted_strata = strata[order]
    starts = np.flatnonzero(np.r_[True, sorted_strata[1:] != sorted_strata[:-1]])
    sizes = np.diff(np.r_[starts, n])
    group: np.ndarray = np.repeat(np.arange(len(starts)), sizes)
    rank = np.arange(n) - starts[group]
    position = (rank + rng.random(len(starts))[group]) / sizes[group]
    splits = np.empty(n, dtype=np.int64)
    splits[order] = np.searchsorted(np.cumsum(ratios)[:-1], position, side="right")
    ensure_positives_everywhere(labels, splits, len(ratios), rng, names)
    return splits


def ensure_positives_everywhere(
    labels: np.ndarray, splits: np.ndarray, n_splits: int, rng: np.random.Generator, names: Sequence[str] = ()
) -> None:
    """Where a label has positives but a split got none, move one positive row there from the split with the
    most, preferring rows that are not the only positive of another label in that split. In place."""
    positive = labels == 1
    for j in range(labels.shape[1]):
        if positive[:, j].sum() < n_splits:
            if positive[:, j].any():
                name = names[j] if names else f"#{j}"
                log.warning("label %s has only %d positive(s): some splits will have none", name, positive[:, j].sum())
            continue
        for target in range(n_splits):
            counts = np.bincount(splits[positive[:, j]], minlength=n_splits)
            if counts[target]:
                continue
            donor = int(np.argmax(counts))
            candidates = np.flatnonzero(positive[:, j] & (splits == donor))
            per_label = positive[splits == donor].sum(axis=0)
            safe = candidates[~(positive[candidates] & (per_label <= 1)).any(axis=1)]
            splits[rng.choice(safe if len(safe) else candidates)] = target


def label_stats(
    labels: np.ndarray, splits: np.ndarray, label_names: Sequence[str], any_of: np.ndarray | None = None
) -> dict[str, dict[str, dict[str, int]]]:
    """Positive/negative/unknown counts per split and label; with ``any_of``, how many of the unknown cells
    belong to an "at least one of" flag."""
    flags = any_of if any_of is not None and any_of.any() else None
    stats: dict[str, dict[str, dict[str, int]]] = {}
    for index, split in enumerate(SPLITS):
        part = labels[splits == index]
        stats[split] = {
            name: {
                "positive": int(np.sum(part[:, j] == 1)),
                "negative": int(np.sum(part[:, j] == 0)),
                "unknown": int(np.sum(np.isnan(part[:, j]))),
                **({"any_of": int(np.sum(flags[splits == index][:, j]))} if flags is not None else {}),
            }
            for j, name in enumerate(label_names)
        }
    return stats


def format_label_table(stats: dict[str, dict[str, dict[str, int]]]) -> str:
    columns = ["positive", "negative", "unknown"]
    if any("any_of" in counts for per_label in stats.values() for counts in per_label.values()):
        columns.append("any_of")  # of the unknown cells, those in an "at least one of" flag
    lines = [f"{'split':<11} {'label':<12} " + " ".join(f"{c:>9}" for c in columns)]
    for split, per_label in stats.items():
        for label, counts in per_label.items():
            lines.append(f"{split:<11} {label:<12} " + " ".join(f"{counts.get(c, 0):>9}" for c in columns))
    return "\n".join(lines)


def format_source_table(reports: Sequence[SourceReport]) -> str:
    columns = (
        "files",
        "rows_read",
        "unparseable_rows",
        "unparseable_values",
        "empty_text",
        "no_known_label",
        "capped",
        "duplicates",
        "kept",
    )
    width = max(len(r.name) for r in reports)
    lines = [f"{'source':<{width}} " + " ".join(f"{c:>{len(c)}}" for c in columns) + "  status"]
    for r in reports:
        lines.append(f"{r.name:<{width}} " + " ".join(f"{getattr(r, c):>{len(c)}}" for c in columns) + f"  {r.status}")
    return "\n".join(lines)


def build_split(text: pa.Array, labels: np.ndarray, source_names: np.ndarray, any_of: np.ndarray) -> Dataset:
    n, n_labels = labels.shape
    offsets = pa.array(np.arange(0, (n + 1) * n_labels, n_labels, dtype=np.int32))
    mask = (~np.isnan(labels)).astype(np.float32)
    # The contract (contract.py): an unknown cell is 0.0, or 1.0 when it is one of the row's "at least one of".
    targets = np.where(any_of, 1.0, np.nan_to_num(labels, nan=0.0)).astype(np.float32)
    table = pa.table(
        {
            "text": text.cast(pa.string()),
            "labels": pa.ListArray.from_arrays(offsets, pa.array(targets.ravel())),
            "label_mask": pa.ListArray.from_arrays(offsets, pa.array(mask.ravel())),
            "source": pa.array(source_names, type=pa.string()),
        }
    ).cast(features().arrow_schema)
    # A random fingerprint: hashing the whole table for one costs more than building it.
    return Dataset(
        InMemoryTable(table), info=DatasetInfo(features=features()), fingerprint=generate_random_fingerprint()
    )


def check_output(output: Path) -> None:
    """Refuse to replace a folder that is not a prepared dataset: bad input loses nothing."""
    if output.exists() and (not output.is_dir() or (any(output.iterdir()) and not (output / META_FILE).is_file())):
        raise ConfigError(f"{output} exists and is not a prepared dataset; choose another --output or remove it")


def write_output(staged: Path, dataset: DatasetDict, labels: Sequence[str], meta: dict, stats: dict) -> None:
    """The prepared dataset and its stats, in the staging folder that ``publish_dir`` swaps in when all is written."""
    save_processed(dataset, staged, labels, meta)
    (staged / STATS_FILE).write_text(json.dumps(stats, indent=2) + "\n")


def prepare(settings: PrepareSettings) -> dict:
    """Run the whole stage; returns the stats that were saved as ``STATS_FILE``."""
    labels = list(active_labels())
    ratios = np.array(settings.ratios())
    specs, raw_dir, origin = resolve_sources(settings)
    output = Path(settings.output)
    check_output(output)
    resolved = {
        **asdict(settings),
        "sources": origin,
        "raw_dir": str(raw_dir),
        "labels": labels,
        "source_names": [s.name for s in specs],
        "ratios": dict(zip(SPLITS, ratios.tolist(), strict=True)),
    }
    # Written aside and swapped in whole: a failed run leaves the previous data intact.
    with publish_dir(output) as staged:
        report_settings("prepare", resolved, save_to=staged / defaults.PREPARE_SETTINGS_FILE)
        stats = prepare_into(settings, specs, raw_dir, labels, ratios, staged, resolved)
    log.info(
        "saved %s rows to %s (%s)",
        sum(stats["rows"].values()),
        output,
        ", ".join(f"{k} {v}" for k, v in stats["rows"].items()),
    )
    return stats


def prepare_into(
    settings: PrepareSettings,
    specs: Sequence[SourceSpec],
    raw_dir: Path,
    labels: list[str],
    ratios: np.ndarray,
    staged: Path,
    resolved: dict,
) -> dict:
    reports = [SourceReport(spec.name) for spec in specs]
    rows = load_all(specs, raw_dir, labels, reports, settings.seed)
    n_sources = len(specs)
    text = clean_texts(rows.text, settings.unicode_form)
    empty = pc.fill_null(pc.equal(pc.utf8_length(text), 0), True).to_numpy(zero_copy_only=False)
    unlabelled = np.isnan(rows.labels).all(axis=1) & ~rows.any_of.any(axis=1) & ~empty & (not settings.keep_unlabelled)
    for report, count in zip(reports, count_by_source(empty, rows.source, n_sources), strict=True):
        report.empty_text = int(count)
    for report, count in zip(reports, count_by_source(unlabelled, rows.source, n_sources), strict=True):
        report.no_known_label = int(count)
    keep = ~(empty | unlabelled)
    if not keep.any():
        raise DataError("every loaded row was empty or had no known label; nothing to prepare")
    text = text.filter(pa.array(keep))
    unique_text, merged, source, duplicate, any_of = deduplicate(
        text, rows.labels[keep], rows.source[keep], rows.any_of[keep]
    )
    for report, count in zip(reports, count_by_source(duplicate, rows.source[keep], n_sources), strict=True):
        report.duplicates = int(count)
    for report, count in zip(reports, np.bincount(source, minlength=n_sources), strict=True):
        report.kept = int(count)

    # Rows known only through an "at least one of" flag are split in a pass of their own, so that declaring a
    # flag leaves every other row in the split it had (test figures stay comparable across the change).
    flag_only = np.isnan(merged).all(axis=1) & any_of.any(axis=1)
    splits = np.empty(len(merged), dtype=np.int64)
    splits[~flag_only] = assign_splits(merged[~flag_only], source[~flag_only], ratios, settings.seed, labels)
    if flag_only.any():
        splits[flag_only] = assign_splits(merged[flag_only], source[flag_only], ratios, settings.seed + 1)
    names = np.array([spec.name for spec in specs], dtype=object)
    dataset = DatasetDict(
        {
            split: build_split(
                unique_text.filter(pa.array(splits == index)),
                merged[splits == index],
                names[source[splits == index]],
                any_of[splits == index],
            )
            for index, split in enumerate(SPLITS)
        }
    )
    stats: dict[str, Any] = {
        "labels": label_stats(merged, splits, labels, any_of),
        "rows": {split: int(np.sum(splits == index)) for index, split in enumerate(SPLITS)},
        "sources": [asdict(r) for r in reports],
    }
    print(format_source_table(reports))
    print()
    print(format_label_table(stats["labels"]))
    credits = [
        SourceCredit(spec.name, spec.license, spec.citation, report.kept)
        for spec, report in zip(specs, reports, strict=True)
        if report.kept
    ]
    warn_non_commercial(credits, "the prepared data")
    meta = {"sources": resolved["source_names"], "seed": settings.seed, CREDITS_KEY: [asdict(c) for c in credits]}
    write_output(staged, dataset, labels, meta, stats)
    return stats


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(PrepareSettings, argv, description="Prepare the moderation datasets.")
    prepare(settings)
    return 0
