"""distill.py end to end on the tiny model and dataset (cockatoo_ml/distillation/run.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.distillation.bands import bands_from_dict, sure
from cockatoo_ml.distillation.run import main
from cockatoo_ml.distillation.students import Student
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.serving.model import TextClassifier


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for name in list(os.environ):
        if name.startswith("COCKATOO_"):
            monkeypatch.delenv(name)


def test_distill_writes_a_student_whose_figures_can_be_reproduced(
    model_copy: Path, tiny_processed_dir: Path, tmp_path: Path
) -> None:
    from cockatoo_ml.data.contract import load_processed

    extra = tmp_path / "texts.txt"
    extra.write_text("an unlabelled prompt\n\nanother one about a wallet\n")
    (model_copy / SETTINGS_FILE).write_text(json.dumps({"data": str(tiny_processed_dir)}))  # found from here
    assert main(["--model", str(model_copy), "--texts", str(extra), "--candidates", "tfidf"]) == 0

    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert report["student"] == "tfidf" and report["target_agreement"] == 0.995
    assert report["teacher"]["train_texts"] == 120 + 2 and report["teacher"]["unlabelled_texts"] == 2
    assert set(report["candidates"]) == {"tfidf"} and report["test"]["texts"] == 36
    teacher = TextClassifier.load(model_copy)
    assert report["thresholds"] == teacher.thresholds
    # Recompute the validation figures from the saved student, bands and the teacher.
    dataset, labels = load_processed(tiny_processed_dir)
    texts = dataset["validation"]["text"]
    student = Student.load(model_copy / "student")
    bands = bands_from_dict(labels, report["bands"])
    answered = sure(student.scores(texts), bands).all(axis=1)
    assert report["validation"]["answered_share"] == pytest.approx(answered.mean())
    limits = np.array([teacher.thresholds[label] for label in labels])
    teacher_says = np.array([r.scores for r in teacher.score(texts)]) >= limits
    same = ((student.scores(texts) >= limits) == teacher_says).all(axis=1)
    assert report["validation"]["answered_agreement"] == pytest.approx(same[answered].mean() if answered.any() else 1.0)
    for band in report["bands"].values():
        assert band["agreement_low"] >= 0.995 and band["agreement_high"] >= 0.995
    assert not (model_copy / ".student.partial").exists()


def test_long_texts_are_never_answered_by_the_student(model_copy: Path, tiny_processed_dir: Path, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    from cockatoo_ml.data.contract import features, load_processed, save_processed

    dataset, labels = load_processed(tiny_processed_dir)
    long_rows = dataset["validation"].to_list()
    for row in long_rows:
        row["text"] = " ".join([row["text"]] * 20)  # far past the tiny model's 64-token window
    data = tmp_path / "long"
    save_processed(DatasetDict({"train": dataset["train"], "validation": Dataset.from_list(long_rows, features=features())}),
                   data, labels)
    main(["--model", str(model_copy), "--data", str(data), "--candidates", "tfidf"])
    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert report["validation"]["answered_share"] == 0.0 and "test" not in report


def test_both_candidates_are_measured_and_the_one_answering_most_is_kept(
    model_copy: Path, tiny_processed_dir: Path
) -> None:
    # A small static vocabulary (tokens of at most two characters) keeps model2vec's distillation quick.
    main(["--model", str(model_copy), "--data", str(tiny_processed_dir), "--static-token-pattern", "^.{3,}$"])
    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    shares = {kind: figures["validation"]["answered_share"] for kind, figures in report["candidates"].items()}
    assert set(shares) == {"static", "tfidf"} and shares[report["student"]] == max(shares.values())
    student = Student.load(model_copy / "student")
    assert student.kind == report["student"] and student.scores(["hello"]).shape == (1, 4)
    if report["student"] == "static":
        assert (model_copy / "student" / "static_model" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (["--candidates", "bert"], ConfigError, "choose from static, tfidf"),
        (["--target-agreement", "1.5"], ConfigError, "--target-agreement"),
        (["--texts", "/nonexistent.txt"], DataError, "no such file"),
        ([], ModelLoadError, "pass --data DIR"),
    ],
)
def test_mistakes_are_one_clear_error(model_copy: Path, args: list[str], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        main(["--model", str(model_copy), *args])


def test_a_dataset_with_other_labels_is_refused(model_copy: Path, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    from cockatoo_ml.data.contract import features, save_processed
    from tests.conftest import make_rows

    rows = make_rows(6, labels=("spam", "ham", "nsfw"))
    save_processed(DatasetDict({"train": Dataset.from_list(rows, features=features()),
                                "validation": Dataset.from_list(rows, features=features())}), tmp_path / "d", ["spam", "ham", "nsfw"])
    with pytest.raises(DataError, match="has labels"):
        main(["--model", str(model_copy), "--data", str(tmp_path / "d")])


def test_train_text_student_builds_the_student_at_the_end_of_training(
    tiny_processed_dir: Path, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cockatoo_ml.registry import distillation
    from cockatoo_ml.training.run import parse_settings, train

    monkeypatch.setattr(distillation, "CANDIDATES", ("tfidf",))  # the static one is tested above; this is quicker

    out = tmp_path / "model"
    args = ["--data", str(tiny_processed_dir), "--base-model", str(tiny_model_dir), "--output-dir", str(out),
            "--batch-size", "8", "--max-steps", "2", "--seed", "0", "--student"]
    train(parse_settings(args))
    report = json.loads((out / "student" / "cascade.json").read_text())
    assert report["teacher"]["data"] == str(tiny_processed_dir) and report["student"] == "tfidf"
    assert set(report["bands"]) == {"scam", "violence", "nsfw", "harassment"}
    assert not parse_settings(args[:-1]).student  # off unless asked for
