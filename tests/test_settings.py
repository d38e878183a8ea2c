"""The settings layer (cockatoo_ml/settings.py) and the declarations in cockatoo_ml/registry/: generated reference
files, one declaration per setting, no environment reads elsewhere, precedence and error messages."""

from __future__ import annotations

import ast
import dataclasses
import importlib
import os
import pkgutil
from pathlib import Path

import pytest

import cockatoo_ml.registry
from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.paths import MODEL_DIR
from cockatoo_ml.registry.serving import ServingSettings
from cockatoo_ml.registry.stages import STAGES
from cockatoo_ml.registry.training import EPOCHS, TrainSettings
from cockatoo_ml.settings import (
    SPEC_KEY,
    argument_parser,
    env_example,
    fields_of,
    from_env,
    load_env_file,
    markdown,
    parse_args,
)

REPO = Path(__file__).resolve().parents[1]
ENV_VARS = sorted({spec.env for stage in STAGES for cls in stage.classes for _, spec in fields_of(cls) if spec.env})


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No declared variable set, so the registry defaults show through."""
    for name in ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


# --- (a) the generated reference files are current ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "render", "option"),
    [(".env.example", env_example, "--env-example"), ("docs/configuration.md", markdown, "--markdown")],
)
def test_generated_files_match_the_declarations(path: str, render, option: str) -> None:  # type: ignore[no-untyped-def]
    committed = (REPO / path).read_text(encoding="utf-8")
    assert committed == render(STAGES), f"{path} is stale: run `python -m cockatoo_ml.registry {option} > {path}`"


def test_env_example_shows_every_variable_with_its_default_and_secrets_empty() -> None:
    lines = env_example(STAGES).splitlines()
    shown = dict(line[2:].split("=", 1) for line in lines if line.startswith("# ") and "=" in line.split()[1])
    assert sorted(shown) == ENV_VARS
    assert shown["COCKATOO_MAX_BATCH_TEXTS"] == "256" and shown["COCKATOO_LABELS"] == "scam,violence,nsfw,harassment,unsafe"
    assert shown["COCKATOO_API_KEY"] == shown["METRICS_API_KEY"] == shown["HF_TOKEN"] == ""
    assert shown["COCKATOO_MODEL_DIR"] == str(MODEL_DIR) and shown["COCKATOO_GRACEFUL_TIMEOUT"] == "30"


def test_markdown_has_a_row_per_setting_with_flag_and_variable() -> None:
    text = markdown(STAGES)
    assert "| `COCKATOO_EPOCHS` | `--epochs` | float | `3.0` |" in text
    assert "| `COCKATOO_MAX_QUEUE` |  | int | `1024` |" in text  # the server has no flags
    assert "| `COCKATOO_API_KEY` |  | str | (secret) |" in text


# --- (b) every setting is declared once ----------------------------------------------------------------------------


def all_settings_classes() -> set[type]:
    """Every dataclass in cockatoo_ml/registry/ with a field declared by setting()."""
    found: set[type] = set()
    for module in pkgutil.iter_modules(cockatoo_ml.registry.__path__):
        loaded = importlib.import_module(f"cockatoo_ml.registry.{module.name}")
        for value in vars(loaded).values():
            if dataclasses.is_dataclass(value) and isinstance(value, type) and any(
                SPEC_KEY in f.metadata for f in dataclasses.fields(value)
            ):
                found.add(value)
    return found


def test_every_settings_class_is_in_the_reference() -> None:
    listed = {cls for stage in STAGES for cls in stage.classes}
    subclassed = {base for cls in listed for base in cls.__mro__[1:]}
    assert all_settings_classes() - listed - subclassed == set()


def test_every_variable_has_one_declaration_and_no_declaration_is_copied() -> None:
    declarations: dict[str, set[int]] = {}
    helps: dict[str, set[int]] = {}
    for cls in all_settings_classes():
        for _, spec in fields_of(cls):  # raises for a field not declared with setting()
            if spec.env:
                declarations.setdefault(spec.env, set()).add(id(spec))
            helps.setdefault(spec.help, set()).add(id(spec))
    assert {env: len(ids) for env, ids in declarations.items() if len(ids) > 1} == {}
    assert [text for text, ids in helps.items() if len(ids) > 1] == []  # a copy-pasted setting, not a shared one
    shared = {id(spec) for _, spec in fields_of(ServingSettings) if spec.env == "COCKATOO_MODEL_DIR"}
    assert shared == {id(spec) for _, spec in fields_of(TrainSettings) if spec.env == "COCKATOO_MODEL_DIR"}


def test_every_flag_is_declared_once_per_script() -> None:
    for stage in STAGES:
        for cls in stage.classes:
            parser = argument_parser(cls)  # argparse refuses a flag declared twice
            flags = [option for action in parser._actions for option in action.option_strings if option != "-h"]
            assert len(flags) == len(set(flags)), cls


def test_a_positional_setting_takes_its_values_without_a_flag(clean_env: pytest.MonkeyPatch) -> None:
    from cockatoo_ml.registry.bulk import ScoreSettings

    settings = parse_args(ScoreSettings, ["a.parquet", "--model", "m", "b/*.jsonl", "--output", "o"])
    assert settings.inputs == ["a.parquet", "b/*.jsonl"] and settings.model == Path("m")
    assert "INPUTS" in argument_parser(ScoreSettings).format_help()
    with pytest.raises(ConfigError, match="INPUTS"):
        parse_args(ScoreSettings, ["--model", "m", "--output", "o"])


# --- (c) nothing else reads the environment ------------------------------------------------------------------------

FORBIDDEN = {"environ", "getenv", "putenv", "unsetenv", "load_dotenv", "dotenv_values", "find_dotenv"}


def environment_reads(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        name = None
        if isinstance(node, ast.Attribute) and node.attr in FORBIDDEN:
            name = node.attr
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN:
            name = node.id
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in {"os", "dotenv"}:
            name = next((a.name for a in node.names if a.name in FORBIDDEN), None)
        elif isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            (a.name if isinstance(node, ast.Import) else node.module or "").startswith("dotenv") for a in node.names
        ):
            name = "dotenv"
        if name:
            found.append(f"{path}:{node.lineno}: {name}")
    return found


def test_only_the_settings_layer_touches_the_environment() -> None:
    files = [*REPO.glob("*.py"), *(REPO / "cockatoo_ml").rglob("*.py")]
    assert len(files) > 40
    reads = [hit for path in files if path != REPO / "cockatoo_ml" / "settings.py" for hit in environment_reads(path)]
    assert reads == []


def test_the_scan_sees_each_way_of_reading_the_environment(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import os\nimport dotenv\nfrom os import getenv\nfrom dotenv import load_dotenv\n"
                      "os.environ.get('X')\nos.putenv('X', '1')\n")
    hits = [hit.rsplit(": ", 1)[1] for hit in environment_reads(sample)]
    assert sorted(hits) == ["dotenv", "environ", "getenv", "load_dotenv", "putenv"]


# --- (d) precedence: default < environment < recipe < flag ----------------------------------------------------------


def test_precedence_on_one_setting(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    recipe = tmp_path / "r.toml"
    recipe.write_text("epochs = 8\n")
    assert parse_args(TrainSettings, []).epochs == EPOCHS
    clean_env.setenv("COCKATOO_EPOCHS", "5")
    assert parse_args(TrainSettings, []).epochs == 5
    assert parse_args(TrainSettings, [str(recipe)]).epochs == 8  # named for this run: beats the environment
    assert parse_args(TrainSettings, ["--recipe", str(recipe)]).epochs == 8
    settings = parse_args(TrainSettings, [str(recipe), "--epochs", "2"])
    assert settings.epochs == 2 and settings.recipe == recipe  # recorded in training_settings.json
    clean_env.setenv("COCKATOO_EPOCHS", "")  # empty means unset
    assert parse_args(TrainSettings, []).epochs == EPOCHS


def test_the_demo_recipe_is_the_quickstarts(clean_env: pytest.MonkeyPatch) -> None:
    settings = parse_args(TrainSettings, [str(REPO / "recipes" / "demo.toml")])
    assert (settings.base_model, settings.epochs, settings.lr, settings.max_length) == ("minilm", 8, 1e-4, 64)
    assert "recipes/demo.toml" in (REPO / "quickstart.sh").read_text()


def test_the_public_corpus_recipe_is_the_measured_one(clean_env: pytest.MonkeyPatch) -> None:
    # docs/benchmarks.md's issue-9 table was measured with these values; the levers are the registry defaults.
    settings = parse_args(TrainSettings, [str(REPO / "recipes" / "public-minilm.toml")])
    recipe = (settings.base_model, settings.epochs, settings.batch_size, settings.lr, settings.max_length)
    assert (*recipe, settings.dropout, settings.freeze_layers) == ("minilm", 1.5, 32, 5e-5, 128, 0.0, 0)
    assert (settings.pooling, settings.linear_probe, settings.loss_reduction) == ("mean", True, "label")


def test_env_file_never_overrides_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("COCKATOO_EPOCHS=7\nCOCKATOO_BATCH_SIZE=4\n")
    clean_env.setenv("COCKATOO_EPOCHS", "5")
    try:
        load_env_file(tmp_path / ".env")
        settings = parse_args(TrainSettings, [])
        assert (settings.epochs, settings.batch_size) == (5, 4)
    finally:
        os.environ.pop("COCKATOO_BATCH_SIZE", None)


def test_values_are_converted_to_the_declared_types(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COCKATOO_LOG_TEXTS", "on")
    clean_env.setenv("COCKATOO_MODEL_DIR", "/srv/m")
    clean_env.setenv("COCKATOO_WINDOW_OVERLAP", "0.5")
    settings = from_env(ServingSettings)
    assert settings.log_texts is True and settings.model_dir == Path("/srv/m") and settings.window_overlap == 0.5
    assert from_env(ServingSettings, micro_batch_size="8").micro_batch_size == 8


# --- (e) one clear line for each mistake ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("env", "argv", "message"),
    [
        ({"COCKATOO_BATCH_SIZE": "lots"}, [], "COCKATOO_BATCH_SIZE='lots' is not a whole number; fix it, or unset it"),
        ({"COCKATOO_BATCH_SIZE": "0"}, [], "COCKATOO_BATCH_SIZE must be at least 1, got 0"),
        ({"COCKATOO_TELEMETRY": "maybe"}, [], "COCKATOO_TELEMETRY='maybe' is not true or false"),
        ({}, ["--batch-size", "0"], "--batch-size must be at least 1, got 0; see --help"),
        ({}, ["--warmup-ratio", "1"], "--warmup-ratio must be at least 0 and below 1, got 1.0"),
        ({}, ["--batch-size", "x"], "argument --batch_size/--batch-size: invalid int value: 'x'"),
        ({}, ["--epoch", "2", "--bogus"], "unrecognized arguments: --bogus"),
        ({}, ["--precision", "fp8"], "invalid choice: 'fp8'"),
    ],
)
def test_bad_values_are_one_config_error_line(
    clean_env: pytest.MonkeyPatch, env: dict[str, str], argv: list[str], message: str
) -> None:
    for name, value in env.items():
        clean_env.setenv(name, value)
    with pytest.raises(ConfigError) as caught:
        parse_args(TrainSettings, argv)
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("recipe", "message"),
    [
        ("epoch = 8\n", "unknown key(s) ['epoch']; valid keys are the flags' names: ["),
        ("batch_size = 'big'\n", "r.toml: batch_size='big' is not a whole number; fix the recipe"),
        ("epochs = \n", "is not valid TOML"),
    ],
)
def test_bad_recipes_are_one_config_error_line(clean_env: pytest.MonkeyPatch, tmp_path: Path, recipe: str,
                                               message: str) -> None:
    (tmp_path / "r.toml").write_text(recipe)
    with pytest.raises(ConfigError) as caught:
        parse_args(TrainSettings, [str(tmp_path / "r.toml")])
    assert message in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(ConfigError, match="recipe .*missing.toml not found"):
        parse_args(TrainSettings, [str(tmp_path / "missing.toml")])


def test_a_recipe_cannot_hold_a_secret_or_an_environment_only_setting(tmp_path: Path) -> None:
    (tmp_path / "r.toml").write_text("api_key = 'k'\n")
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['api_key'\]"):
        parse_args(TrainSettings, [str(tmp_path / "r.toml")])


def test_labels_variable_is_a_comma_separated_list(clean_env: pytest.MonkeyPatch) -> None:
    from cockatoo_ml.registry.labels import DEFAULT_LABELS, active_labels

    assert active_labels() == DEFAULT_LABELS
    clean_env.setenv("COCKATOO_LABELS", " spam, hate ")
    assert active_labels() == ("spam", "hate")
    clean_env.setenv("COCKATOO_LABELS", "spam,spam")
    with pytest.raises(ConfigError, match=r"COCKATOO_LABELS='spam,spam': repeated label\(s\) \['spam'\]"):
        active_labels()


def test_the_settings_command_prints_resolved_values(clean_env: pytest.MonkeyPatch,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    from cockatoo_ml.registry.__main__ import main

    clean_env.setenv("COCKATOO_GRACEFUL_TIMEOUT", "12")
    assert main(["--get", "serving", "model_dir", "graceful_timeout_s"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(MODEL_DIR), "12"]
    with pytest.raises(ConfigError, match="stage serving has no setting 'nope'"):
        main(["--get", "serving", "nope"])
