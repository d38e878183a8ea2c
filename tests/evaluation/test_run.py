"""evaluate.py end to end: baselines on a fixture, --url, --tune-thresholds round trip, bad input -> one line."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from datasets import Dataset, DatasetDict

from cockatoo_ml.artifacts import THRESHOLDS_FILE, load_thresholds
from cockatoo_ml.cli import run_main
from cockatoo_ml.data.contract import features, save_processed
from cockatoo_ml.evaluation.data import EvalRows, rows_from_split
from cockatoo_ml.evaluation.report import MODEL
from cockatoo_ml.evaluation.run import evaluate_model, evaluate_scores, main
from cockatoo_ml.metrics.thresholds import tune_thresholds
from tests.conftest import LABELS, REPO_ROOT, make_rows
from tests.evaluation.conftest import API_KEY
from cockatoo_ml.serving.launch import ServerProcess


pytestmark = pytest.mark.usefixtures("float32_server_settings")


def evaluate(*argv: object) -> int:
    return run_main(main, [str(a) for a in argv])


def test_baseline_column_beside_the_model(tiny_model_dir: Path, tiny_processed_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code = evaluate("--model-dir", tiny_model_dir, "--data", tiny_processed_dir, "--split", "validation",
                    "--baseline", "tfidf", "--output-dir", tmp_path / "out")
    assert code == 0
    table = capsys.readouterr().out
    assert "| label | source | rows | positives | model PR-AUC | tfidf PR-AUC | Δ vs tfidf |" in table
    saved = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert set(saved["metrics"]) == {MODEL, "tfidf"} and saved["data"].startswith("validation split of")
    # The untrained tiny model loses to TF-IDF on this easy fixture, and the report says so.
    assert saved["macro_pr_auc"]["tfidf"] > 0.9 > saved["macro_pr_auc"][MODEL]
    assert {x["label"] for x in saved["losses"]} >= set(LABELS)
    assert saved["thresholds"] == load_thresholds(tiny_model_dir, LABELS)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "evaluate_settings.json", "evaluation.json", "evaluation.md", "pr_curves.png", "reliability.png"]


def test_python_api_for_training(tiny_model_dir: Path, tiny_processed_dir: Path) -> None:
    report = evaluate_model(tiny_model_dir, rows_from_split(tiny_processed_dir, "test"), baselines=["tfidf"],
                            train_rows=rows_from_split(tiny_processed_dir, "train"), progress=False)
    assert report.baselines == ["tfidf"] and report.rows == 36
    markdown = report.to_markdown()
    assert report.comparison_table() in markdown and "tfidf PR-AUC" in markdown
    assert report.to_dict()["metrics"]["model"]["all"]["scam"]["rows"] == 36


def test_tune_thresholds_round_trip(tiny_model_dir: Path, tiny_processed_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    original = (model_dir / THRESHOLDS_FILE).read_text()
    tuned_file = tmp_path / "tuned" / "thresholds.json"
    assert evaluate("--model-dir", model_dir, "--data", tiny_processed_dir, "--tune-thresholds", tuned_file,
                    "--output-dir", tmp_path / "first") == 0
    tuned = json.loads(tuned_file.read_text())
    report = json.loads((tmp_path / "first" / "evaluation.json").read_text())
    rows = rows_from_split(tiny_processed_dir, "test")
    from cockatoo_ml.evaluation.scoring import LocalScorer

    assert tuned == tune_thresholds(LocalScorer(model_dir).score(rows.texts, False), rows.labels, rows.label_mask,
                                    LABELS)
    for label in LABELS:  # the tuned threshold is the report's best-F1 threshold (0.5 where no positive)
        assert tuned[label] == report["metrics"]["model"]["all"][label]["best_threshold"]
    assert (model_dir / THRESHOLDS_FILE).read_text() == original  # the model directory was not touched

    # Asked explicitly, the tuned file goes into the model directory; scoring again uses it and reaches the best F1.
    assert evaluate("--model-dir", model_dir, "--data", tiny_processed_dir, "--tune-thresholds",
                    model_dir / THRESHOLDS_FILE, "--overwrite", "--output-dir", tmp_path / "second") == 0
    assert load_thresholds(model_dir, LABELS) == tuned
    assert evaluate("--model-dir", model_dir, "--data", tiny_processed_dir, "--output-dir", tmp_path / "third") == 0
    again = json.loads((tmp_path / "third" / "evaluation.json").read_text())["metrics"]["model"]["all"]
    for label in LABELS:
        assert again[label]["threshold"] == tuned[label]
        assert again[label]["f1"] == pytest.approx(report["metrics"]["model"]["all"][label]["best_f1"])


def test_tune_thresholds_never_replaces_unasked(tiny_model_dir: Path, tiny_processed_dir: Path, tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    original = (model_dir / THRESHOLDS_FILE).read_text()
    code = evaluate("--model-dir", model_dir, "--data", tiny_processed_dir,
                    "--tune-thresholds", model_dir / THRESHOLDS_FILE, "--output-dir", tmp_path / "out")
    assert code == 2 and (model_dir / THRESHOLDS_FILE).read_text() == original
    assert "exists; pass --overwrite" in capsys.readouterr().err
    (model_dir / THRESHOLDS_FILE).unlink()
    code = evaluate("--model-dir", model_dir, "--data", tiny_processed_dir,
                    "--tune-thresholds", model_dir / THRESHOLDS_FILE, "--output-dir", tmp_path / "out")
    assert code == 2 and not (model_dir / THRESHOLDS_FILE).exists()
    assert "inside the model directory" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()  # refused before any work


@pytest.mark.slow
def test_url_scores_a_running_server(server: ServerProcess, tiny_model_dir: Path,
                                     tiny_processed_dir: Path, tmp_path: Path) -> None:
    assert evaluate("--url", server.url, "--header", f"Authorization: Bearer {API_KEY}", "--data",
                    tiny_processed_dir, "--output-dir", tmp_path / "remote") == 0
    assert evaluate("--model-dir", tiny_model_dir, "--data", tiny_processed_dir, "--output-dir", tmp_path / "local") == 0
    remote = json.loads((tmp_path / "remote" / "evaluation.json").read_text())
    local = json.loads((tmp_path / "local" / "evaluation.json").read_text())
    assert remote["model"] == tiny_model_dir.name and remote["thresholds"] == local["thresholds"]
    # The same rows per source and label. (The scores themselves are compared in test_scoring: the untrained tiny
    # model's scores differ in the 5th place, which the server's rounding to 4 places erases, so areas differ.)
    for group, per_label in local["metrics"]["model"].items():
        for label, l in per_label.items():
            r = remote["metrics"]["model"][group][label]
            assert (r["rows"], r["positives"], r["threshold"]) == (l["rows"], l["positives"], l["threshold"])


def make_empty_test_split(path: Path) -> Path:
    full = Dataset.from_list(make_rows(6), features=features())
    empty = Dataset.from_dict({name: [] for name in features()}, features=features())
    save_processed(DatasetDict({"train": full, "validation": full, "test": empty}), path, LABELS)
    return path


def other_labels_data(path: Path) -> Path:
    rows = [{**row, "labels": row["labels"][:2], "label_mask": row["label_mask"][:2]} for row in make_rows(6)]
    split = Dataset.from_list(rows, features=features())
    save_processed(DatasetDict({"train": split, "validation": split, "test": split}), path, ("scam", "spam"))
    return path


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("no weights", "has no weights"),
        ("no labels", "names no labels"),
        ("empty split", "'test' split of .* is empty"),
        ("labels differ", r"the model predicts labels \['scam', 'violence', 'nsfw', 'harassment'\] but the data"),
        ("foreign source", r"source extra names label\(s\) \['spam'\]"),
        ("bad baseline", "--baseline 'bm25' is not one of tfidf, frozen"),
    ],
)
def test_bad_input_is_one_clear_line(case: str, message: str, tiny_model_dir: Path, tiny_processed_dir: Path,
                                     tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model_dir, data = tmp_path / "model", tiny_processed_dir
    shutil.copytree(tiny_model_dir, model_dir)
    extra: list[object] = ["--data", data]
    if case == "no weights":
        for weights in model_dir.glob("*.safetensors"):
            weights.unlink()
    elif case == "no labels":
        config = json.loads((model_dir / "config.json").read_text())
        config.pop("id2label"), config.pop("label2id")
        (model_dir / "config.json").write_text(json.dumps(config))
    elif case == "empty split":
        extra = ["--data", make_empty_test_split(tmp_path / "empty")]
    elif case == "labels differ":
        extra = ["--data", other_labels_data(tmp_path / "other")]
    elif case == "foreign source":
        (tmp_path / "raw" / "extra").mkdir(parents=True)
        (tmp_path / "raw" / "extra" / "a.csv").write_text("text,spam\nhello,1\n")
        (tmp_path / "s.toml").write_text('[[sources]]\nname = "extra"\nformat = "csv"\ntext_column = "text"\n'
                                         '[sources.labels.spam]\ncolumns = ["spam"]\n')
        extra = ["--sources", tmp_path / "s.toml", "--raw-dir", tmp_path / "raw"]
    elif case == "bad baseline":
        extra += ["--baseline", "bm25"]
    code = evaluate("--model-dir", model_dir, *extra, "--output-dir", tmp_path / "out")
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    assert re.search(message, errors[0]), errors[0]
    assert not (tmp_path / "out").exists()


def test_the_script_exits_with_one_error_line(tmp_path: Path) -> None:
    """evaluate.py as a user runs it: a process, its exit code and its stderr."""
    result = subprocess.run(
        [sys.executable, "evaluate.py", "--model-dir", str(tmp_path / "missing"), "--output-dir", str(tmp_path / "o")],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f"error: model directory {tmp_path / 'missing'} does not")


class ConstantBaseline:
    """A baseline whose scores are fixed: the flagged decision at its own thresholds can be worked out by hand."""

    name = "fixed"

    def __init__(self, scores: np.ndarray) -> None:
        self.scores = scores

    def fit(self, rows: EvalRows) -> "ConstantBaseline":
        return self

    def score(self, texts: list[str], progress: bool = True) -> np.ndarray:
        return self.scores


def test_report_has_flagged_per_system_at_each_systems_thresholds() -> None:
    names = ("violence", "unsafe")
    rows = EvalRows(
        texts=list("abcd"),
        labels=np.array([[1, 1], [0, 0], [0, 1], [0, 0]]),
        label_mask=np.array([[1, 1], [1, 1], [0, 1], [1, 1]]),
        sources=np.array(["x", "x", "y", "y"], dtype=object),
        label_names=names,
        description="hand-made rows",
    )
    model = np.array([[0.9, 0.2], [0.2, 0.1], [0.1, 0.3], [0.1, 0.6]])  # at its thresholds: TP, TN, FN, FP
    # The baseline separates the rows at its own F1-best thresholds (violence 0.5, unsafe 0.4).
    fixed = np.array([[0.8, 0.8], [0.2, 0.2], [0.2, 0.4], [0.2, 0.3]])
    report = evaluate_scores(
        "m", model, {"violence": 0.9, "unsafe": 0.5}, rows, baselines=[ConstantBaseline(fixed)], train_rows=rows
    )
    assert report.flagged_thresholds[MODEL] == {"violence": 0.9, "unsafe": 0.5}
    assert report.flagged_thresholds["fixed"] == {"violence": 0.5, "unsafe": 0.4}  # F1-best, nearest 0.5 on ties
    ours, theirs = report.flagged[MODEL]["all"], report.flagged["fixed"]["all"]
    assert (ours.rows, ours.positives, ours.flagged, ours.precision, ours.recall) == (4, 2, 2, 0.5, 0.5)
    assert (theirs.flagged, theirs.precision, theirs.recall, theirs.f1) == (2, 1.0, 1.0, 1.0)
    assert report.flagged[MODEL]["y"].positives == 1
    markdown = report.to_markdown()
    assert "## Flagged (any label at its threshold)" in markdown
    assert "| fixed | **all** | 4 | 2 | 2 | 1.000 | 1.000 | 1.000 |" in markdown
    assert report.to_dict()["flagged"]["model"]["y"] == {
        "rows": 2, "positives": 1, "flagged": 1, "precision": 0.0, "recall": 0.0, "f1": 0.0
    }
