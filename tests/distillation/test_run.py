"""distill.py end to end on the tiny model and dataset (cockatoo_ml/distillation/run.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cockatoo_ml.artifacts import SETTINGS_FILE
from cockatoo_ml.distillation.run import held_out_rows, main, was_taught
from cockatoo_ml.inference.bands import bands_from_dict, sure
from cockatoo_ml.inference.students import Student
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.inference.classifier import TextClassifier


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
    # 36 validation texts cannot vouch for 99.5% by a confidence bound: here the point estimate decides.
    loose = ["--band-share", "0", "--band-confidence", "0", "--band-min-texts", "1"]
    assert main(["--model", str(model_copy), "--texts", str(extra), "--candidates", "tfidf", *loose]) == 0

    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert report["student"] == "tfidf" and report["target_agreement"] == 0.995 and report["band_confidence"] == 0
    assert report["teacher"]["train_texts"] == 120 + 2 and report["teacher"]["unlabelled_texts"] == 2
    # The band texts are the validation texts the student was not taught (each once), half of them held out.
    dataset, labels = load_processed(tiny_processed_dir)
    taught = {*dataset["train"]["text"], "an unlabelled prompt", "another one about a wallet"}
    texts = list(dict.fromkeys(t for t in dataset["validation"]["text"] if t not in taught))
    held = held_out_rows(len(texts), 0.5, seed=1)
    held_texts = [texts[i] for i in np.flatnonzero(held)]
    assert report["band_texts"] == {"validation": 36, "held_out_train": 0, "distinct": len(texts),
                                    "fit": len(texts) - len(held_texts), "held_out": len(held_texts)} and held_texts
    assert set(report["candidates"]) == {"tfidf"} and report["test"]["texts"] == 36
    teacher = TextClassifier.load(model_copy)
    assert report["thresholds"] == teacher.thresholds
    # Recompute the held-out figures from the saved student, bands and the teacher, window by window.
    student = Student.load(model_copy / "student")
    bands = bands_from_dict(labels, report["bands"])
    cut = teacher.cut(held_texts, spans=True)
    student_windows = student.scores(cut.window_texts(held_texts))
    sure_windows = sure(student_windows, bands).all(axis=1)
    answered = np.bincount(cut.owner, weights=~sure_windows, minlength=len(held_texts)) == 0
    assert report["held_out"]["texts"] == len(held_texts)
    assert report["held_out"]["answered_share"] == pytest.approx(answered.mean())
    assert report["held_out"]["window_share_answered"] == pytest.approx(sure_windows.mean())
    limits = np.array([teacher.thresholds[label] for label in labels])
    teacher_windows = np.array([r.scores for r in teacher.score(list(cut.ids))])
    teacher_says = np.array([r.scores for r in teacher.score(held_texts)]) >= limits
    same = ((student.scores(held_texts) >= limits) == teacher_says).all(axis=1)
    assert report["held_out"]["answered_agreement"] == pytest.approx(same[answered].mean() if answered.any() else 1.0)
    # Every side served keeps its promise on the held-out windows (and was fitted to it); the others were dropped.
    for j, label in enumerate(labels):
        band = report["bands"][label]
        assert band["agreement_low"] >= 0.995 and band["agreement_high"] >= 0.995
        below, above = student_windows[:, j] < band["low"], student_windows[:, j] > band["high"]
        assert (teacher_windows[below, j] < limits[j]).mean() >= 0.995 if below.any() else band["low"] == 0
        assert (teacher_windows[above, j] >= limits[j]).mean() >= 0.995 if above.any() else band["high"] == 1
    for side in report["dropped"]:
        assert side["held_out_texts"] == 0 or side["held_out_agreement"] < 0.995
        assert report["bands"][side["label"]]["low" if side["side"] == "low" else "high"] in (0.0, 1.0)
    # Which texts the student was taught is on record (the training split and --texts), the band texts are not.
    assert was_taught(model_copy / "student", [*taught, *texts]).tolist() == [True] * len(taught) + [False] * len(texts)
    assert not (model_copy / ".student.partial").exists()


def test_bands_are_fitted_on_texts_the_student_never_saw(model_copy: Path, tiny_processed_dir: Path, tmp_path: Path) -> None:
    from cockatoo_ml.data.contract import load_processed

    dataset, _ = load_processed(tiny_processed_dir)
    train_texts = dataset["train"]["text"]
    held = held_out_rows(120, 0.25)
    band_file = tmp_path / "band.txt"
    # Two new prompts, one text the student is taught (left out of the bands) and one held-out train text (counted
    # once).
    taught_text = train_texts[int(np.flatnonzero(~held)[0])]
    held_text = train_texts[int(np.flatnonzero(held)[0])]
    band_file.write_text(f"a new prompt about a parcel\nanother new prompt\n{taught_text}\n{held_text}\n")
    main(["--model", str(model_copy), "--data", str(tiny_processed_dir), "--candidates", "tfidf",
          "--band-share", "0.25", "--band-texts", str(band_file)])
    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert report["teacher"]["train_texts"] == 90 and report["teacher"]["held_out_for_bands"] == 30
    taught = {train_texts[i] for i in np.flatnonzero(~held)}
    distinct = len((set(dataset["validation"]["text"]) | {train_texts[i] for i in np.flatnonzero(held)}
                    | {"a new prompt about a parcel", "another new prompt"}) - taught)
    held = round(0.5 * distinct)
    assert report["band_texts"] == {"validation": 36, "held_out_train": 30, "band_texts": 4, "distinct": distinct,
                                    "fit": distinct - held, "held_out": held}
    assert report["held_out"]["texts"] == held and report["fit"]["texts"] == distinct - held
    # The defaults (95% confidence, 100 texts per side) place no band on ~35 texts: the student answers nothing.
    assert report["band_confidence"] == 0.95 and report["band_min_texts"] == 100
    assert all(band["texts_low"] == band["texts_high"] == 0 for band in report["bands"].values())
    assert report["held_out"]["answered_share"] == 0.0 and report["test"]["answered_share"] == 0.0
    assert report["dropped"] == []  # nothing to drop


def test_long_texts_are_taught_and_banded_window_by_window(
    model_copy: Path, tiny_processed_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets import Dataset, DatasetDict

    from cockatoo_ml.data.contract import features, load_processed, save_processed
    from cockatoo_ml.distillation.run import teacher_scores

    dataset, labels = load_processed(tiny_processed_dir)
    long_rows = dataset["validation"].to_list()
    for row in long_rows:
        row["text"] = " ".join([row["text"]] * 20)  # far past the tiny model's 64-token window
    data = tmp_path / "long"
    save_processed(DatasetDict({"train": dataset["train"], "validation": Dataset.from_list(long_rows, features=features())}),
                   data, labels)
    monkeypatch.setenv("COCKATOO_DTYPE", "float32")  # bfloat16 scores move with what shares a batch (issue 10)
    main(["--model", str(model_copy), "--data", str(data), "--candidates", "tfidf", "--band-share", "0",
          "--band-confidence", "0", "--band-min-texts", "1"])
    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    teacher = TextClassifier.load(model_copy, dtype="float32")
    long_texts = [row["text"] for row in long_rows]
    scored = teacher_scores(teacher, long_texts, "check")
    windows = report["held_out"]["windows"] + report["fit"]["windows"]
    assert report["unit"] == "window" and windows == len(scored.window_texts) > 2 * len(long_texts)
    # A window's teacher score is the transformer's on exactly those tokens; the text keeps each label's maximum.
    alone = np.array([r.scores for r in teacher.score(long_texts)])
    assert np.allclose(scored.scores, alone, atol=1e-6)
    assert all(window in text for window, text in zip(scored.window_texts, np.array(long_texts)[scored.owner]))
    shares = report["held_out"]
    assert all(0 <= shares[k] <= 1 for k in ("answered_share", "window_share_answered", "token_share_answered"))
    assert "test" not in report


def test_both_candidates_are_measured_and_the_one_answering_most_is_kept(
    model_copy: Path, tiny_processed_dir: Path
) -> None:
    # A small static vocabulary (tokens of at most two characters) keeps model2vec's distillation quick.
    main(["--model", str(model_copy), "--data", str(tiny_processed_dir), "--static-token-pattern", "^.{3,}$",
          "--band-confidence", "0", "--band-min-texts", "1"])
    report = json.loads((model_copy / "student" / "cascade.json").read_text())
    shares = {kind: figures["held_out"]["token_share_answered"] for kind, figures in report["candidates"].items()}
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
        (["--band-texts", "/nonexistent.txt"], DataError, "--band-texts /nonexistent.txt: no such file"),
        (["--band-confidence", "1"], ConfigError, "--band-confidence"),
        (["--band-share", "-0.1"], ConfigError, "--band-share"),
        (["--band-held-out-share", "0"], ConfigError, "--band-held-out-share"),
        (["--band-min-texts", "0"], ConfigError, "--band-min-texts"),
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
    from cockatoo_ml.pipeline import train_and_distill
    from cockatoo_ml.registry import distillation
    from cockatoo_ml.training.run import parse_settings

    monkeypatch.setattr(distillation, "CANDIDATES", ("tfidf",))  # the static one is tested above; this is quicker

    out = tmp_path / "model"
    args = ["--data", str(tiny_processed_dir), "--base-model", str(tiny_model_dir), "--output-dir", str(out),
            "--batch-size", "8", "--max-steps", "2", "--seed", "0", "--student"]
    train_and_distill(parse_settings(args))
    report = json.loads((out / "student" / "cascade.json").read_text())
    assert report["teacher"]["data"] == str(tiny_processed_dir) and report["student"] == "tfidf"
    assert set(report["bands"]) == {"scam", "violence", "nsfw", "harassment"}
    assert not parse_settings(args[:-1]).student  # off unless asked for


def test_a_second_run_reuses_the_teachers_scores(
    model_copy: Path, tiny_processed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ["--model", str(model_copy), "--data", str(tiny_processed_dir), "--candidates", "tfidf"]
    main(args)
    first = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert len(list((model_copy / ".teacher_scores").glob("*.npz"))) == 3  # train, validation, test

    def no_transformer(self: TextClassifier, texts: list[str], ready: object = None) -> list:
        raise AssertionError("the transformer scored texts again")

    monkeypatch.setattr(TextClassifier, "score", no_transformer)
    main([*args, "--band-confidence", "0", "--band-min-texts", "1"])  # other bands, same teacher scores
    second = json.loads((model_copy / "student" / "cascade.json").read_text())
    assert second["band_texts"] == first["band_texts"] and second["band_confidence"] == 0
