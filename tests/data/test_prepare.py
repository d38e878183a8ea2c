import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cockatoo_ml.data.contract import SPLITS, STATS_FILE, SourceCredit, load_processed, load_source_credits
from cockatoo_ml.data.prepare import (
    PrepareSettings,
    assign_splits,
    cap_rows,
    clean_texts,
    deduplicate,
    prepare,
)
from cockatoo_ml.errors import ConfigError, DataError
from cockatoo_ml.registry.data import PREPARE_SETTINGS_FILE

from .helpers import as_lists, spec

REPO = Path(__file__).resolve().parents[2]
NAN = np.nan

SOURCES_TOML = """
[[sources]]
name = "alpha"
format = "jsonl"
text_column = "text"
license = "CC-BY-NC-4.0"
citation = "Alpha, A. (2023). The alpha corpus."
[sources.labels.scam]
columns = ["scam"]
[sources.labels.harassment]
columns = ["harassment"]

[[sources]]
name = "beta"
format = "csv"
text_column = "text"
license = "MIT"
citation = "Beta, B. (2020). The beta set."
[sources.labels.violence]
columns = ["violence"]
[sources.labels.harassment]
columns = ["harassment"]
"""


def make_raw(tmp_path: Path, alpha_lines: list[str], beta_csv: str) -> Path:
    (tmp_path / "raw" / "alpha").mkdir(parents=True)
    (tmp_path / "raw" / "beta").mkdir(parents=True)
    (tmp_path / "raw" / "alpha" / "a.jsonl").write_text("\n".join(alpha_lines) + "\n")
    (tmp_path / "raw" / "beta" / "b.csv").write_text(beta_csv)
    (tmp_path / "sources.toml").write_text(SOURCES_TOML)
    return tmp_path / "sources.toml"


def settings(tmp_path: Path, **kwargs) -> PrepareSettings:
    kwargs.setdefault("sources", str(tmp_path / "sources.toml"))
    kwargs.setdefault("raw_dir", str(tmp_path / "raw"))
    kwargs.setdefault("output", str(tmp_path / "out"))
    return PrepareSettings(**kwargs)


def test_clean_texts_normalises_collapses_and_strips() -> None:
    raw = pa.array(["  Cafe\u0301\t\u00a0au\u2028lait \x0b", "x\r\n\r\ny", "   ", None])
    assert clean_texts(raw, "NFC").to_pylist() == ["Caf\u00e9 au lait", "x y", "", None]


def test_deduplicate_merges_labels_known_if_any_positive_if_any_known() -> None:
    text = pa.array(["a", "b", "a", "a"])
    labels = np.array([[1, NAN, 0], [0, 0, NAN], [0, 0, NAN], [NAN, NAN, NAN]], dtype=np.float32)
    unique, merged, source, duplicate, _ = deduplicate(text, labels, np.array([0, 0, 1, 2]))
    assert unique.to_pylist() == ["a", "b"]
    assert as_lists(merged) == [[1.0, 0.0, 0.0], [0.0, 0.0, None]]
    assert source.tolist() == [0, 0] and duplicate.tolist() == [False, False, True, True]


def test_split_is_seeded_proportional_and_puts_positives_everywhere() -> None:
    rng = np.random.default_rng(0)
    labels = (rng.random((2000, 3)) < [0.3, 0.05, 0.002]).astype(np.float32)  # label 2 has ~4 positives
    labels[rng.random((2000, 3)) < 0.2] = NAN
    labels[:3, 2] = 1.0  # at least three positives of the rare label
    source = rng.integers(0, 3, 2000)
    ratios = np.array([0.8, 0.1, 0.1])
    first = assign_splits(labels, source, ratios, seed=7)
    assert np.array_equal(first, assign_splits(labels, source, ratios, seed=7))
    assert not np.array_equal(first, assign_splits(labels, source, ratios, seed=8))
    counts = np.bincount(first, minlength=3) / 2000
    assert np.allclose(counts, ratios, atol=0.02)
    for j in range(3):
        assert all(np.sum((labels[:, j] == 1) & (first == s)) > 0 for s in range(3)), f"label {j}"


def test_prepare_end_to_end(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    alpha = [json.dumps({"text": f"alpha text {i}", "scam": i % 2, "harassment": 0}) for i in range(40)]
    alpha += ['{"text": "Shared   TEXT", "scam": 1}', "{not json", '{"text": "   ", "scam": 1}', '{"text": "nolabel"}']
    beta = "text,violence,harassment\n" + "".join(f"beta text {i},{i % 3 == 0:d},{i % 2}\n" for i in range(40))
    beta += "Shared TEXT,0,1\n"
    make_raw(tmp_path, alpha, beta)
    stats = prepare(settings(tmp_path))
    dataset, labels = load_processed(tmp_path / "out")
    assert labels == ["scam", "violence", "nsfw", "harassment", "unsafe"]
    rows = {r["text"]: r for split in dataset.values() for r in split}
    assert len(rows) == 81  # 40 + 40 + one merged duplicate; empty and label-less rows dropped
    shared = rows["Shared TEXT"]  # unsafe: positive because a label is, though neither source has an unsafe rule
    assert shared["labels"] == [1.0, 0.0, 0.0, 1.0, 1.0] and shared["label_mask"] == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert shared["source"] == "alpha"  # the first copy's source
    assert rows["beta text 3"]["label_mask"] == [0.0, 1.0, 0.0, 1.0, 1.0]
    assert rows["beta text 4"]["label_mask"] == [0.0, 1.0, 0.0, 1.0, 0.0]  # all negative: unsafe stays unknown
    texts = [set(dataset[s]["text"]) for s in ("train", "validation", "test")]
    assert not (texts[0] & texts[1] or texts[0] & texts[2] or texts[1] & texts[2])
    reports = {r["name"]: r for r in stats["sources"]}
    assert reports["alpha"]["unparseable_rows"] == 1 and reports["alpha"]["empty_text"] == 1
    assert reports["alpha"]["no_known_label"] == 1 and reports["beta"]["duplicates"] == 1
    saved = json.loads((tmp_path / "out" / STATS_FILE).read_text())
    assert saved["labels"]["train"]["scam"]["positive"] == stats["labels"]["train"]["scam"]["positive"]
    assert saved["labels"]["test"]["nsfw"] == {"positive": 0, "negative": 0, "unknown": saved["rows"]["test"]}
    assert json.loads((tmp_path / "out" / PREPARE_SETTINGS_FILE).read_text())["source_names"] == ["alpha", "beta"]
    assert "1 unparseable row(s)" in caplog.text
    prepare(settings(tmp_path))  # a second run replaces the previous output
    assert not list(tmp_path.glob(".out.*"))


def test_licence_and_citation_reach_the_metadata_and_non_commercial_sources_are_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    alpha = [json.dumps({"text": f"alpha text {i}", "scam": i % 2, "harassment": 0}) for i in range(20)]
    make_raw(tmp_path, alpha, "text,violence,harassment\n" + "".join(f"beta {i},0,{i % 2}\n" for i in range(30)))
    caplog.set_level(logging.WARNING)
    prepare(settings(tmp_path, only=["beta"]))  # permissive only: no warning
    assert load_source_credits(tmp_path / "out") == [SourceCredit("beta", "MIT", "Beta, B. (2020). The beta set.", 30)]
    assert "non-commercial" not in caplog.text
    prepare(settings(tmp_path))
    assert load_source_credits(tmp_path / "out") == [
        SourceCredit("alpha", "CC-BY-NC-4.0", "Alpha, A. (2023). The alpha corpus.", 20),
        SourceCredit("beta", "MIT", "Beta, B. (2020). The beta set.", 30),
    ]
    warnings = [r.getMessage() for r in caplog.records if "non-commercial" in r.getMessage()]
    assert len(warnings) == 1 and "alpha (CC-BY-NC-4.0)" in warnings[0] and "beta" not in warnings[0]


def test_missing_source_folder_and_files_are_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    make_raw(tmp_path, [json.dumps({"text": f"t{i}", "scam": i % 2, "harassment": 0}) for i in range(30)], "x\n")
    (tmp_path / "raw" / "beta" / "b.csv").unlink()
    caplog.set_level(logging.WARNING)
    stats = prepare(settings(tmp_path))
    assert "source beta: no files matching" in caplog.text
    assert {r["name"]: r["status"] for r in stats["sources"]}["beta"].startswith("skipped")
    (tmp_path / "raw" / "beta").rmdir()
    prepare(settings(tmp_path))
    assert f"source beta: folder {tmp_path / 'raw' / 'beta'} not found" in caplog.text


def test_missing_column_is_an_error_naming_source_column_and_columns(tmp_path: Path) -> None:
    make_raw(tmp_path, ['{"text": "a", "scam": 1, "harassment": 0}'], "text,violence,harm\nb,1,0\n")
    with pytest.raises(DataError, match=r"source beta: column 'harassment' not found in .*b\.csv; columns found: \['text', 'violence', 'harm'\]"):
        prepare(settings(tmp_path))


def test_nothing_loaded_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text(SOURCES_TOML)
    with pytest.raises(DataError, match="no rows were loaded from any of the 2 source"):
        prepare(settings(tmp_path))


def test_refuses_to_overwrite_a_folder_that_is_not_a_prepared_dataset(tmp_path: Path) -> None:
    make_raw(tmp_path, ['{"text": "a", "scam": 1}'], "text,violence,harassment\nb,1,0\n")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "precious.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not a prepared dataset"):
        prepare(settings(tmp_path))
    assert (tmp_path / "out" / "precious.txt").read_text() == "keep me"


def test_a_run_that_fails_midway_leaves_the_previous_dataset_intact(tmp_path: Path) -> None:
    alpha = [json.dumps({"text": f"alpha {i}", "scam": i % 2, "harassment": 0}) for i in range(30)]
    make_raw(tmp_path, alpha, "text,violence,harassment\n" + "".join(f"beta {i},{i % 2},0\n" for i in range(30)))
    prepare(settings(tmp_path))
    before = {str(p): p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()}
    (tmp_path / "raw" / "beta" / "b.csv").write_text("text,violence,harm\nb,1,0\n")  # fails after alpha is read
    with pytest.raises(DataError, match="column 'harassment' not found"):
        prepare(settings(tmp_path))
    assert {str(p): p.read_bytes() for p in sorted((tmp_path / "out").rglob("*")) if p.is_file()} == before
    assert not list(tmp_path.glob(".out.*"))  # its staging folder is gone too


def test_bad_ratios_are_rejected(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="must all be > 0"):
        prepare(settings(tmp_path, test_ratio=0.0))


def test_demo_toml_finds_its_folder_relative_to_the_toml(tmp_path: Path) -> None:
    (tmp_path / "sources").mkdir()
    (tmp_path / "sources" / "demo.toml").write_text((REPO / "sources" / "demo.toml").read_text())
    (tmp_path / "demo").mkdir()
    lines = [json.dumps({"text": f"demo {i}", "scam": i % 4 == 0, "violence": i % 4 == 1, "nsfw": i % 4 == 2,
                         "harassment": i % 4 == 3, "unsafe": True}) for i in range(40)]
    (tmp_path / "demo" / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    stats = prepare(PrepareSettings(sources=str(tmp_path / "sources" / "demo.toml"), raw_dir="", output=str(tmp_path / "out")))
    assert sum(stats["rows"].values()) == 40
    assert all(counts["unknown"] == 0 and counts["positive"] > 0 for split in stats["labels"].values() for counts in split.values())


def test_cli_nothing_loaded_exits_non_zero_with_one_line(tmp_path: Path) -> None:
    (tmp_path / "sources.toml").write_text(SOURCES_TOML)
    result = subprocess.run(
        [sys.executable, str(REPO / "prepare_data.py"), "--sources", str(tmp_path / "sources.toml"),
         "--raw-dir", str(tmp_path / "raw"), "--output", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert result.returncode == 2
    assert "error: no rows were loaded" in result.stderr and "Traceback" not in result.stderr


def test_bad_unicode_form_and_seed_variable_are_config_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    from cockatoo_ml.settings import parse_args

    monkeypatch.delenv("COCKATOO_SEED", raising=False)
    with pytest.raises(ConfigError, match="--unicode-form: invalid choice: 'NFX'"):
        parse_args(PrepareSettings, ["--unicode-form", "NFX"])
    monkeypatch.setenv("COCKATOO_SEED", "abc")
    with pytest.raises(ConfigError, match="COCKATOO_SEED='abc' is not a whole number"):
        parse_args(PrepareSettings, [])
    monkeypatch.setenv("COCKATOO_SEED", "99")
    assert parse_args(PrepareSettings, []).seed == 99


def test_keep_unlabelled_keeps_rows_without_any_known_label(tmp_path: Path) -> None:
    alpha = [json.dumps({"text": f"a{i}", "scam": i % 2, "harassment": i % 3 == 0}) for i in range(30)]
    make_raw(tmp_path, alpha + ['{"text": "mystery"}'], "text,violence,harassment\n" + "".join(f"b{i},{i % 2},0\n" for i in range(30)))
    stats = prepare(settings(tmp_path, keep_unlabelled=True))
    assert {r["name"]: r["no_known_label"] for r in stats["sources"]}["alpha"] == 0
    dataset, _ = load_processed(tmp_path / "out")
    (row,) = [r for split in dataset.values() for r in split if r["text"] == "mystery"]
    assert row["label_mask"] == [0.0] * 5 and row["labels"] == [0.0] * 5


def test_deduplicate_merges_any_of_flags_unless_a_copy_knows_a_member_positive() -> None:
    text = pa.array(["a", "a", "b", "b", "c"])
    labels = np.array([[NAN, NAN, NAN], [NAN, 1, NAN], [NAN, NAN, NAN], [NAN, 0, NAN], [NAN, NAN, NAN]])
    flags = np.array([[0, 1, 1], [0, 0, 0], [0, 1, 1], [0, 0, 0], [1, 0, 1]], dtype=bool)
    _, merged, _, _, any_of = deduplicate(text, labels.astype(np.float32), np.zeros(5, dtype=np.int32), flags)
    assert as_lists(merged) == [[None, 1.0, None], [None, 0.0, None], [None, None, None]]
    # a: a copy knows label 1 positive, the flag is satisfied; b: label 1 is known negative, label 2 stays.
    assert any_of.tolist() == [[False, False, False], [False, False, True], [True, False, True]]


ANY_OF_TOML = """
[sources.any_of]
columns = ["unsafe"]
labels = ["violence", "harassment"]
"""


def test_any_of_rows_are_kept_as_flags_and_leave_the_other_rows_splits_alone(tmp_path: Path) -> None:
    alpha = [json.dumps({"text": f"alpha text {i}", "scam": i % 2, "harassment": i % 3 == 0}) for i in range(60)]
    beta = "text,violence,harassment,unsafe\n" + "".join(
        f"beta text {i},{i % 4 == 0:d},{i % 2},0\n" for i in range(60)
    )
    beta += "".join(f"flagged {i},,,1\n" for i in range(30))  # no label known, only "something is unsafe"
    make_raw(tmp_path, alpha, beta)
    prepare(settings(tmp_path, output=str(tmp_path / "before")))
    (tmp_path / "sources.toml").write_text(SOURCES_TOML + ANY_OF_TOML)
    stats = prepare(settings(tmp_path, output=str(tmp_path / "after")))

    before, _ = load_processed(tmp_path / "before")
    after, _ = load_processed(tmp_path / "after")
    rows = {r["text"]: r for split in after.values() for r in split}
    assert rows["flagged 7"]["labels"] == [0.0, 1.0, 0.0, 1.0, 0.0] and rows["flagged 7"]["label_mask"] == [0.0] * 5
    assert rows["beta text 1"]["labels"] == [0.0, 0.0, 0.0, 1.0, 1.0]  # unflagged rows are as before
    assert sum(stats["labels"][split]["harassment"]["any_of"] for split in SPLITS) == 30
    assert all(stats["labels"][split]["harassment"]["any_of"] for split in SPLITS)  # spread over splits
    for split in SPLITS:
        assert set(before[split]["text"]) == {t for t in after[split]["text"] if not t.startswith("flagged")}
    assert not any(t.startswith("flagged") for split in before.values() for t in split["text"])  # dropped before


def test_cap_rows_keeps_a_seeded_subset_of_the_labelled_rows_and_every_unlabelled_one() -> None:
    labels = np.full((10, 2), NAN, dtype=np.float32)
    labels[:6, 0] = 1.0  # rows 0-5 carry a label, 6-9 none
    flags = np.zeros((10, 2), dtype=bool)
    flags[6, 1] = True  # an "at least one of" flag counts as a label
    keep = cap_rows(labels, flags, 4, seed=1)
    assert keep[7:].all() and keep[:7].sum() == 4
    assert (cap_rows(labels, flags, 4, seed=1) == keep).all()
    assert cap_rows(labels, flags, 0, seed=1).all() and cap_rows(labels, flags, 7, seed=1).all()


def test_max_rows_caps_a_source_and_reports_it(tmp_path: Path) -> None:
    alpha = [json.dumps({"text": f"a{i}", "scam": i % 2, "harassment": 0}) for i in range(30)]
    make_raw(tmp_path, alpha, "text,violence,harassment\nb,1,0\nc,0,0\n")
    toml = (tmp_path / "sources.toml").read_text().replace('name = "alpha"', 'name = "alpha"\nmax_rows = 12', 1)
    (tmp_path / "sources.toml").write_text(toml)
    stats = prepare(settings(tmp_path))
    reports = {r["name"]: r for r in stats["sources"]}
    assert (reports["alpha"]["capped"], reports["alpha"]["kept"]) == (18, 12)
    assert reports["beta"]["capped"] == 0
    with pytest.raises(ConfigError, match="max_rows must be a whole number >= 0"):
        spec("x", max_rows=-1)
