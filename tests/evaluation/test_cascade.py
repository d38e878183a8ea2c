"""evaluate.py with a model that has a cascade (student/): the cascade beside the transformer alone."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from cockatoo_ml.inference.bands import Band, bands_from_dict, sure
from cockatoo_ml.distillation.run import write_student_dir
from cockatoo_ml.inference.students import Student, TfidfFeatures
from cockatoo_ml.evaluation.data import EvalRows, rows_from_split
from cockatoo_ml.evaluation.report import CASCADE, LOSS_MARK, MODEL
from cockatoo_ml.evaluation.run import StudentAnswers, cascade_comparison, evaluate_scores
from cockatoo_ml.evaluation.scoring import LocalScorer
from cockatoo_ml.inference.classifier import TextClassifier
from tests.evaluation.test_run import evaluate


pytestmark = pytest.mark.usefixtures("float32_server_settings")


@pytest.fixture
def cascade_model(tiny_model_dir: Path, tiny_processed_dir: Path, tmp_path: Path) -> Path:
    """The tiny model with a student taught its own scores on the train split. Bands: on the first label, the
    lower half of the student's test scores on the larger side of the threshold; on the others, everything but the
    threshold itself. So about half of the test texts are answered."""
    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    teacher = TextClassifier.load(model_dir, dtype="float32")
    texts = rows_from_split(tiny_processed_dir, "train").texts
    scores = np.array([r.scores for r in teacher.score(texts)])
    student = Student.fit(TfidfFeatures.fit(texts), texts, scores, teacher.labels, alpha=0.1)
    first = student.scores(rows_from_split(tiny_processed_dir, "test").texts)[:, 0]
    t0 = teacher.thresholds[teacher.labels[0]]
    below, above = first[first < t0], first[first >= t0]
    edges = (float(np.median(below)), 1.0) if len(below) >= len(above) else (0.0, float(np.median(above)))
    bands = {label: Band(low=teacher.thresholds[label], high=teacher.thresholds[label], agreement_low=1.0,
                         agreement_high=1.0, share_low=0.5, share_high=0.5).to_dict() for label in teacher.labels}
    bands[teacher.labels[0]].update(low=edges[0], high=edges[1])
    report = {"student": "tfidf", "unit": "window", "labels": list(teacher.labels), "thresholds": teacher.thresholds,
              "bands": bands}
    write_student_dir(model_dir, student, report, texts)
    return model_dir


def test_evaluate_reports_the_cascade_beside_the_transformer_alone(
    cascade_model: Path, tiny_processed_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert evaluate("--model-dir", cascade_model, "--data", tiny_processed_dir, "--output-dir", tmp_path / "out") == 0
    saved = json.loads((tmp_path / "out" / "evaluation.json").read_text())
    assert set(saved["metrics"]) == {MODEL, CASCADE} and saved["losses"] == []  # the cascade is not a baseline

    # What the server would answer, computed here from the saved student, its bands and the transformer.
    rows = rows_from_split(tiny_processed_dir, "test")
    teacher = TextClassifier.load(cascade_model, dtype="float32")
    alone = np.array([r.scores for r in teacher.score(rows.texts)])
    student = Student.load(cascade_model / "student")
    bands = bands_from_dict(teacher.labels, json.loads((cascade_model / "student" / "cascade.json").read_text())["bands"])
    student_scores = student.scores(rows.texts)
    assert len(teacher.cut(rows.texts).ids) == len(rows.texts)  # one window each: the student sees the whole text
    answered = sure(student_scores, bands).all(axis=1)
    assert 0 < answered.sum() < len(rows.texts)  # the fixture answers some texts, not all
    tiered = np.where(answered[:, None], student_scores, alone)
    limits = np.array([teacher.thresholds[label] for label in teacher.labels])
    same = ((tiered >= limits) == (alone >= limits))

    cascade = saved["cascade"]
    assert cascade["student"] == "tfidf" and cascade["texts"] == 36
    assert cascade["answered_share"] == pytest.approx(answered.mean())
    assert cascade["decision_agreement"] == pytest.approx(same.all(axis=1).mean())
    assert cascade["identical_by_label"] == pytest.approx(dict(zip(teacher.labels, same.mean(axis=0))))
    for j, label in enumerate(teacher.labels):
        known = rows.label_mask[:, j] > 0
        truth = rows.labels[known, j] > 0.5
        for system, probs in ((MODEL, alone), (CASCADE, tiered)):
            assert saved["metrics"][system]["all"][label]["pr_auc"] == pytest.approx(
                average_precision_score(truth, probs[known, j]), abs=1e-6)
    assert set(saved["macro_pr_auc"]) == {MODEL, CASCADE}

    markdown = (tmp_path / "out" / "evaluation.md").read_text()
    assert "## Cascade against the transformer alone" in markdown and "## Cascade: all metrics" in markdown
    assert "| label | rows | positives | transformer PR-AUC | cascade PR-AUC | Δ |" in markdown
    assert f"answered {answered.mean():.1%} of 36 texts" in capsys.readouterr().out


def test_cascade_off_or_no_student_reports_the_transformer_alone(
    cascade_model: Path, tiny_model_dir: Path, tiny_processed_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert LocalScorer(cascade_model).cascade is not None
    assert LocalScorer(tiny_model_dir).cascade is None
    monkeypatch.setenv("COCKATOO_CASCADE", "off")
    scorer = LocalScorer(cascade_model)
    assert scorer.cascade is None
    with pytest.raises(ValueError, match="no cascade"):
        scorer.cascade_scores(["x"])


def test_the_cascade_of_long_texts_mixes_student_and_transformer_windows(
    cascade_model: Path, tiny_processed_dir: Path
) -> None:
    texts = [" ".join([text] * 12) for text in rows_from_split(tiny_processed_dir, "test").texts]
    scorer = LocalScorer(cascade_model)
    tiered, answered = scorer.cascade_scores(texts)
    # Computed apart: the transformer on every window, the student's score kept on the windows it is sure of.
    teacher, student = scorer.classifier, scorer.cascade.student
    bands = scorer.cascade.bands
    cut = teacher.cut(texts, spans=True)
    student_windows = student.scores(cut.window_texts(texts))
    sure_windows = sure(student_windows, bands).all(axis=1)
    mixed = np.where(sure_windows[:, None], student_windows, [r.scores for r in teacher.score(cut.ids)])
    expected = np.array([mixed[cut.owner == i].max(axis=0) for i in range(len(texts))])
    assert len(cut.ids) > 2 * len(texts) and 0 < sure_windows.sum() < len(sure_windows)
    assert np.allclose(tiered, expected, atol=1e-6)
    assert answered.tolist() == [bool(sure_windows[cut.owner == i].all()) for i in range(len(texts))]


def hand_rows(truth: list[list[int]]) -> EvalRows:
    labels = np.array(truth, dtype=np.float32)
    return EvalRows([f"text {i}" for i in range(len(truth))], labels, np.ones_like(labels), ["s"] * len(truth),
                    ("a", "b"), "hand-made rows")


def test_cascade_comparison_on_a_hand_made_table() -> None:
    alone = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.1, 0.3]])
    student = np.array([[0.95, 0.02], [0.4, 0.7], [0.3, 0.45], [0.0, 0.0]])
    answered = np.array([True, False, True, True])
    cascade = np.where(answered[:, None], student, alone)  # the transformer's scores where the student did not answer
    tiered, summary = cascade_comparison(alone, StudentAnswers("tfidf", cascade, answered), [0.5, 0.5], ["a", "b"])
    assert tiered.tolist() == [[0.95, 0.02], [0.2, 0.8], [0.3, 0.45], [0.0, 0.0]]  # row 2 is the transformer's
    # The third row: the student says "a" negative where the transformer said positive; all else is the same.
    assert summary["identical_by_label"] == {"a": 0.75, "b": 1.0}
    assert summary["answered_share"] == 0.75 and summary["answered_agreement"] == pytest.approx(2 / 3)
    assert summary["decision_agreement"] == 0.75 and summary["texts"] == 4


def test_a_cascade_pr_auc_lower_by_more_than_the_tolerance_is_marked() -> None:
    rows = hand_rows([[1, 1], [0, 0], [1, 0], [0, 1]])
    alone = np.array([[0.9, 0.8], [0.1, 0.2], [0.8, 0.3], [0.2, 0.7]])  # ranks both labels perfectly
    cascade = np.array([[0.9, 0.8], [0.95, 0.2], [0.8, 0.3], [0.2, 0.7]])  # its student puts a negative first on "a"
    report = evaluate_scores("m", alone, {"a": 0.5, "b": 0.5}, rows,
                             cascade=StudentAnswers("tfidf", cascade, np.array([False, True, False, False])))
    table = report.cascade_table()
    a_row, b_row, mean_row = table.splitlines()[2:5]
    assert a_row.startswith("| a |") and LOSS_MARK in a_row and LOSS_MARK not in b_row
    assert report.macro_pr_auc(CASCADE) < report.macro_pr_auc() - 0.01 and LOSS_MARK in mean_row
    assert "**75.00%** (every label)" in mean_row and report.baselines == []
