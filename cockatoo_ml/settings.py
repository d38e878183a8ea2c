"""The settings layer: how a setting is declared, where its value comes from, and the generated reference.

Every setting is a field of a settings dataclass in ``cockatoo_ml/registry/`` declared with ``setting()``: name,
type, default, environment variable, command-line flag, help and bounds in one place (like TEI's
``#[clap(long, env, default_value)]``). A value comes from, each overriding the one before:

1. the registry default;
2. the environment (``.env`` included, which never overrides the real environment);
3. a recipe TOML file named on the command line (``train_text.py recipes/demo.toml``);
4. a command-line flag (``transformers.HfArgumentParser`` builds the flags from the same dataclass).

A recipe beats the environment because it is named on the command line for this one run, as a flag is: a
variable left in ``.env`` must not silently change ``quickstart.sh``'s demo recipe. Strings from the environment
and values from a recipe are converted and checked against the field's type with pydantic; a bad value is a
``ConfigError`` naming the variable, key or flag and the fix. This is the only module that reads or writes
``os.environ``. ``python -m cockatoo_ml.registry --markdown`` / ``--env-example`` write docs/configuration.md
and .env.example from the declarations.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import functools
import os
import sys
import textwrap
import tomllib
import types
import typing
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from cockatoo_ml.errors import ConfigError

T = TypeVar("T")

SPEC_KEY = "cockatoo_setting"  # where a field's Spec lives in its dataclass metadata
RECIPE_FIELD = "recipe"  # a settings class with a field of this name accepts a recipe TOML file
_UNSET_WORDS = "fix it, or unset it (environment or .env) for the default"


@dataclasses.dataclass(frozen=True, eq=False)
class Spec:
    """One setting's declaration. ``field()`` puts it into a settings dataclass; a setting two stages share (the
    model directory) is one Spec whose ``field()`` both classes call, so it is declared once."""

    help: str
    default: Any = dataclasses.MISSING
    default_factory: Callable[[], Any] | None = None
    env: str | None = None  # environment variable, or None for a flag only
    flag: bool = True  # False: environment only (secrets, server settings)
    secret: bool = False  # never printed, never in a recipe, shown empty in .env.example
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None
    convert: Callable[[str], Any] | None = None  # a string from the environment/recipe -> the field's value
    argparse: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # extra add_argument keywords
    positional: bool = False  # given without a flag (``score.py FILE...``); a list takes one or more

    def field(self) -> Any:
        metadata = {"help": self.help, SPEC_KEY: self, **self.argparse}
        if self.default_factory is not None:
            return dataclasses.field(default_factory=self.default_factory, repr=not self.secret, metadata=metadata)
        return dataclasses.field(default=self.default, repr=not self.secret, metadata=metadata)

    def default_value(self) -> Any:
        return self.default_factory() if self.default_factory is not None else self.default


def setting(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    env: str | None = None,
    flag: bool = True,
    secret: bool = False,
    default_factory: Callable[[], Any] | None = None,
    ge: float | None = None,
    gt: float | None = None,
    le: float | None = None,
    lt: float | None = None,
    convert: Callable[[str], Any] | None = None,
    positional: bool = False,
    **argparse_kwargs: Any,
) -> Any:
    """A settings-dataclass field: ``epochs: float = setting(3.0, env="COCKATOO_EPOCHS", help="...", gt=0)``."""
    return Spec(
        help, default, default_factory, env, flag, secret, ge, gt, le, lt, convert, argparse_kwargs, positional
    ).field()


def spec_of(field: dataclasses.Field[Any]) -> Spec:
    spec = field.metadata.get(SPEC_KEY)
    if spec is None:
        raise TypeError(f"field {field.name} is not declared with cockatoo_ml.settings.setting()")
    return spec


def fields_of(cls: type) -> list[tuple[dataclasses.Field[Any], Spec]]:
    return [(f, spec_of(f)) for f in dataclasses.fields(cls) if f.init]


def flag_name(field_name: str) -> str:
    return "--" + field_name.replace("_", "-")


def argument_name(field: dataclasses.Field[Any], spec: Spec) -> str:
    """How the command line names a setting: its flag, or its placeholder when it is positional."""
    return field.name.upper() if spec.positional else flag_name(field.name)


def env_name(cls: type, field_name: str) -> str:
    """The variable of a field (for messages that name it), or its flag when it has none."""
    spec = spec_of(next(f for f in dataclasses.fields(cls) if f.name == field_name))
    return spec.env or flag_name(field_name)


# --- the process environment ------------------------------------------------------------------------------------


def load_env_file(path: Path | None = None) -> None:
    """Load ``path`` or the repository's ``.env`` (found from this package's folder up) into the environment;
    variables already set win."""
    from dotenv import load_dotenv

    load_dotenv(path, override=False)


def set_default_environ(**values: str) -> None:
    """Process knobs read by libraries (OpenMP, oneDNN) at import: set them unless the environment has them."""
    for name, value in values.items():
        os.environ.setdefault(name, value)


def world_size() -> int:
    """Processes in this training run, as ``torchrun`` / ``accelerate launch`` announce them."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def _environ(name: str) -> str | None:
    raw = os.environ.get(name, "").strip()
    return raw or None  # an empty variable means "not set", as in .env.example's commented lines


# --- resolving --------------------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Value:
    value: Any
    where: str  # how a message names the place the value came from
    fix: str
    raw: Any = None


def from_env(cls: type[T], /, **overrides: Any) -> T:
    """``cls`` from its defaults, then the environment, then ``overrides`` (the server, tests, other stages)."""
    values = _layers(cls, recipe=None)
    for name, value in overrides.items():
        values[name] = _checked(cls, name, _Value(value, name, "fix the value passed in code", value))
    return _build(cls, values)


def parse_args(cls: type[T], argv: Sequence[str] | None = None, *, description: str | None = None) -> T:
    """``cls`` from defaults, environment, recipe file and flags (``--help`` shows the resolved defaults)."""
    args = list(sys.argv[1:] if argv is None else argv)
    recipe = _take_recipe(cls, args)
    values = _layers(cls, recipe)
    parser = argument_parser(cls, description)
    parser.set_defaults(**{name: v.value for name, v in values.items()})
    if any(spec.positional for _, spec in fields_of(cls)):  # ``score.py a.parquet --model m b.parquet``
        namespace = parser.parse_intermixed_args(args)
    else:
        namespace = parser.parse_args(args)
    for field, spec in fields_of(cls):
        if not spec.flag or spec.secret:
            continue
        given = getattr(namespace, field.name)
        if field.name not in values or given != values[field.name].value:  # only a flag changes a default
            where = argument_name(field, spec)
            values[field.name] = _checked(cls, field.name, _Value(given, where, "see --help", given))
    if recipe is not None:
        values[RECIPE_FIELD] = _Value(recipe, flag_name(RECIPE_FIELD), "see --help")
    return _build(cls, values)


def _layers(cls: type, recipe: Path | None) -> dict[str, _Value]:
    values: dict[str, _Value] = {}
    for field, spec in fields_of(cls):
        raw = _environ(spec.env) if spec.env else None
        if raw is not None:
            values[field.name] = _checked(cls, field.name, _Value(raw, spec.env or "", _UNSET_WORDS, raw))
    if recipe is not None:
        for name, raw in _read_recipe(cls, recipe).items():
            values[name] = _checked(cls, name, _Value(raw, f"{recipe}: {name}", "fix the recipe", raw))
    return values


def _build(cls: type[T], values: Mapping[str, _Value]) -> T:
    return cls(**{name: v.value for name, v in values.items()})


def _take_recipe(cls: type, args: list[str]) -> Path | None:
    """Remove the recipe from ``args``: a first argument ending in .toml, or ``--recipe FILE``."""
    if RECIPE_FIELD not in {f.name for f in dataclasses.fields(cls)}:
        return None
    if args and args[0].endswith(".toml") and not args[0].startswith("-"):
        return Path(args.pop(0))
    for i, arg in enumerate(args):
        if arg == flag_name(RECIPE_FIELD) and i + 1 < len(args):
            path = args[i + 1]
            del args[i : i + 2]
            return Path(path)
        if arg.startswith(flag_name(RECIPE_FIELD) + "="):
            del args[i]
            return Path(arg.split("=", 1)[1])
    return None


def read_toml(path: Path, what: str, fix: str) -> dict[str, Any]:
    """A TOML file's table; a missing or malformed file is a ConfigError naming ``what`` it should have been."""
    if not path.is_file():
        raise ConfigError(f"{what} {path} not found; {fix}")
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{what} {path} is not valid TOML: {exc}") from None


def _read_recipe(cls: type, path: Path) -> dict[str, Any]:
    table = read_toml(path, "recipe", "pass an existing TOML file (e.g. recipes/demo.toml)")
    valid = sorted(f.name for f, spec in fields_of(cls) if spec.flag and not spec.secret and f.name != RECIPE_FIELD)
    unknown = sorted(set(table) - set(valid))
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; valid keys are the flags' names: {valid}")
    return table


# --- checking one value -----------------------------------------------------------------------------------------


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


@functools.cache
def _adapter(cls: type, name: str) -> Any:
    from pydantic import Field, TypeAdapter

    field = next(f for f in dataclasses.fields(cls) if f.name == name)
    spec = spec_of(field)
    tp = _hints(cls)[name]
    bounds = {k: getattr(spec, k) for k in ("ge", "gt", "le", "lt") if getattr(spec, k) is not None}
    if bounds:
        inner = _without_none(tp)
        constrained = Annotated[inner, Field(**bounds)]  # type: ignore[valid-type]
        tp = constrained | None if inner is not tp else constrained
    return TypeAdapter(tp)


def _without_none(tp: Any) -> Any:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if len(args) == 1 and len(typing.get_args(tp)) == 2 else tp


def _checked(cls: type, name: str, given: _Value) -> _Value:
    from pydantic import ValidationError

    field = next((f for f in dataclasses.fields(cls) if f.name == name), None)
    if field is None:
        raise ConfigError(f"{given.where}: {cls.__name__} has no setting {name!r}")
    spec = spec_of(field)
    value = given.value
    if isinstance(value, str):
        try:
            value = _convert(cls, name, spec, value)
        except ValueError as exc:
            raise ConfigError(f"{given.where}={given.raw!r}: {exc}; {given.fix}") from None
    try:
        value = _adapter(cls, name).validate_python(value)
    except ValidationError as exc:
        raise ConfigError(f"{_problem(cls, name, spec, given, exc.errors()[0])}; {given.fix}") from None
    return _Value(value, given.where, given.fix, given.raw)


def _convert(cls: type, name: str, spec: Spec, raw: str) -> Any:
    if spec.convert is not None:
        return spec.convert(raw)
    if typing.get_origin(_without_none(_hints(cls)[name])) in (list, tuple):
        return [part.strip() for part in raw.split(",") if part.strip()]  # a list from one variable: a,b,c
    return raw


def _problem(cls: type, name: str, spec: Spec, given: _Value, error: Mapping[str, Any]) -> str:
    kind = error["type"]
    where, raw = given.where, given.raw
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        return f"{where} {_bounds_words(spec)}, got {raw}"
    if kind == "literal_error":
        choices = typing.get_args(_without_none(_hints(cls)[name]))
        return f"{where}={raw!r} is not one of {', '.join(map(str, choices))}"
    words = {
        "int_parsing": "a whole number",
        "int_from_float": "a whole number",
        "float_parsing": "a number",
        "bool_parsing": "true or false (1/0, yes/no, on/off)",
    }.get(kind)
    if words:
        return f"{where}={raw!r} is not {words}"
    return f"{where}={raw!r}: {error['msg']}"


def _bounds_words(spec: Spec) -> str:
    """What a setting's bounds require, as a message says it: "must be at least 1", "must not be negative"."""
    if spec.ge is not None and spec.le is not None:
        return f"must be within {_number(spec.ge)} .. {_number(spec.le)}"
    if spec.ge == 0 and spec.lt is None:
        return "must not be negative"
    if spec.gt == 0:
        return "must be positive"
    parts = [
        f"{words} {_number(bound)}"
        for words, bound in (("above", spec.gt), ("at least", spec.ge), ("at most", spec.le), ("below", spec.lt))
        if bound is not None
    ]
    return "must be " + " and ".join(parts)


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


# --- flags ------------------------------------------------------------------------------------------------------


def argument_parser(cls: type, description: str | None = None) -> argparse.ArgumentParser:
    from transformers import HfArgumentParser

    class Parser(HfArgumentParser):
        """HfArgumentParser for fields declared with ``setting()``: environment-only fields get no flag, help
        names the variable, and a mistake is a ConfigError (one line) rather than usage text and exit 2."""

        @staticmethod
        def _parse_dataclass_field(parser: argparse.ArgumentParser, field: dataclasses.Field[Any]) -> None:
            spec = spec_of(field)
            if not spec.flag or spec.secret:
                return
            if spec.positional:
                # HfArgumentParser has resolved the field's type by now.
                many = typing.get_origin(_without_none(field.type)) in (list, tuple)
                parser.add_argument(
                    field.name, nargs="+" if many else None, metavar=argument_name(field, spec), help=spec.help
                )
                return
            plain = copy.copy(field)  # the same field for HfArgumentParser, minus our declaration
            metadata = {k: v for k, v in field.metadata.items() if k != SPEC_KEY}
            if spec.env:
                metadata["help"] = f"{spec.help} [env: {spec.env}]"
            plain.metadata = types.MappingProxyType(metadata)
            HfArgumentParser._parse_dataclass_field(parser, plain)

        def error(self, message: str) -> typing.NoReturn:
            raise ConfigError(f"{message} (see {self.prog} --help)")

    return Parser(cls, description=description)


# --- generated reference: docs/configuration.md and .env.example ------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Stage:
    """One section of the reference: who reads the settings and their classes (in registry/stages.py)."""

    key: str
    title: str
    classes: tuple[type, ...]
    note: str = ""


def _stage_fields(stage: Stage) -> Iterator[tuple[dataclasses.Field[Any], Spec, type]]:
    seen: set[str] = set()
    for cls in stage.classes:
        for field, spec in fields_of(cls):
            if field.name not in seen:
                seen.add(field.name)
                yield field, spec, cls


def format_value(value: Any) -> str:
    """A value as the environment (and the docs) spell it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(format_value(v) for v in value)
    return str(value)


def type_name(tp: Any) -> str:
    if typing.get_origin(tp) is Literal:
        return " \\| ".join(str(a) for a in typing.get_args(tp))
    args = typing.get_args(tp)
    if type(None) in args and len(args) == 2:
        return f"{type_name(_without_none(tp))} (optional)"
    if typing.get_origin(tp) in (list, tuple):
        return f"list of {type_name(args[0])}"
    return getattr(tp, "__name__", str(tp))


def _shown_default(spec: Spec) -> str:
    if spec.secret:
        return "(secret)"
    if spec.default is dataclasses.MISSING and spec.default_factory is None:
        return "(required)"
    shown = format_value(spec.default_value())
    return f"`{shown}`" if shown else ""


def markdown(stages: Sequence[Stage]) -> str:
    out = [
        "# Configuration",
        "",
        "<!-- Generated from cockatoo_ml/registry/ by `python -m cockatoo_ml.registry --markdown > "
        "docs/configuration.md`; do not edit by hand. -->",
        "",
        "Every setting is declared once, in a settings class in `cockatoo_ml/registry/`. A value comes from, each "
        "overriding the one before: the registry default; the environment (the `.env` file in the repository root "
        "is loaded too, but a variable set in the real environment wins); a recipe file "
        "(`train_text.py recipes/demo.toml`: its keys are the flags' names with underscores); a command-line flag. "
        "A malformed value stops the script with one line naming the variable, key or flag. Every script prints "
        "its resolved settings; `train_text.py` and `prepare_data.py` also save them beside their output. "
        "Secrets are read from the environment or `.env` only. [`.env.example`](../.env.example) lists every "
        "variable with its default.",
        "",
    ]
    for stage in stages:
        out += [f"## {stage.title}", ""]
        if stage.note:
            out += [stage.note, ""]
        if not stage.classes:
            continue
        out += ["| environment | flag | type | default | help |", "|---|---|---|---|---|"]
        for field, spec, cls in _stage_fields(stage):
            env = f"`{spec.env}`" if spec.env else ""
            flag = f"`{argument_name(field, spec)}`" if spec.flag and not spec.secret else ""
            default = _shown_default(spec)
            text = spec.help.replace("|", "\\|").replace("<", "\\<")  # not a table cell end, not an HTML tag
            out.append(f"| {env} | {flag} | {type_name(_hints(cls)[field.name])} | {default} | {text} |")
        out.append("")
    return "\n".join(out)


def env_example(stages: Sequence[Stage]) -> str:
    out = [
        "# Cockatoo ML settings. Copy this file to .env (cp .env.example .env) and uncomment what you change.",
        "# Every variable is optional; the value shown is the default. A variable set in the real environment wins",
        "# over .env. Never commit .env: it holds secrets. Reference: docs/configuration.md.",
        "# Generated from cockatoo_ml/registry/ by `python -m cockatoo_ml.registry --env-example > .env.example`.",
    ]
    listed: set[str] = set()
    for stage in stages:
        entries = [(f, s) for f, s, _ in _stage_fields(stage) if s.env and s.env not in listed]
        if not entries:
            continue
        out += ["", f"# ---- {stage.title} " + "-" * max(3, 104 - len(stage.title))]
        for _field, spec in entries:
            assert spec.env is not None
            listed.add(spec.env)
            out += textwrap.wrap(spec.help, 108, initial_indent="# ", subsequent_indent="# ")
            value = "" if spec.secret else format_value(spec.default_value())
            out.append(f"# {spec.env}={value}")
    return "\n".join(out) + "\n"
