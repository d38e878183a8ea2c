"""Columns -> labels: turn a source's raw columns into one score per label (NaN = unknown).

The rules (value maps, thresholds, merges and how unknown values take part) are documented in
``cockatoo_ml/data/sources.py``. Everything here works on whole columns with numpy/pandas, never row by row.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from cockatoo_ml.data.sources import UNKNOWN, LabelRule, SourceSpec
from cockatoo_ml.errors import DataError
from cockatoo_ml.registry.labels import UMBRELLA_LABEL

log = logging.getLogger(__name__)


@dataclass
class MappedRows:
    text: pd.Series  # raw text, not cleaned yet
    labels: np.ndarray  # float32 (rows, labels): 1.0 positive, 0.0 negative, NaN unknown
    bad_values: int  # label cells that were present but unreadable (treated as unknown)
    any_of: np.ndarray  # bool (rows, labels): the row is positive for at least one of its True (unknown) labels


def require_columns(frame: pd.DataFrame, spec: SourceSpec, where: object) -> None:
    """A missing column is the user's mistake: name the source, the column wanted and the columns found."""
    for column in spec.needed_columns():
        if column not in frame.columns:
            raise DataError(
                f"source {spec.name}: column {column!r} not found in {where}; "
                f"columns found: {[str(c) for c in frame.columns]}"
            )


def _value_keys(series: pd.Series) -> pd.Series:
    """Cells as lookup keys for a value map: stripped, case-folded strings; 2.0 reads as "2"."""
    keys = series.astype("string")
    if pd.api.types.is_float_dtype(series):
        keys = keys.str.replace(r"\.0$", "", regex=True)
    return keys.str.strip().str.casefold()


def column_scores(series: pd.Series, rule: LabelRule) -> tuple[np.ndarray, int]:
    """One float score per row (NaN = unknown) and the number of present-but-unreadable cells."""
    if rule.values:
        keys = _value_keys(series)
        lookup = {str(k).strip().casefold(): (np.nan if v == UNKNOWN else float(v)) for k, v in rule.values.items()}
        present = keys.ne("").fillna(False).astype(bool)
        unmapped = present & ~keys.isin(list(lookup)).fillna(False).astype(bool)
        if unmapped.any():
            examples = sorted(set(keys[unmapped].head(1000)))[:5]
            log.warning(
                "column %r: %d value(s) not in the value map (e.g. %s) read as unknown",
                series.name,
                int(unmapped.sum()),
                examples,
            )
        scores = keys.map(lookup).astype("float64").to_numpy(dtype=np.float64, na_value=np.nan)
        return scores, int(unmapped.sum())
    if pd.api.types.is_bool_dtype(series) or pd.api.types.is_numeric_dtype(series):
        return series.astype("float64").to_numpy(dtype=np.float64, na_value=np.nan), 0
    text = series.astype("string").str.strip()
    folded = text.str.casefold()
    text = text.mask(folded.eq("true").fillna(False), "1").mask(folded.eq("false").fillna(False), "0")
    scores = pd.to_numeric(text, errors="coerce").astype("float64")
    bad = text.ne("").fillna(False).astype(bool) & scores.isna()
    return scores.to_numpy(dtype=np.float64, na_value=np.nan), int(bad.sum())


def merge_scores(scores: np.ndarray, rule: LabelRule) -> np.ndarray:
    """Merge a (rows, columns) score matrix into one 1/0/NaN label per row (see sources.py for the table)."""
    known = ~np.isnan(scores)
    strict = rule.missing == "unknown"
    with np.errstate(invalid="ignore"):
        positive = known & (scores >= rule.threshold)
        negative = known & (scores < rule.threshold)
    decided_when = known.all(axis=1) if strict else known.any(axis=1)
    if rule.merge in ("any", "max"):
        merged = np.where(positive.any(axis=1), 1.0, np.where(decided_when, 0.0, np.nan))
    elif rule.merge == "all":
        merged = np.where(negative.any(axis=1), 0.0, np.where(decided_when, 1.0, np.nan))
    else:
        with warnings.catch_warnings():  # nanmean of an all-unknown row is NaN, which is what we want
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = scores.mean(axis=1) if strict else np.nanmean(scores, axis=1)
        merged = np.where(np.isnan(mean), np.nan, (mean >= rule.threshold).astype(np.float64))
    return np.where(merged == 0, np.nan, merged) if rule.below == "unknown" else merged


def map_labels(frame: pd.DataFrame, spec: SourceSpec, labels: Sequence[str]) -> MappedRows:
    """Apply a source's label rules to its raw rows; labels without a rule come out unknown."""
    require_columns(frame, spec, "the loaded files")
    ignored = sorted(set(spec.labels) - set(labels))
    if ignored:
        log.info("source %s: rules for %s ignored (not in the active labels %s)", spec.name, ignored, list(labels))
    # Score each (column, value map) pair once, even when several labels read the same column.
    keys: dict[tuple[str, tuple], int] = {}
    score_columns: list[np.ndarray] = []
    bad_values = 0
    active = {label: rule for label, rule in spec.labels.items() if label in labels}
    for rule in [*active.values(), *(rule for rule in (spec.any_of, spec.clean) if rule)]:
        for column in rule.columns:
            key = (column, tuple(sorted(rule.values.items())))
            if key not in keys:
                keys[key] = len(score_columns)
                scores, bad = column_scores(frame[column], rule)
                score_columns.append(scores)
                bad_values += bad
    table = pd.DataFrame(dict(enumerate(score_columns)), index=frame.index)
    text = frame[spec.text_column]
    if spec.group_by:
        # One row per (comment, annotator): average each column's scores over the annotators who gave one.
        groups = frame[spec.group_by]
        table = table.groupby(groups, sort=False).mean()
        text = text.groupby(groups, sort=False).first()

    def apply(rule: LabelRule) -> np.ndarray:
        picks = [keys[(c, tuple(sorted(rule.values.items())))] for c in rule.columns]
        return merge_scores(table[picks].to_numpy(dtype=np.float64), rule)

    result: np.ndarray = np.full((len(table), len(labels)), np.nan, dtype=np.float32)
    for j, label in enumerate(labels):
        if label in active:
            result[:, j] = apply(active[label])
    if spec.clean:
        cleared = np.isin(np.asarray(labels), spec.clean.labels)
        clean = (apply(spec.clean) == 1)[:, None] & cleared[None, :] & np.isnan(result)
        result[clean] = 0.0
    derive_umbrella(result, labels)
    any_of = np.zeros(result.shape, dtype=bool)
    if spec.any_of:
        members = np.isin(np.asarray(labels), spec.any_of.labels)
        flagged = apply(spec.any_of) == 1
        # A row already known positive for a member satisfies the flag; known negatives are not candidates.
        satisfied = ((result == 1) & members).any(axis=1)
        any_of = (flagged & ~satisfied)[:, None] & members[None, :] & np.isnan(result)
    return MappedRows(text.reset_index(drop=True), result, bad_values, any_of)


def derive_umbrella(result: np.ndarray, labels: Sequence[str]) -> None:
    """The umbrella label is positive wherever another label is (sources.py, rule 7). In place."""
    if UMBRELLA_LABEL not in labels:
        return
    column = list(labels).index(UMBRELLA_LABEL)
    others = np.arange(len(labels)) != column
    result[(result[:, others] == 1).any(axis=1), column] = 1.0
