"""A mean-pooling model directory as the Hugging Face tools see it: loaded with trust_remote_code it scores as
the server does, without it loading stops and says why, and it survives save_pretrained and an upload."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cockatoo_ml.hf_modeling import modeling_cockatoo
from cockatoo_ml.modeling import load_classifier
from tests.conftest import WINDOW_TEXTS, server_scores, transformers_scores

CODE_FILE = Path(modeling_cockatoo.__file__).name
TOLERANCE = 1e-5  # float32, texts within one window


def assert_scores_match(model_dir: Path, reference: list[list[float]], texts: list[str] = WINDOW_TEXTS) -> None:
    for via, scores in transformers_scores(model_dir, texts).items():
        assert len(scores) == len(reference), via
        for text, got, want in zip(texts, scores, reference, strict=True):
            assert got == pytest.approx(want, abs=TOLERANCE), (via, text)


def test_the_directory_ships_the_package_file_and_names_its_classes(tiny_mean_model_dir: Path) -> None:
    assert (tiny_mean_model_dir / CODE_FILE).read_bytes() == Path(modeling_cockatoo.__file__).read_bytes()
    config = json.loads((tiny_mean_model_dir / "config.json").read_text())
    assert config["model_type"] == "cockatoo" and config["architectures"] == ["CockatooForSequenceClassification"]
    assert config["auto_map"] == {
        "AutoConfig": "modeling_cockatoo.CockatooConfig",
        "AutoModelForSequenceClassification": "modeling_cockatoo.CockatooForSequenceClassification",
    }
    assert config["encoder"]["model_type"] == "bert" and config["cockatoo_pooling"] == "mean"


def test_the_shipped_file_imports_only_torch_and_transformers() -> None:
    """A Hub user has neither cockatoo_ml nor its dependencies."""
    tree = ast.parse(Path(modeling_cockatoo.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))  # nothing relative
    assert imported <= {"__future__", "typing", "torch", "transformers"}


def test_transformers_with_trust_remote_code_scores_as_the_server(tiny_mean_model_dir: Path) -> None:
    from transformers import AutoModelForSequenceClassification

    model = AutoModelForSequenceClassification.from_pretrained(tiny_mean_model_dir, trust_remote_code=True)
    # the directory's own copy of the code ran, not the package's class
    assert type(model).__module__.startswith("transformers_modules.") and type(model).__module__.endswith(".modeling_cockatoo")
    assert_scores_match(tiny_mean_model_dir, server_scores(tiny_mean_model_dir, WINDOW_TEXTS))


@pytest.mark.parametrize("loader", ["AutoConfig", "AutoModelForSequenceClassification", "pipeline"])
def test_without_trust_remote_code_loading_stops_and_asks_for_it(tiny_mean_model_dir: Path, loader: str) -> None:
    import transformers

    # loaded once with trust first: what that registers in this process must not let the next load through
    transformers.AutoModelForSequenceClassification.from_pretrained(tiny_mean_model_dir, trust_remote_code=True)
    load = {
        "AutoConfig": transformers.AutoConfig.from_pretrained,
        "AutoModelForSequenceClassification": transformers.AutoModelForSequenceClassification.from_pretrained,
        "pipeline": lambda path: transformers.pipeline("text-classification", model=str(path)),
    }[loader]
    with pytest.raises(ValueError, match=r"(?s)contains custom code.*pass the argument `trust_remote_code=True`"):
        load(tiny_mean_model_dir)


def test_save_pretrained_after_remote_loading_writes_a_directory_that_loads_again(
    tiny_mean_model_dir: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(tiny_mean_model_dir, trust_remote_code=True)
    model.save_pretrained(tmp_path)
    AutoTokenizer.from_pretrained(tiny_mean_model_dir).save_pretrained(tmp_path)
    assert (tmp_path / CODE_FILE).read_bytes() == (tiny_mean_model_dir / CODE_FILE).read_bytes()
    assert json.loads((tmp_path / "config.json").read_text())["auto_map"]["AutoConfig"] == "modeling_cockatoo.CockatooConfig"
    reference = server_scores(tiny_mean_model_dir, WINDOW_TEXTS)
    assert_scores_match(tmp_path, reference)
    assert np.allclose(server_scores(tmp_path, WINDOW_TEXTS), reference, rtol=0, atol=TOLERANCE)  # our server too
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)


def test_the_directory_as_written_uploads_whole_and_loads_from_where_it_arrived(
    tiny_mean_model_dir: Path, tmp_path: Path, fake_hub
) -> None:
    """huggingface_hub's own upload (what ``hf upload`` and ``upload_folder`` run), to a loopback stand-in for the
    Hub: every file arrives unchanged and the arrived copy loads in transformers with the server's scores."""
    from huggingface_hub import HfApi

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_mean_model_dir, model_dir)
    (model_dir / "README.md").write_text("---\nlibrary_name: transformers\ntags: [custom_code]\n---\n\n# tiny\n")
    api = HfApi(endpoint=fake_hub.url, token="hf_test")
    repo = api.create_repo("someone/tiny-cockatoo").repo_id
    api.upload_folder(folder_path=model_dir, repo_id=repo)

    arrived = fake_hub.root / "someone" / "tiny-cockatoo"
    files = sorted(p.relative_to(model_dir).as_posix() for p in model_dir.rglob("*") if p.is_file())
    assert sorted(p.relative_to(arrived).as_posix() for p in arrived.rglob("*") if p.is_file()) == files
    assert all((arrived / name).read_bytes() == (model_dir / name).read_bytes() for name in files)
    assert CODE_FILE in files and fake_hub.validated_yaml == [(model_dir / "README.md").read_text()]
    assert {auth for _, auth in fake_hub.requests} == {"Bearer hf_test"}
    assert_scores_match(arrived, server_scores(tiny_mean_model_dir, WINDOW_TEXTS))


def test_a_text_scores_the_same_alone_and_padded_in_a_batch_after_remote_loading(tiny_mean_model_dir: Path) -> None:
    texts = ["short", "a considerably longer text that forces padding of the first one"]
    alone, batched = transformers_scores(tiny_mean_model_dir, texts[:1]), transformers_scores(tiny_mean_model_dir, texts)
    for via in alone:
        assert batched[via][0] == pytest.approx(alone[via][0], abs=TOLERANCE), via


def test_labels_give_the_multi_label_loss(tiny_mean_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    model = load_classifier(tiny_mean_model_dir)
    inputs = AutoTokenizer.from_pretrained(tiny_mean_model_dir)(["one text", "and another"], padding=True, return_tensors="pt")
    labels = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    out = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels)
    assert out.loss is not None and torch.allclose(out.loss, expected)
    assert model(**inputs).loss is None
