import os
import subprocess
import sys
from pathlib import Path

import pytest

from cockatoo_ml.data import download
from cockatoo_ml.data.download import download_sources, format_summary
from cockatoo_ml.data.sources import LabelRule, SourceSpec
from cockatoo_ml.serving.launch import free_port

from .helpers import spec

REPO = Path(__file__).resolve().parents[2]


def hub_spec(name: str = "toy", patterns: tuple[str, ...] = ("data/*.csv",)) -> SourceSpec:
    return spec(name, hub_repo="someone/toy", files=patterns, labels={"scam": LabelRule(columns=("label",))})


def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "download_data.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_unreachable_hub_gives_one_line_per_source_and_exit_1(tmp_path: Path) -> None:
    result = run_cli("--raw-dir", str(tmp_path), "--only", "phishing", "toxic_chat",
                     HF_HUB_OFFLINE="0", HF_ENDPOINT=f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    errors = [line for line in result.stderr.splitlines() if "download from" in line and "failed" in line]
    assert len(errors) == 2 and "phishing" in errors[0] and "toxic_chat" in errors[1]
    assert "Connection refused" in errors[0] or "ConnectError" in errors[0]
    assert "failed" in result.stdout.split("phishing", 1)[1].splitlines()[0]  # summary table row


def test_offline_mode_fails_cleanly(tmp_path: Path) -> None:
    result = run_cli("--raw-dir", str(tmp_path), "--only", "tweet_eval_hate", HF_HUB_OFFLINE="1")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "tweet_eval_hate: download from cardiffnlp/tweet_eval failed" in result.stderr


def test_unknown_only_name_is_a_config_error(tmp_path: Path) -> None:
    result = run_cli("--raw-dir", str(tmp_path), "--only", "nope")
    assert result.returncode == 2 and "error: unknown source(s) ['nope']" in result.stderr


def test_hub_download_writes_a_marker_and_is_not_repeated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def fake_snapshot(repo_id, **kwargs):
        calls.append((repo_id, kwargs["allow_patterns"], kwargs["repo_type"]))
        folder = Path(kwargs["local_dir"]) / "data"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.csv").write_text("text,label\nhi,0\n")

    monkeypatch.setattr(download, "snapshot_download", fake_snapshot)
    first = download_sources([hub_spec()], tmp_path, token="t0ken")
    assert [r.status for r in first] == ["downloaded"] and first[0].files == 1
    assert calls == [("someone/toy", ["data/*.csv"], "dataset")]
    again = download_sources([hub_spec()], tmp_path)
    assert [r.status for r in again] == ["up to date"] and len(calls) == 1
    changed = download_sources([hub_spec(patterns=("data/*",))], tmp_path)  # another spec: fetched again
    assert [r.status for r in changed] == ["downloaded"] and len(calls) == 2
    assert "up to date" in format_summary(again) and "t0ken" not in format_summary(first)


def test_interrupted_download_leaves_no_marker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(repo_id, **kwargs):
        (Path(kwargs["local_dir"]) / "partial.csv").parent.mkdir(parents=True, exist_ok=True)
        (Path(kwargs["local_dir"]) / "partial.csv").write_text("te")
        raise OSError("connection reset")

    monkeypatch.setattr(download, "snapshot_download", broken)
    (result,) = download_sources([hub_spec()], tmp_path)
    assert result.failed and result.message == "connection reset"
    assert not download.is_complete(tmp_path / "toy", hub_spec())


def test_from_dir_copies_matching_files_and_is_idempotent(tmp_path: Path) -> None:
    source = tmp_path / "mirror" / "toy"
    (source / "data").mkdir(parents=True)
    (source / "data" / "a.csv").write_text("text,label\nx,1\n")
    (source / "README.md").write_text("not wanted")
    (result,) = download_sources([hub_spec()], tmp_path / "raw", from_dir=tmp_path / "mirror")
    assert result.status == "copied" and result.files == 1
    assert (tmp_path / "raw" / "toy" / "data" / "a.csv").is_file()
    assert not (tmp_path / "raw" / "toy" / "README.md").exists()
    (source / "data" / "a.csv").write_text("changed")
    (again,) = download_sources([hub_spec()], tmp_path / "raw", from_dir=tmp_path / "mirror")
    assert again.status == "up to date"
    assert (tmp_path / "raw" / "toy" / "data" / "a.csv").read_text() == "text,label\nx,1\n"
    (missing,) = download_sources([hub_spec("other")], tmp_path / "raw", from_dir=tmp_path / "mirror")
    assert missing.failed and "not found" in missing.message


def test_local_only_source_is_not_a_failure(tmp_path: Path) -> None:
    (result,) = download_sources([spec("local")], tmp_path)
    assert result.status == "local only" and not result.failed


def test_two_sources_sharing_a_folder_keep_separate_markers(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "ethos"
    mirror.mkdir(parents=True)
    (mirror / "a.csv").write_text("x")
    (mirror / "b.csv").write_text("y")
    first = spec("ethos", folder="ethos", files=("a.csv",))
    second = spec("ethos_b", folder="ethos", files=("b.csv",))
    download_sources([first, second], tmp_path / "raw", from_dir=tmp_path / "mirror")
    statuses = [r.status for r in download_sources([first, second], tmp_path / "raw", from_dir=tmp_path / "mirror")]
    assert statuses == ["up to date", "up to date"]


def test_paired_text_sources_fetch_their_label_files_too(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror" / "tweets"
    mirror.mkdir(parents=True)
    for name in ("train_text.txt", "train_labels.txt", "mapping.txt"):
        (mirror / name).write_text("x\n")
    paired = spec("tweets", fmt="paired_txt", files=("*_text.txt",))
    assert paired.download_patterns == ("*_text.txt", "*_labels.txt")
    download_sources([paired], tmp_path / "raw", from_dir=tmp_path / "mirror")
    assert sorted(p.name for p in (tmp_path / "raw" / "tweets").glob("*.txt")) == ["train_labels.txt", "train_text.txt"]
