"""End-to-end training runs with the tiny model: outputs, telemetry, eval-only, resume, atomic output, errors."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from datasets import Dataset, DatasetDict
from transformers import TrainerCallback
from transformers.trainer_pt_utils import LengthGroupedSampler

from cockatoo_ml.artifacts import EVAL_RESULTS_FILE, PARITY_FILE, SETTINGS_FILE, THRESHOLDS_FILE, load_thresholds
from cockatoo_ml.cli import run_main
from cockatoo_ml.data.contract import SourceCredit, features, load_processed, save_processed
from cockatoo_ml.errors import ConfigError, DataError, ModelLoadError
from cockatoo_ml.training.report import AT_DEFAULT, AT_TUNED
from cockatoo_ml.pipeline import train_and_distill, train_main
from cockatoo_ml.training.run import (
    NOT_RECORDED,
    _training_data,
    evaluate_model_dir,
    max_metric_difference,
    parse_settings,
    train,
)
from tests.conftest import FIXTURE_CREDITS, LABELS, WINDOW_TEXTS, make_rows, server_scores
from tests.hf_modeling.hub_user import hub_user


def tiny_args(data: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [
        "--data", str(data), "--base-model", str(model), "--output-dir", str(out),
        "--batch-size", "8", "--lr", "1e-3", "--logging-steps", "2", "--seed", "0", *extra,
    ]


def _samplers(obj: Any, depth: int = 0) -> list[Any]:
    """Every sampler reachable from a (possibly accelerate-wrapped) DataLoader."""
    found = []
    for name in ("sampler", "batch_sampler"):
        inner = getattr(obj, name, None)
        if inner is not None and depth < 4:
            found += [inner, *_samplers(inner, depth + 1)]
    return found


class Recorder(TrainerCallback):
    """Records the steps a run takes and the sampler of its training batches; can crash at a given step."""

    def __init__(self, crash_at: int | None = None) -> None:
        self.crash_at = crash_at
        self.steps: list[int] = []
        self.samplers: list[Any] = []

    def on_train_begin(self, args, state, control, train_dataloader=None, **kwargs):  # noqa: ANN001
        self.samplers = _samplers(train_dataloader)
        self.start_step = state.global_step

    def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001
        self.steps.append(state.global_step)
        if state.global_step == self.crash_at:
            raise RuntimeError("simulated crash")


class Warnings(logging.Handler):
    """The warnings logged while it is attached to the root logger (caplog cannot serve a module fixture)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(scope="module")
def trained_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_processed_dir: Path, tiny_model_dir: Path, module_server
) -> tuple[Path, list[str]]:
    """One tiny run (8 steps) with telemetry switched on by the environment, shared by this module's tests;
    returns the model directory and the warnings the run logged."""
    out = tmp_path_factory.mktemp("run") / "model"
    warnings = Warnings()
    logging.getLogger().addHandler(warnings)
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("COCKATOO_TELEMETRY", "1")
            env.setenv("METRICS_WEBHOOK_URL", module_server.url("/train"))
            env.setenv("METRICS_VALIDATION_WEBHOOK_URL", module_server.url("/eval"))
            env.setenv("METRICS_API_KEY", "secret-key")
            # As train_text.py runs it: training, then the baselines beside the model (the evaluation stage).
            model = train_and_distill(parse_settings(tiny_args(tiny_processed_dir, tiny_model_dir, out, "--max-steps", "8")))
    finally:
        logging.getLogger().removeHandler(warnings)
    return model, warnings.messages


@pytest.fixture(scope="module")
def trained(trained_run: tuple[Path, list[str]]) -> Path:
    return trained_run[0]


def test_model_dir_holds_everything(trained: Path, labels: tuple[str, ...]) -> None:
    for name in ("config.json", "model.safetensors", "tokenizer.json", THRESHOLDS_FILE, EVAL_RESULTS_FILE,
                 SETTINGS_FILE, PARITY_FILE, "README.md", "plots/pr_curves.png", "plots/f1_vs_threshold.png",
                 "modeling_cockatoo.py"):  # the mean-pooling head's code, for transformers' trust_remote_code
        assert (trained / name).is_file(), name
    config = json.loads((trained / "config.json").read_text())
    assert config["id2label"] == {str(i): label for i, label in enumerate(labels)}
    assert config["label2id"] == {label: i for i, label in enumerate(labels)}
    assert config["problem_type"] == "multi_label_classification"
    assert set(load_thresholds(trained, labels)) == set(labels)
    assert json.loads((trained / SETTINGS_FILE).read_text())["max_length"] == 64  # capped at the tiny window
    assert not list(trained.parent.glob(".model.*"))  # no staging or old directories left behind
    checkpoints = trained.with_name("model.checkpoints")
    assert not list(checkpoints.glob("checkpoint-*"))  # spent checkpoints removed
    assert list(checkpoints.glob("runs/*/events.out.tfevents.*"))  # TensorBoard logs stay


def test_transformers_loads_the_model_directory_with_the_servers_scores(trained: Path) -> None:
    """What a Hugging Face user gets from the directory (tests/hf_modeling/hub_user.py: only torch and
    transformers): with trust_remote_code the server's scores, without it an error asking for it."""
    seen = hub_user(WINDOW_TEXTS, trained)[str(trained)]
    assert seen["module"].endswith(".modeling_cockatoo")
    served = server_scores(trained, WINDOW_TEXTS)
    for way in ("pipeline", "AutoModelForSequenceClassification"):
        np.testing.assert_allclose(seen[way], served, rtol=0, atol=1e-5, err_msg=way)
    assert all(error and "trust_remote_code=True" in error for error in seen["without_trust_remote_code"].values())


def test_the_model_cards_usage_code_runs_and_flags_what_the_server_flags(trained: Path) -> None:
    """The card's Python block, run as a reader would copy it (from the folder above the model directory)."""
    from cockatoo_ml.inference.classifier import TextClassifier

    card = (trained / "README.md").read_text()
    code = card.split("## Use", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=trained.parent, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        check=True, timeout=300,
    )
    printed = [json.loads(line) for line in run.stdout.splitlines()]
    classifier = TextClassifier.load(trained, dtype="float32")
    texts = [row["text"] for row in printed]
    assert len(texts) == 2
    for row, score in zip(printed, classifier.score(texts), strict=True):
        expected = dict(zip(classifier.labels, score.scores, strict=True))
        assert row["scores"] == pytest.approx(expected, abs=1e-5)
        assert set(row["flagged"]) == {label for label, value in expected.items() if value >= classifier.thresholds[label]}


def test_licence_and_citation_of_every_source_reach_the_settings_and_the_model_card(
    trained_run: tuple[Path, list[str]], tiny_processed_dir: Path
) -> None:
    model, warnings = trained_run
    recorded = json.loads((model / SETTINGS_FILE).read_text())["training_data"]
    train_rows = Counter(load_processed(tiny_processed_dir)[0]["train"]["source"])
    assert recorded == [
        {"name": name, "license": licence, "citation": citation, "rows": train_rows[name]}
        for name, (licence, citation) in FIXTURE_CREDITS.items()
    ]
    card = (model / "README.md").read_text()
    assert "## Training data" in card and "trained on fixture_0 (non-commercial licence)" in card
    for name, (licence, citation) in FIXTURE_CREDITS.items():
        assert f"| {name} | {train_rows[name]} |" in card and f"| {licence} | {citation} |" in card
    (warning,) = [message for message in warnings if "non-commercial" in message]
    assert "the training data contains non-commercial source(s): fixture_0 (CC-BY-NC-4.0" in warning
    assert "fixture_1" not in warning


def test_a_dataset_prepared_before_credits_were_recorded_gets_them_marked_not_recorded(tmp_path: Path) -> None:
    train_split = Dataset.from_list(make_rows(6), features=features())
    save_processed(DatasetDict({"train": train_split}), tmp_path, LABELS)  # no credits in its metadata
    assert _training_data(tmp_path, train_split) == [
        SourceCredit("fixture_0", NOT_RECORDED, NOT_RECORDED, 3),
        SourceCredit("fixture_1", NOT_RECORDED, NOT_RECORDED, 3),
    ]


def test_the_model_card_puts_the_tfidf_baseline_beside_the_model(trained: Path, labels) -> None:
    results = json.loads((trained / EVAL_RESULTS_FILE).read_text())["baselines"]
    assert results["split"] == "test" and set(results["macro_pr_auc"]) == {"model", "tfidf"}
    assert 0 < results["macro_pr_auc"]["tfidf"] <= 1
    report = json.loads((trained / "evaluation" / "evaluation.json").read_text())
    assert report["macro_pr_auc"] == results["macro_pr_auc"] and report["losses"] == results["losses"]
    card = (trained / "README.md").read_text()
    assert "## Against baselines on the test split" in card and "tfidf PR-AUC" in card
    for label in labels:
        assert f"| {label} | **all** |" in card


def test_eval_results_hold_both_splits_at_default_and_tuned_thresholds(trained: Path, labels) -> None:
    results = json.loads((trained / EVAL_RESULTS_FILE).read_text())
    assert results["global_step"] == 8
    for split in ("validation", "test"):
        assert results[split]["rows"] == 36
        for key in (AT_DEFAULT, AT_TUNED):
            assert {"f1", "micro_f1", "roc_auc", *(f"f1_{label}" for label in labels)} <= set(results[split][key])
    tuned, default = results["validation"][AT_TUNED], results["validation"][AT_DEFAULT]
    for label in labels:  # thresholds are F1-optimal on validation, so never worse than 0.5 there
        assert tuned[f"f1_{label}"] >= default[f"f1_{label}"]
    card = (trained / "README.md").read_text()
    assert "# model" in card and "fixture_0" in card and "F1 tuned" in card and "base_model:" in card


def test_telemetry_reached_the_loopback_server(trained: Path, module_server, labels) -> None:
    training = module_server.bodies("/train")
    validation = module_server.bodies("/eval")
    assert training and all(set(p) == {"experiment_id", "global_step", "epoch", "metrics", "timestamp"} for p in training)
    assert any("loss" in p["metrics"] for p in training)
    assert len(validation) == 4  # evaluated 4 times in 8 steps
    assert all(p["is_eval"] is True and "eval_f1" in p["metrics"] for p in validation)
    assert {f"eval_f1_{label}" for label in labels} <= set(validation[-1]["metrics"])
    assert all(r["headers"]["Authorization"] == "secret-key" for r in module_server.requests)


@pytest.mark.parametrize("split", ["validation", "test"])
def test_eval_only_reproduces_the_recorded_numbers(trained: Path, split: str, capsys) -> None:
    result = evaluate_model_dir(parse_settings(["--output-dir", str(trained), "--eval-only", "--eval-split", split]))
    recorded = json.loads((trained / EVAL_RESULTS_FILE).read_text())[split]
    assert max_metric_difference(recorded, result) < 1e-9
    assert recorded[AT_TUNED]["f1"] == pytest.approx(result[AT_TUNED]["f1"])
    assert "largest difference" in capsys.readouterr().out


def test_the_parity_sample_holds_validation_texts_and_their_float32_scores(
    trained: Path, tiny_processed_dir: Path, labels
) -> None:
    from cockatoo_ml.inference.classifier import TextClassifier
    from cockatoo_ml.inference.parity import ParitySample

    sample = ParitySample.load(trained, labels)
    validation = load_processed(tiny_processed_dir)[0]["validation"]
    assert len(sample.texts) == len(validation) == 36  # a split this small is taken whole
    assert set(sample.texts) == set(validation["text"])
    row = validation["text"].index(sample.texts[0])
    assert sample.truth[0].tolist() == validation["labels"][row] and sample.mask[0].tolist() == validation["label_mask"][row]
    exact = TextClassifier.load(trained, dtype="float32").score(sample.texts)
    assert abs(sample.float32 - [s.scores for s in exact]).max() < 1e-6


def test_parity_only_adds_the_sample_to_a_model_trained_without_it(trained: Path, tmp_path: Path, tiny_processed_dir):
    import shutil

    model_dir = tmp_path / "older"
    shutil.copytree(trained, model_dir)
    (model_dir / PARITY_FILE).unlink()
    train_main(["--output-dir", str(model_dir), "--data", str(tiny_processed_dir), "--parity-only"])
    assert json.loads((model_dir / PARITY_FILE).read_text()) == json.loads((trained / PARITY_FILE).read_text())
    with pytest.raises(ModelLoadError, match="no trained model in"):
        train_main(["--output-dir", str(tmp_path / "none"), "--parity-only"])


def test_interrupted_run_resumes_from_its_checkpoint(tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "model"
    args = tiny_args(tiny_processed_dir, tiny_model_dir, out, "--max-steps", "8", "--eval-steps", "2")
    crashing = Recorder(crash_at=5)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(parse_settings(args), extra_callbacks=[crashing])
    assert any(isinstance(x, LengthGroupedSampler) for x in crashing.samplers)  # length-grouped training batches
    assert not out.exists()  # no half-written model where the server looks
    checkpoints = sorted(p.name for p in (tmp_path / "model.checkpoints").glob("checkpoint-*"))
    assert "checkpoint-4" in checkpoints and len(checkpoints) <= 3  # save_total_limit 2 (+ the best)

    with pytest.raises(ConfigError, match="--resume"):
        train(parse_settings(args))  # a fresh run would mix with the interrupted one's checkpoints

    resumed = Recorder()
    train(parse_settings([*args, "--resume"]), extra_callbacks=[resumed])
    assert resumed.start_step == 4 and resumed.steps == [5, 6, 7, 8]  # continues, does not restart
    assert json.loads((out / EVAL_RESULTS_FILE).read_text())["global_step"] == 8


def test_cli_turns_user_errors_into_one_line(tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path, capsys) -> None:
    assert run_main(train_main, tiny_args(tmp_path / "nothing", tiny_model_dir, tmp_path / "m")) == 2
    assert "no prepared dataset" in capsys.readouterr().err
    assert run_main(train_main, ["--output-dir", str(tmp_path / "missing"), "--eval-only"]) == 2
    assert "no trained model" in capsys.readouterr().err
    assert run_main(train_main, tiny_args(tiny_processed_dir, tmp_path / "no-model", tmp_path / "m", "--resume")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def test_user_errors_raise_our_types(tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match="minilm"):
        train(parse_settings(tiny_args(tiny_processed_dir, tmp_path / "no-model", tmp_path / "m")))
    with pytest.raises(ConfigError, match="no checkpoint"):
        train(parse_settings(tiny_args(tiny_processed_dir, tiny_model_dir, tmp_path / "m", "--resume")))
    with pytest.raises(ConfigError, match="not a checkpoint"):
        train(parse_settings(tiny_args(tiny_processed_dir, tiny_model_dir, tmp_path / "m", "--resume", str(tmp_path))))
    with pytest.raises(ConfigError, match="batch-size"):
        parse_settings(["--batch-size", "0"])
    with pytest.raises(ConfigError, match="warmup-ratio"):
        parse_settings(["--warmup-ratio", "1.5"])
    with pytest.raises(ConfigError, match="CUDA"):
        train(parse_settings(tiny_args(tiny_processed_dir, tiny_model_dir, tmp_path / "m", "--precision", "bf16")))
    with pytest.raises(ConfigError, match="--freeze-layers 5: .*the encoder has 2"):
        train(parse_settings(tiny_args(tiny_processed_dir, tiny_model_dir, tmp_path / "m", "--freeze-layers", "5")))


def test_eval_only_refuses_a_dataset_with_other_labels(trained: Path, tmp_path: Path) -> None:
    from datasets import Dataset, DatasetDict

    from cockatoo_ml.data.contract import features, save_processed

    rows = [{"text": "hi", "labels": [0.0, 1.0], "label_mask": [1.0, 1.0], "source": "x"}]
    save_processed(DatasetDict({"test": Dataset.from_list(rows, features=features())}), tmp_path / "d", ["a", "b"])
    with pytest.raises(DataError, match="predicts"):
        evaluate_model_dir(parse_settings(["--output-dir", str(trained), "--eval-only", "--data", str(tmp_path / "d")]))


def test_a_half_precision_base_model_trains_in_float32(tmp_path: Path, tiny_model_dir: Path) -> None:
    """transformers 5 loads weights in their stored dtype; the optimiser must still get float32 weights."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cockatoo_ml.training.run import _load_model

    half = tmp_path / "half"
    AutoModelForSequenceClassification.from_pretrained(tiny_model_dir, dtype=torch.float16).save_pretrained(half)
    AutoTokenizer.from_pretrained(tiny_model_dir).save_pretrained(half)
    for pooling in ("mean", "cls"):
        model = _load_model(str(half), ["a", "b"], seed=0, pooling=pooling)
        assert {p.dtype for p in model.parameters()} == {torch.float32}
        assert model.config.id2label == {0: "a", 1: "b"}


def test_the_new_head_follows_the_seed(minilm_path: str) -> None:
    """MiniLM has no classification head: the one training adds must be the same for the same --seed."""
    import torch

    from cockatoo_ml.training.run import _load_model

    def head(seed: int) -> torch.Tensor:
        return _load_model(minilm_path, ["a", "b", "c"], seed=seed, pooling="mean").classifier.weight.detach().clone()

    torch.manual_seed(123)  # whatever state the process is in before
    first = head(7)
    torch.rand(5)
    assert torch.equal(head(7), first)
    assert not torch.equal(head(8), first)


@pytest.mark.parametrize("head_lr", [None, 1e-3])
def test_the_head_gets_its_own_learning_rate(tmp_path: Path, tiny_model_dir: Path, head_lr: float | None) -> None:
    from transformers import TrainingArguments

    from cockatoo_ml.training.loss import MultiLabelLoss
    from cockatoo_ml.training.run import MultiLabelTrainer, _load_model

    model = _load_model(str(tiny_model_dir), ["a", "b"], seed=0, pooling="mean")
    args = TrainingArguments(output_dir=str(tmp_path), learning_rate=1e-5, report_to="none", use_cpu=True)
    optimizer = MultiLabelTrainer(model=model, args=args, loss_fn=MultiLabelLoss("bce"), head_lr=head_lr).create_optimizer()
    lr_of = {id(p): group["lr"] for group in optimizer.param_groups for p in group["params"]}
    assert len(lr_of) == sum(1 for p in model.parameters() if p.requires_grad)  # every weight is trained
    assert lr_of[id(model.classifier.weight)] == (head_lr or 1e-5)
    assert lr_of[id(model.encoder.embeddings.word_embeddings.weight)] == 1e-5


def test_any_of_weight_reaches_the_loss_and_flagged_rows_reach_its_batches(
    tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datasets import DatasetDict, load_from_disk

    from cockatoo_ml.data.contract import META_FILE
    from cockatoo_ml.training import run
    from cockatoo_ml.training.loss import MultiLabelLoss

    # The tiny dataset with a ToxicChat-like row: nothing known, "at least one of" violence/nsfw/harassment.
    data = tmp_path / "data"
    dataset = load_from_disk(str(tiny_processed_dir))
    flagged = {"text": "something unsafe", "labels": [0.0, 1.0, 1.0, 1.0], "label_mask": [0.0] * 4, "source": "f"}
    train_rows = [flagged] * 16  # two full batches of 8 with the flag
    dataset = DatasetDict({**dataset, "train": dataset["train"].from_list(train_rows, features=dataset["train"].features)})
    dataset.save_to_disk(str(data))
    (data / META_FILE).write_text((tiny_processed_dir / META_FILE).read_text())

    seen: list[tuple[float, float]] = []  # (any_of_weight, flagged cells in the batch)

    class SpyLoss(MultiLabelLoss):
        def __call__(self, logits, targets, mask):
            seen.append((self.any_of_weight, float(((mask == 0) & (targets > 0.5)).sum())))
            return super().__call__(logits, targets, mask)

    monkeypatch.setattr(run, "MultiLabelLoss", SpyLoss)
    args = tiny_args(data, tiny_model_dir, tmp_path / "model", "--max-steps", "1", "--any-of-weight", "0.25")
    run.train(run.parse_settings([*args, "--no-linear-probe", "--baselines", "none"]))
    assert seen and seen[0] == (0.25, 24.0)  # 8 rows x 3 flagged labels


def test_frozen_layers_leave_training_as_they_were_pretrained(
    tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path
) -> None:
    import torch

    from cockatoo_ml.modeling import load_classifier, new_classifier

    out = tmp_path / "model"
    # one evaluation, at the end: the best checkpoint is the trained one (the first step runs at lr 0, warm-up)
    args = tiny_args(tiny_processed_dir, tiny_model_dir, out, "--max-steps", "4", "--eval-steps", "4", "--freeze-layers", "1")
    train(parse_settings([*args, "--no-linear-probe", "--baselines", "none"]))
    before = new_classifier(str(tiny_model_dir), LABELS, "mean").state_dict()
    after = load_classifier(out).state_dict()
    unchanged = {name for name in before if name in after and torch.equal(before[name], after[name])}
    assert "encoder.embeddings.word_embeddings.weight" in unchanged
    assert all(name in unchanged for name in before if ".layer.0." in name)
    assert not any(".layer.1." in name for name in unchanged)  # the top layer trained
    assert json.loads((out / SETTINGS_FILE).read_text())["freeze_layers"] == 1


def test_predictions_come_back_in_row_order_after_length_sorted_scoring() -> None:
    import numpy as np
    from transformers.trainer_utils import PredictionOutput

    from cockatoo_ml.training.run import _predict

    lengths = [9, 3, 7, 3, 12, 1]
    split = Dataset.from_dict(
        {"length": lengths, "labels": [[float(n)] for n in lengths], "label_mask": [[1.0]] * len(lengths)}
    )
    scored: list[list[int]] = []

    class ScoreByLength:  # a Trainer whose logit for a row is the row's length
        def predict(self, data: Dataset, metric_key_prefix: str) -> PredictionOutput:
            scored.append(list(data["length"]))
            column = np.asarray(data["length"], dtype=np.float32)[:, None]
            return PredictionOutput(column, (column.copy(), np.ones_like(column)), {})

    probs, labels, mask = _predict(ScoreByLength(), split)  # type: ignore[arg-type]
    assert scored == [sorted(lengths)]  # scored in length order: batches pad little
    assert labels[:, 0].tolist() == lengths  # ... and returned in the split's own order
    assert probs[:, 0] == pytest.approx(1 / (1 + np.exp(-np.asarray(lengths, dtype=float))))


def test_the_dropout_setting_reaches_every_dropout_layer(tiny_model_dir: Path) -> None:
    import torch

    from cockatoo_ml.training.run import _load_model

    def rates(dropout: float | None) -> set[float]:
        model = _load_model(str(tiny_model_dir), LABELS, seed=0, pooling="mean", dropout=dropout)
        return {m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)}

    assert rates(None) == {0.1}  # the tiny BERT's own
    assert rates(0.0) == {0.0}
    assert rates(0.3) == {0.3}
    assert parse_settings(["--dropout", "0"]).dropout == 0.0
    with pytest.raises(ConfigError, match="dropout"):
        parse_settings(["--dropout", "1"])
