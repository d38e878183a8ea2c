"""LP-FT: the head starts as one class-balanced logistic regression per label on frozen pooled features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from datasets import Dataset
from sklearn.linear_model import LogisticRegression
from transformers import AutoTokenizer

from cockatoo_ml.modeling import new_classifier
from cockatoo_ml.training.probe import fit_label_probes, init_head_from_probe, pooled_features, probe_rows
from cockatoo_ml.training.tokenize import MultiLabelCollator, tokenize_split
from tests.conftest import make_rows


def test_each_label_is_fitted_on_its_known_rows_only() -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 5))
    labels = np.stack([features[:, 0] > 0, features[:, 1] > 0.5, np.zeros(60, bool)], axis=1).astype(float)
    mask = np.ones_like(labels)
    mask[:20, 1] = 0  # label 1 unknown on the first 20 rows
    labels[:20, 1] = 1  # ... where its value must not matter
    weights, bias = fit_label_probes(features, labels, mask)
    by_hand = LogisticRegression(class_weight="balanced", max_iter=2000).fit(features[20:], labels[20:, 1] > 0.5)
    assert weights[1] == pytest.approx(by_hand.coef_[0], abs=1e-6)
    assert bias[1] == pytest.approx(by_hand.intercept_[0], abs=1e-6)
    assert np.argmax(np.abs(weights[0])) == 0  # label 0 reads feature 0
    # label 2 has no positive: nothing to separate, so no weights and a strongly negative bias
    assert not weights[2].any() and bias[2] < 0


@pytest.fixture(scope="module")
def train_split(tiny_model_dir: Path) -> Dataset:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    rows = make_rows(40, seed=5)
    return tokenize_split(Dataset.from_list(rows), tokenizer, max_length=32)


def test_features_come_back_in_row_order(tiny_model_dir: Path, train_split: Dataset, labels) -> None:
    model = new_classifier(str(tiny_model_dir), labels, "mean").eval()
    collate = MultiLabelCollator(AutoTokenizer.from_pretrained(tiny_model_dir))
    batched = pooled_features(model.pooled, train_split, collate, batch_size=7, device=torch.device("cpu"))
    with torch.inference_mode():
        one = collate([train_split[13]])
        alone = model.pooled(one["input_ids"], one["attention_mask"], token_type_ids=one["token_type_ids"])
    assert batched[13] == pytest.approx(alone[0].numpy(), abs=1e-5)


def test_the_head_starts_as_the_probe(tiny_model_dir: Path, train_split: Dataset, labels) -> None:
    torch.manual_seed(0)
    model = new_classifier(str(tiny_model_dir), labels, "mean")
    collate = MultiLabelCollator(AutoTokenizer.from_pretrained(tiny_model_dir))
    before = model.classifier.weight.detach().clone()
    accuracy = init_head_from_probe(model, train_split, collate, batch_size=8, label_names=labels)
    assert model.training  # left as it was found, ready for the Trainer
    assert set(accuracy) == set(labels) and all(0 <= v <= 1 for v in accuracy.values())
    model.eval()  # the probe read the encoder without dropout
    features = pooled_features(model.pooled, train_split, collate, 8, torch.device("cpu"))
    weights, bias = fit_label_probes(features, np.asarray(train_split["labels"]), np.asarray(train_split["label_mask"]))
    assert not torch.equal(before, model.classifier.weight)
    assert model.classifier.weight.detach().numpy() == pytest.approx(weights.astype(np.float32), abs=1e-5)
    with torch.inference_mode():
        batch = collate([train_split[i] for i in range(5)])
        logits = model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"]).logits.numpy()
    assert logits == pytest.approx(features[:5] @ weights.T + bias, abs=1e-4)


def test_probe_rows_cap_a_thick_label_and_keep_every_row_of_a_thin_one() -> None:
    mask = np.zeros((1000, 3))
    mask[:900, 0] = 1  # thick: known on 900 rows
    mask[850:, 1] = 1  # thin: 150 rows, 50 of them shared with the thick label
    rows = probe_rows(mask, rows_per_label=200, seed=1)
    assert set(np.flatnonzero(mask[:, 1])) <= set(rows)  # every thin row
    assert 200 <= len(rows) <= 200 + 150 and np.all(np.diff(rows) > 0)
    assert mask[rows, 0].sum() >= 200  # the thick label: its draw, plus the shared rows the thin one brought
    assert np.array_equal(rows, probe_rows(mask, rows_per_label=200, seed=1))  # seeded
    assert not np.array_equal(rows, probe_rows(mask, rows_per_label=200, seed=2))
    assert len(probe_rows(mask, rows_per_label=10_000)) == 1000  # no cap reached: every known row


def test_the_probe_is_fitted_on_the_capped_rows(tiny_model_dir: Path, train_split: Dataset, labels) -> None:
    fitted_on: list[int] = []

    def spy(features, labels_, mask, c=1.0):  # noqa: ANN001, ANN202
        fitted_on.append(len(features))
        return fit_label_probes(features, labels_, mask, c)

    model = new_classifier(str(tiny_model_dir), labels, "mean")
    collate = MultiLabelCollator(AutoTokenizer.from_pretrained(tiny_model_dir))
    expected = len(probe_rows(np.asarray(train_split["label_mask"]), 5, seed=3))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("cockatoo_ml.training.probe.fit_label_probes", spy)
        init_head_from_probe(model, train_split, collate, 8, labels, rows_per_label=5, seed=3)
    assert fitted_on == [expected] and expected < len(train_split)
