"""The classifier architectures of a model directory: mean pooling saved and loaded whole, HF heads as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer, BertForSequenceClassification

from cockatoo_ml.modeling import (
    POOLING_KEY,
    WEIGHTS_FILE,
    MeanPoolingClassifier,
    freeze_bottom_layers,
    load_classifier,
    new_classifier,
    pooling_of,
    set_dropout,
)
from cockatoo_ml.hf_modeling.modeling_cockatoo import mean_pool
from cockatoo_ml.inference.classifier import TextClassifier


def _inputs(model_dir: Path, texts: list[str]) -> dict[str, torch.Tensor]:
    return dict(AutoTokenizer.from_pretrained(model_dir)(texts, padding=True, return_tensors="pt"))


def test_mean_pool_ignores_padding() -> None:
    states = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    assert mean_pool(states, torch.tensor([[1, 1, 0]])).tolist() == [[2.0, 3.0]]


def test_new_mean_classifier_reads_the_encoder_without_its_pooler(tiny_model_dir: Path, labels) -> None:
    model = new_classifier(str(tiny_model_dir), labels, "mean")
    assert isinstance(model, MeanPoolingClassifier)
    assert model.encoder.pooler is None  # a [CLS] pooler would be weights without gradients
    assert model.config.id2label == dict(enumerate(labels))
    assert getattr(model.config, POOLING_KEY) == "mean"
    logits = model.eval()(**_inputs(tiny_model_dir, ["hello there", "a much longer text than the first one"])).logits
    assert logits.shape == (2, len(labels))


@pytest.mark.parametrize("made", ["loaded", "new"])
def test_a_text_scores_the_same_alone_and_padded_in_a_batch(
    tiny_mean_model_dir: Path, tiny_model_dir: Path, labels, made: str
) -> None:
    # "new": as training builds it, from a pretrained encoder whose attention must still mask the padding
    model = load_classifier(tiny_mean_model_dir) if made == "loaded" else new_classifier(str(tiny_model_dir), labels, "mean").eval()
    alone = model(**_inputs(tiny_mean_model_dir, ["short text"])).logits
    batched = model(**_inputs(tiny_mean_model_dir, ["short text", "a considerably longer text that forces padding"])).logits
    assert torch.allclose(alone[0], batched[0], atol=1e-5)


def test_mean_model_round_trips_through_its_directory(tiny_model_dir: Path, tmp_path: Path, labels) -> None:
    torch.manual_seed(1)
    model = new_classifier(str(tiny_model_dir), labels, "mean").eval()
    model.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config[POOLING_KEY] == "mean" and config["id2label"]["3"] == labels[3]
    assert pooling_of(tmp_path) == "mean"
    loaded = load_classifier(tmp_path)
    assert not loaded.training  # ready to score
    inputs = _inputs(tiny_model_dir, ["the same weights give the same logits", "twice"])
    assert torch.equal(model(**inputs).logits, loaded(**inputs).logits)


def test_plain_hugging_face_checkpoints_still_load_as_they_are(tiny_model_dir: Path) -> None:
    assert pooling_of(tiny_model_dir) == "cls"
    assert isinstance(load_classifier(tiny_model_dir), BertForSequenceClassification)


def test_the_server_scores_a_mean_model_like_the_model_itself(tiny_mean_model_dir: Path) -> None:
    texts = ["I will hurt you", "what a lovely day"]
    served = TextClassifier.load(tiny_mean_model_dir, dtype="float32").score(texts)
    direct = torch.sigmoid(load_classifier(tiny_mean_model_dir)(**_inputs(tiny_mean_model_dir, texts)).logits)
    for score, row in zip(served, direct):
        assert score.scores == pytest.approx(row.tolist(), abs=1e-5)


def save_as_before_issue_21(model: MeanPoolingClassifier, folder: Path) -> None:
    """A mean-pooling directory as this project wrote them before modeling_cockatoo.py: the encoder's own
    config.json carrying the labels and ``cockatoo_pooling``, the same weights, no code."""
    from safetensors.torch import save_file

    config = type(model.config.encoder).from_dict(model.config.encoder.to_dict())
    config.id2label, config.label2id = model.config.id2label, model.config.label2id
    config.problem_type = model.config.problem_type
    setattr(config, POOLING_KEY, "mean")
    config.save_pretrained(folder)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / WEIGHTS_FILE), metadata={"format": "pt"})


def test_a_mean_directory_written_before_the_shipped_code_still_loads_and_upgrades_in_place(
    tiny_mean_model_dir: Path, tmp_path: Path, labels
) -> None:
    model = load_classifier(tiny_mean_model_dir)
    old = tmp_path / "old"
    save_as_before_issue_21(model, old)
    AutoTokenizer.from_pretrained(tiny_mean_model_dir).save_pretrained(old)
    assert json.loads((old / "config.json").read_text())["model_type"] == "bert" and pooling_of(old) == "mean"
    texts = ["the same weights give the same scores", "in the old directory and the new"]
    expected = TextClassifier.load(tiny_mean_model_dir, dtype="float32").score(texts)
    assert TextClassifier.load(old, dtype="float32").score(texts) == expected  # the server reads it as it did
    # loading it and saving it again, in place, is the upgrade: the code file and auto_map arrive
    load_classifier(old).save_pretrained(old)
    config = json.loads((old / "config.json").read_text())
    assert config["model_type"] == "cockatoo" and "AutoModelForSequenceClassification" in config["auto_map"]
    assert (old / "modeling_cockatoo.py").is_file() and config["id2label"]["3"] == labels[3]
    assert TextClassifier.load(old, dtype="float32").score(texts) == expected


@pytest.mark.parametrize("damage", ["truncated weights", "unknown pooling", "foreign weights"])
def test_a_damaged_mean_model_is_refused(tiny_mean_model_dir: Path, tmp_path: Path, damage: str) -> None:
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_mean_model_dir, broken)
    if damage == "truncated weights":
        (broken / WEIGHTS_FILE).write_bytes((broken / WEIGHTS_FILE).read_bytes()[:100])
    elif damage == "unknown pooling":
        config = json.loads((broken / "config.json").read_text())
        (broken / "config.json").write_text(json.dumps({**config, POOLING_KEY: "max"}))
    else:
        from safetensors.torch import save_file

        save_file({"something.else": torch.zeros(2)}, str(broken / WEIGHTS_FILE))
    with pytest.raises((OSError, ValueError)):
        load_classifier(broken)


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_freezing_stops_the_embeddings_and_the_bottom_layers_only(tiny_model_dir: Path, labels, pooling: str) -> None:
    model = new_classifier(str(tiny_model_dir), labels, pooling)  # type: ignore[arg-type]
    everything = sum(p.numel() for p in model.parameters())
    assert freeze_bottom_layers(model, 0) == (everything, everything)
    trainable, total = freeze_bottom_layers(model, 1)  # of the tiny model's 2 layers
    frozen = {name for name, p in model.named_parameters() if not p.requires_grad}
    assert total == everything and trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert frozen and all(".embeddings." in n or ".layer.0." in n for n in frozen)
    assert any(".embeddings.word_embeddings." in n for n in frozen)
    assert not any(".layer.1." in n or "classifier" in n for n in frozen)  # the top layer and the head train


def test_freezing_more_layers_than_the_encoder_has_is_refused(tiny_model_dir: Path, labels) -> None:
    model = new_classifier(str(tiny_model_dir), labels, "mean")
    with pytest.raises(ValueError, match="the encoder has 2"):
        freeze_bottom_layers(model, 3)
    assert all(p.requires_grad for p in model.parameters())  # refused before anything was frozen


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_dropout_zero_makes_training_mode_deterministic(tiny_model_dir: Path, labels, pooling: str) -> None:
    model = new_classifier(str(tiny_model_dir), labels, pooling).train()  # type: ignore[arg-type]
    inputs = _inputs(tiny_model_dir, ["some text to score", "and a second, longer one to pad the first"])
    torch.manual_seed(0)
    assert not torch.equal(model(**inputs).logits, model(**inputs).logits)  # the base model's own dropout
    assert set_dropout(model, 0.0) >= 4  # embeddings, attention, two per layer, head
    assert torch.equal(model(**inputs).logits, model(**inputs).logits)
    assert all(m.p == 0.0 for m in model.modules() if isinstance(m, torch.nn.Dropout))
