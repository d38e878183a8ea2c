from pathlib import Path

import pytest

from cockatoo_ml.data.sources import (
    LabelRule,
    SourceSpec,
    load_source_set,
    load_sources_toml,
    select_sources,
)
from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.paths import DEMO_SOURCES, HUB_SOURCES, PUBLIC_CORPUS_SOURCES

from .helpers import spec

TOML = """
raw_dir = "raw"

[[sources]]
name = "sms"
format = "tsv"
files = ["SMS*"]
text_column = "text"
unannotated = ["violence"]
[sources.reader]
header = false
column_names = ["label", "text"]
quoting = false
[sources.labels.scam]
columns = "label"
values = { ham = 0, spam = "unknown", smishing = 1 }
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sources.toml"
    path.write_text(text)
    return path


def test_toml_describes_the_same_fields_as_a_registry_spec(tmp_path: Path) -> None:
    source_set = load_sources_toml(write(tmp_path, TOML))
    (sms,) = source_set.sources
    assert source_set.raw_dir == (tmp_path / "raw").resolve()  # relative to the TOML file, not the cwd
    assert sms.reader.column_names == ("label", "text") and sms.reader.quoting is False
    assert sms.labels["scam"] == LabelRule(columns=("label",), values={"ham": 0, "spam": "unknown", "smishing": 1})
    assert sms.files == ("SMS*",) and sms.unannotated == ("violence",)
    assert sms.source_dir(Path("/data")) == Path("/data/sms")


def test_unknown_key_names_the_key_the_source_and_the_valid_keys(tmp_path: Path) -> None:
    path = write(tmp_path, TOML.replace('files = ["SMS*"]', 'file = ["SMS*"]'))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['file'\].*valid keys.*'files'"):
        load_sources_toml(path)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('columns = "label"', 'columns = "label"\nmerge = "or"', r"source sms, labels.scam: merge 'or' is not one of"),
        ('spam = "unknown"', 'spam = "maybe"', r"value map entry 'spam' = 'maybe'"),
        ('format = "tsv"', 'format = "xlsx"', r"format 'xlsx' is not one of"),
        ("quoting = false", 'quoting = false\nsep = ";"', r"source sms, reader: unknown key\(s\) \['sep'\]"),
        ('unannotated = ["violence"]', 'unannotated = ["scam"]', r"labels \['scam'\] have a rule and are also listed"),
        ('text_column = "text"\n', "", r"text_column"),
    ],
)
def test_bad_specs_are_config_errors(tmp_path: Path, old: str, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sources_toml(write(tmp_path, TOML.replace(old, new)))


def test_invalid_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_sources_toml(write(tmp_path, TOML + "\nname = ["))


def test_missing_or_empty_toml_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_sources_toml(tmp_path / "nope.toml")
    with pytest.raises(ConfigError, match="defines no"):
        load_sources_toml(write(tmp_path, 'raw_dir = "x"\n'))


def test_duplicate_names_are_rejected(tmp_path: Path) -> None:
    block = TOML.split("[[sources]]")[1]
    with pytest.raises(ConfigError, match=r"\['sms'\] are used more than once"):
        load_sources_toml(write(tmp_path, TOML + "[[sources]]" + block))


def test_header_false_needs_column_names() -> None:
    from cockatoo_ml.data.sources import ReaderOptions

    with pytest.raises(ConfigError, match="column_names"):
        ReaderOptions(header=False)


def test_select_sources_keeps_order_and_rejects_unknown_names() -> None:
    specs = (spec("a"), spec("b"), spec("c"))
    assert [s.name for s in select_sources(specs, ["c", "a"])] == ["c", "a"]
    assert select_sources(specs, []) == specs
    with pytest.raises(ConfigError, match=r"unknown source\(s\) \['x'\]; known sources: \['a', 'b', 'c'\]"):
        select_sources(specs, ["x"])


def test_single_column_string_becomes_a_tuple() -> None:
    assert LabelRule(columns="label").columns == ("label",)
    with pytest.raises(ConfigError):
        LabelRule(columns=())


def test_shipped_source_files_parse_and_credit_every_source() -> None:
    public = load_sources_toml(PUBLIC_CORPUS_SOURCES)
    folders = {s.folder_name for s in public.sources}
    assert folders == {
        "tweeteval_hate", "tweeteval_offensive", "toxicchat", "jigsaw_toxic", "sms_spam_collection",
        "sms_smishing", "davidson_hate_offensive", "ethos", "openai_moderation", "edos", "convabuse", "ailuminate",
        "catqa",
    }
    demo = load_sources_toml(DEMO_SOURCES)
    assert demo.raw_dir == DEMO_SOURCES.parent.parent.resolve()
    assert demo.sources[0].source_dir(demo.raw_dir) == DEMO_SOURCES.parent.parent.resolve() / "demo"
    hub = load_source_set(None)
    assert hub.sources == load_sources_toml(HUB_SOURCES).sources
    assert all(isinstance(s, SourceSpec) and s.license and s.citation
               for s in hub.sources + public.sources + demo.sources)


ANY_OF = """
[sources.any_of]
columns = ["unsafe"]
labels = ["violence", "harassment"]
"""


def with_any_of(new: str = 'labels = ["violence", "harassment"]') -> str:
    return TOML.replace('unannotated = ["violence"]', 'unannotated = ["nsfw"]') + ANY_OF.replace(
        'labels = ["violence", "harassment"]', new
    )


def test_any_of_reads_as_a_rule_with_its_labels_and_its_columns_are_needed(tmp_path: Path) -> None:
    (sms,) = load_sources_toml(write(tmp_path, with_any_of())).sources
    assert sms.any_of is not None and sms.any_of.labels == ("violence", "harassment")
    assert sms.any_of.columns == ("unsafe",) and "unsafe" in sms.needed_columns()


@pytest.mark.parametrize(
    ("new", "message"),
    [
        ('labels = ["harassment"]', r"any_of.labels needs two or more labels.*ordinary \[sources.labels.NAME\] rule"),
        ('labels = ["violence", "harassment"]\nlabel = "x"', r"source sms, any_of: unknown key\(s\) \['label'\]"),
    ],
)
def test_bad_any_of_is_a_config_error(tmp_path: Path, new: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_sources_toml(write(tmp_path, with_any_of(new)))


def test_any_of_may_not_name_an_unannotated_label(tmp_path: Path) -> None:
    # TOML's `unannotated = ["violence"]`: the source says nothing about violence, so no flag can stand for it.
    with pytest.raises(ConfigError, match=r"any_of names \['violence'\], which are listed as unannotated"):
        load_sources_toml(write(tmp_path, TOML + ANY_OF))
