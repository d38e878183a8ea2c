"""Declarative dataset sources: what a source's files look like and how its columns become our labels.

A source is a :class:`SourceSpec`, read from a TOML file by :func:`load_sources_toml`: the Hub sources in
``sources/hub.toml`` (the default), or any file passed with ``--sources FILE`` (see README, "Adding a
dataset"), so adding a dataset needs no code.

How a label is computed from a source row (``LabelRule``)
----------------------------------------------------------
1. Each listed column gives a *score* per row. With ``values`` (a value map for string labels) the stripped,
   case-folded cell is looked up in the map; a map entry may be a number or ``"unknown"``. Without a map the
   cell is read as a number (``true``/``false`` count as 1/0). A missing cell (empty CSV field, JSON key
   absent, null) is *unknown*, never 0. A cell that is present but unreadable (not a number, not in the map)
   is unknown too and is counted as an unparseable value of that source.
2. A score is positive when ``score >= threshold``. A known score below it is negative, or unknown with
   ``below = "unknown"`` (a column that can say "yes" but whose "no" says nothing, e.g. a majority vote whose
   minority may still be abusive).
3. Several columns merge into one label. With ``missing = "unknown"`` (the default, strict three-valued
   logic) an unknown column makes the label unknown unless the known columns already decide it:

   ========  ==========================================  ==========================================
   merge     positive (1)                                negative (0)
   ========  ==========================================  ==========================================
   ``any``   some known column is positive               every column known and negative
   ``max``   the largest known score is positive         every column known and the max is negative
             (for a 0/1 output ``max`` equals ``any``)
   ``all``   every column known and positive             some known column is negative
   ``mean``  every column known and their mean positive  every column known and their mean negative
   ========  ==========================================  ==========================================

   Otherwise the label is unknown. With ``missing = "ignore"`` unknown columns are left out and the merge
   runs over the known ones; the label is unknown only when no column is known.
4. A label that is unknown gets ``label_mask`` 0 and ``labels`` 0.0. Labels the source does not annotate at
   all (``unannotated``, or simply no rule) are unknown on every row.
5. ``any_of`` (optional, one per source) is for a flag that says "something here is unsafe" without naming the
   label (ToxicChat's ``toxicity``): an ordinary rule over its ``columns`` plus the ``labels`` it may stand for.
   Where it is positive, the row is positive for *at least one* of those labels: the ones still unknown in that
   row get ``label_mask`` 0 and ``labels`` 1.0, and training can score them with a noisy-OR target
   (``--any-of-weight``, off by default; ``cockatoo_ml/training/loss.py``). A row where one of the labels is
   already known positive needs nothing more.
6. ``clean`` (optional, one per source) is for a flag that says "nothing here is unsafe": a source whose
   annotation covers everything a moderation system flags (ConvAbuse's "not abusive" by a majority). An
   ordinary rule over its ``columns`` plus the ``labels`` it clears: where it is positive, each of those labels
   still unknown in that row becomes negative (a label another rule found positive stays positive).
7. The umbrella label (``UMBRELLA_LABEL`` in ``cockatoo_ml/registry/labels.py``, ``unsafe``), when active, is
   positive wherever any other label of the row is positive, in every source; its own rule (a broad flag such
   as ToxicChat's ``toxicity``) and ``clean`` add positives and the only negatives. A source that declares
   neither leaves it unknown except where one of its labels is positive: a tweet that is not hate is not
   known to be safe.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.paths import HUB_SOURCES

FORMATS = ("csv", "tsv", "json", "jsonl", "jsonl.gz", "parquet", "paired_txt")
MERGES = ("any", "all", "max", "mean")
MISSING_POLICIES = ("unknown", "ignore")
BELOW_POLICIES = ("negative", "unknown")
UNKNOWN = "unknown"  # a value-map target meaning "this value says nothing about the label"


@dataclass(frozen=True)
class LabelRule:
    """How one of our labels is read from a source's column(s); see the module docstring for the rules."""

    columns: tuple[str, ...]
    merge: str = "any"
    threshold: float = 0.5
    values: Mapping[str, float | str] = field(default_factory=dict)
    missing: str = "unknown"
    below: str = "negative"  # what a known score under the threshold means (rule 2)

    def __post_init__(self) -> None:
        if isinstance(self.columns, str):  # a single column may be given as a plain string
            object.__setattr__(self, "columns", (self.columns,))
        object.__setattr__(self, "columns", tuple(self.columns))
        if not self.columns:
            raise ConfigError("a label rule needs at least one column in `columns`")
        if self.merge not in MERGES:
            raise ConfigError(f"merge {self.merge!r} is not one of {MERGES}")
        if self.missing not in MISSING_POLICIES:
            raise ConfigError(f"missing {self.missing!r} is not one of {MISSING_POLICIES}")
        if self.below not in BELOW_POLICIES:
            raise ConfigError(f"below {self.below!r} is not one of {BELOW_POLICIES}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise ConfigError(f"threshold must be a number, got {self.threshold!r}")
        for key, target in self.values.items():
            is_number = isinstance(target, int | float) and not isinstance(target, bool) and math.isfinite(target)
            if not (is_number or target == UNKNOWN):
                raise ConfigError(f"value map entry {key!r} = {target!r}: use a number or {UNKNOWN!r}")


@dataclass(frozen=True)
class FlagRule(LabelRule):
    """A flag whose meaning spans several ``labels`` (``any_of``, ``clean``); each subclass checks how many."""

    labels: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "labels", tuple(self.labels))
        self.check_labels()

    def check_labels(self) -> None:
        raise NotImplementedError


@dataclass(frozen=True)
class AnyOfRule(FlagRule):
    """A flag that means "positive for at least one of ``labels``" (rule 5 of the module docstring)."""

    def check_labels(self) -> None:
        if len(set(self.labels)) < 2:
            raise ConfigError(
                f"any_of.labels needs two or more labels, got {list(self.labels)}; "
                "a flag that names one label is an ordinary [sources.labels.NAME] rule"
            )


@dataclass(frozen=True)
class CleanRule(FlagRule):
    """A flag that means "negative for every one of ``labels``" (rule 6 of the module docstring)."""

    def check_labels(self) -> None:
        if not self.labels:
            raise ConfigError("clean.labels needs the label(s) a clean row is negative for")


@dataclass(frozen=True)
class ReaderOptions:
    """File-format details a reader needs beyond the format name."""

    separator: str | None = None  # csv/tsv: field separator (default "," or tab)
    quoting: bool = True  # csv/tsv: False treats '"' as an ordinary character (e.g. SMSSpamCollection)
    header: bool = True  # csv/tsv: first line names the columns
    column_names: tuple[str, ...] = ()  # csv/tsv without header: the names to give the columns
    record_path: str | None = None  # json: dotted key of the list of records inside the top-level object
    encoding: str = "utf-8"
    text_suffix: str = "_text.txt"  # paired_txt: a text file ...
    label_suffix: str = "_labels.txt"  # ... and the label file beside it, line by line
    tree_keys: tuple[str, ...] = ()  # json: nested objects down to lists of texts; the keys at each depth
    # become these columns and the texts the column `text` (e.g. {category: {subcategory: [question, ...]}})

    def __post_init__(self) -> None:
        object.__setattr__(self, "column_names", tuple(self.column_names))
        object.__setattr__(self, "tree_keys", tuple(self.tree_keys))
        if not self.header and not self.column_names:
            raise ConfigError("reader.header = false needs reader.column_names")


@dataclass(frozen=True)
class SourceSpec:
    """One dataset source: where its files are, how to read them, and how its columns map to our labels."""

    name: str
    format: str
    text_column: str
    labels: Mapping[str, LabelRule]
    files: tuple[str, ...] = ()  # glob patterns inside the source folder; empty = every file of `format`
    folder: str | None = None  # folder under the raw dir (default: `name`); absolute paths are kept
    hub_repo: str | None = None  # Hugging Face dataset repo id, for download_data.py
    hub_config: str | None = None  # the Hub config/subset these files belong to (documentation + marker)
    hub_revision: str | None = None  # pin a Hub revision (branch, tag or commit)
    allow_patterns: tuple[str, ...] = ()  # which Hub files to fetch (default: `files`)
    reader: ReaderOptions = field(default_factory=ReaderOptions)
    unannotated: tuple[str, ...] = ()  # our labels this source says nothing about (mask 0)
    group_by: str | None = None  # rows sharing this column are one text (e.g. one row per annotator):
    # their label columns are averaged before the rules apply
    any_of: AnyOfRule | None = None  # a flag for "at least one of these labels" (rule 5 above)
    clean: CleanRule | None = None  # a flag for "negative for all of these labels" (rule 6 above)
    max_rows: int = 0  # keep at most this many rows with a known label (a seeded random subset); 0 = all
    license: str = ""
    citation: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ConfigError(f"source name {self.name!r} must be a plain folder-safe name")
        if self.format not in FORMATS:
            raise ConfigError(f"source {self.name}: format {self.format!r} is not one of {FORMATS}")
        if isinstance(self.max_rows, bool) or not isinstance(self.max_rows, int) or self.max_rows < 0:
            raise ConfigError(f"source {self.name}: max_rows must be a whole number >= 0 (0 = no cap)")
        for attr in ("files", "allow_patterns", "unannotated"):
            object.__setattr__(self, attr, tuple(getattr(self, attr)))
        both = sorted(set(self.labels) & set(self.unannotated))
        if both:
            raise ConfigError(f"source {self.name}: labels {both} have a rule and are also listed as unannotated")
        silent = sorted(set(self.any_of.labels) & set(self.unannotated)) if self.any_of else []
        if silent:
            raise ConfigError(f"source {self.name}: any_of names {silent}, which are listed as unannotated")
        cleared = sorted(set(self.clean.labels) & set(self.unannotated)) if self.clean else []
        if cleared:
            raise ConfigError(f"source {self.name}: clean names {cleared}, which are listed as unannotated")

    @property
    def folder_name(self) -> str:
        return self.folder or self.name

    def source_dir(self, raw_dir: Path) -> Path:
        return Path(raw_dir) / self.folder_name  # an absolute `folder` wins over raw_dir

    @property
    def download_patterns(self) -> tuple[str, ...]:
        """Files to fetch: ``allow_patterns``, else ``files`` (for paired_txt with their label files)."""
        if self.allow_patterns or self.format != "paired_txt":
            return self.allow_patterns or self.files
        reader = self.reader
        paired = (
            p[: -len(reader.text_suffix)] + reader.label_suffix for p in self.files if p.endswith(reader.text_suffix)
        )
        return self.files + tuple(paired)

    def rules(self) -> list[LabelRule]:
        """Every rule that reads columns: the label rules, then ``any_of`` and ``clean``."""
        return [*self.labels.values(), *(rule for rule in (self.any_of, self.clean) if rule)]

    def needed_columns(self) -> list[str]:
        """Every column this spec reads, in a stable order (text first)."""
        wanted = [self.text_column, *(c for rule in self.rules() for c in rule.columns)]
        if self.group_by:
            wanted.append(self.group_by)
        return list(dict.fromkeys(wanted))


@dataclass(frozen=True)
class SourceSet:
    """Sources read from one TOML file, with the raw dir that file suggests."""

    sources: tuple[SourceSpec, ...]
    origin: str  # the file they came from
    raw_dir: Path | None = None  # from the TOML's top-level `raw_dir`, resolved against the TOML's folder


def _build(cls: type, table: Mapping[str, Any], where: str) -> Any:
    """Create dataclass ``cls`` from a TOML table, rejecting keys it does not have (typos fail loudly)."""
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; valid keys are {sorted(known)}")
    try:
        return cls(**table)
    except (TypeError, ConfigError) as exc:  # TypeError: a required key is missing
        raise ConfigError(f"{where}: {exc}") from None


def spec_from_table(table: Mapping[str, Any], where: str) -> SourceSpec:
    """Build a SourceSpec from one ``[[sources]]`` TOML table; errors name ``where`` (the file)."""
    table = dict(table)
    inner = f"{where}: source {table.get('name', '?')}"
    table["labels"] = {
        label: _build(LabelRule, rule, f"{inner}, labels.{label}") for label, rule in table.get("labels", {}).items()
    }
    table["reader"] = _build(ReaderOptions, table.get("reader", {}), f"{inner}, reader")
    if "any_of" in table:
        table["any_of"] = _build(AnyOfRule, table["any_of"], f"{inner}, any_of")
    if "clean" in table:
        table["clean"] = _build(CleanRule, table["clean"], f"{inner}, clean")
    return _build(SourceSpec, table, where)


def load_sources_toml(path: Path) -> SourceSet:
    """Parse a sources TOML file: optional top-level ``raw_dir`` and a list of ``[[sources]]`` tables."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"sources file {path} not found; pass an existing TOML file to --sources")
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"sources file {path} is not valid TOML: {exc}") from None
    extra = sorted(set(document) - {"raw_dir", "sources"})
    if extra:
        raise ConfigError(f"{path}: unknown top-level key(s) {extra}; valid keys are ['raw_dir', 'sources']")
    tables = document.get("sources", [])
    if not tables:
        raise ConfigError(f"{path} defines no [[sources]] tables")
    specs = tuple(spec_from_table(table, str(path)) for table in tables)
    check_unique_names(specs, str(path))
    raw_dir = document.get("raw_dir")
    resolved = (path.parent / raw_dir).resolve() if raw_dir else None
    return SourceSet(specs, str(path), resolved)


def load_source_set(sources_file: str | Path | None) -> SourceSet:
    """The sources of a TOML file, or the Hub sources (``sources/hub.toml``) when no file is given."""
    return load_sources_toml(Path(sources_file) if sources_file else HUB_SOURCES)


def check_unique_names(specs: Sequence[SourceSpec], where: str) -> None:
    names = [spec.name for spec in specs]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ConfigError(f"{where}: source name(s) {repeated} are used more than once")


def select_sources(specs: Sequence[SourceSpec], only: Sequence[str]) -> tuple[SourceSpec, ...]:
    """The specs named in ``only`` (all when empty); an unknown name is an error listing the known ones."""
    if not only:
        return tuple(specs)
    by_name = {spec.name: spec for spec in specs}
    unknown = [name for name in only if name not in by_name]
    if unknown:
        raise ConfigError(f"unknown source(s) {unknown}; known sources: {sorted(by_name)}")
    return tuple(by_name[name] for name in dict.fromkeys(only))
