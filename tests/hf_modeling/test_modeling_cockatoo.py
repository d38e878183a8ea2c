"""A mean-pooling model directory as the Hugging Face tools see it. In a process that has only torch and
transformers (tests/hf_modeling/hub_user.py): with trust_remote_code it scores as our server does, without it
loading stops and says why; it survives save_pretrained and an upload through huggingface_hub. In our own
process the same directory loads as local code, without being asked about trust."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from cockatoo_ml.hf_modeling import modeling_cockatoo
from cockatoo_ml.modeling import load_classifier
from tests.conftest import WINDOW_TEXTS, server_scores
from tests.hf_modeling.hub_user import hub_user
from tests.hf_modeling.fake_hub import FakeHub

CODE_FILE = Path(modeling_cockatoo.__file__).name
TOLERANCE = 1e-5  # float32, texts within one window
CARD = "---\nlibrary_name: transformers\ntags: [custom_code]\n---\n\n# tiny\n"
TRANSFORMERS_WAYS = ("pipeline", "AutoModelForSequenceClassification")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, tiny_mean_model_dir: Path) -> dict:
    """The tiny mean model as written (``written``, with a model card), the copy that ``hf upload`` to a loopback
    stand-in for the Hub delivered (``arrived``), and the one a transformers user re-saved after loading it with
    trust_remote_code (``resaved``); and what tests/hf_modeling/hub_user.py reports for each, in one process."""
    root = tmp_path_factory.mktemp("hub")
    written = root / "written"
    shutil.copytree(tiny_mean_model_dir, written)
    (written / "README.md").write_text(CARD)
    fake = FakeHub(root / "fake_hub")
    try:  # the command the model card gives, with huggingface_hub's CLI
        hf = Path(sys.executable).with_name("hf")
        env = {**os.environ, "HF_ENDPOINT": fake.url, "HF_TOKEN": "hf_test", "HF_HUB_OFFLINE": "0"}
        subprocess.run([hf, "upload", "someone/tiny-cockatoo", written, "."], env=env, check=True, timeout=120)
    finally:
        fake.close()
    dirs = {"written": written, "arrived": fake.root / "someone" / "tiny-cockatoo", "resaved": root / "resaved"}
    seen = hub_user(WINDOW_TEXTS, *dirs.values(), resave=(written, dirs["resaved"]))
    return {"dirs": dirs, "fake": fake, "seen": {name: seen[str(path)] for name, path in dirs.items()}}


def files_of(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


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
    tree = ast.parse(Path(modeling_cockatoo.__file__).read_text())
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not any(isinstance(node, ast.ImportFrom) and node.level for node in ast.walk(tree))  # nothing relative
    assert imported <= {"__future__", "typing", "torch", "transformers"}


@pytest.mark.parametrize("copy", ["written", "arrived", "resaved"])
def test_with_trust_remote_code_transformers_runs_the_directorys_code_and_scores_as_the_server(
    hub: dict, copy: str
) -> None:
    seen = hub["seen"][copy]
    # the copy of the code in the directory ran (a module transformers made from it), not the package
    assert seen["module"].startswith("transformers_modules.") and seen["module"].endswith(".modeling_cockatoo")
    reference = server_scores(hub["dirs"]["written"], WINDOW_TEXTS)
    for way in TRANSFORMERS_WAYS:
        np.testing.assert_allclose(seen[way], reference, rtol=0, atol=TOLERANCE, err_msg=way)


@pytest.mark.parametrize("copy", ["written", "arrived", "resaved"])
def test_without_trust_remote_code_every_loader_stops_and_asks_for_it(hub: dict, copy: str) -> None:
    errors = hub["seen"][copy]["without_trust_remote_code"]
    assert set(errors) == {"AutoConfig", "AutoModelForSequenceClassification", "pipeline"}
    for loader, error in errors.items():
        assert error is not None, f"{loader} loaded {copy} without trust_remote_code"
        assert error.startswith("ValueError: ") and "contains custom code" in error, loader
        assert "Please pass the argument `trust_remote_code=True`" in error, loader


def test_save_pretrained_after_remote_loading_writes_the_code_file_and_our_server_reads_it(hub: dict) -> None:
    written, resaved = hub["dirs"]["written"], hub["dirs"]["resaved"]
    assert (resaved / CODE_FILE).read_bytes() == (written / CODE_FILE).read_bytes()
    assert json.loads((resaved / "config.json").read_text())["auto_map"] == json.loads(
        (written / "config.json").read_text()
    )["auto_map"]
    np.testing.assert_allclose(
        server_scores(resaved, WINDOW_TEXTS), server_scores(written, WINDOW_TEXTS), rtol=0, atol=TOLERANCE
    )


def test_an_upload_of_the_directory_as_written_delivers_every_file_unchanged(hub: dict) -> None:
    """``hf upload`` (huggingface_hub's CLI) against a loopback stand-in for the Hub's API: the directory goes
    whole, its card's YAML is sent for validation, the token is used."""
    written, arrived, fake = hub["dirs"]["written"], hub["dirs"]["arrived"], hub["fake"]
    assert files_of(arrived) == files_of(written) and CODE_FILE in files_of(arrived)
    assert fake.validated_yaml == [CARD]
    assert {auth for _, auth in fake.requests} == {"Bearer hf_test"}


def test_our_process_loads_the_directory_as_local_code_without_asking(tiny_mean_model_dir: Path, capsys) -> None:
    """The server, training and evaluation read such directories with plain Auto classes: transformers must not
    stop for 15 s to ask about trust on a terminal, nor run the directory's copy of the code."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    assert type(AutoConfig.from_pretrained(tiny_mean_model_dir)) is modeling_cockatoo.CockatooConfig
    model = AutoModelForSequenceClassification.from_pretrained(tiny_mean_model_dir)
    assert type(model) is modeling_cockatoo.CockatooForSequenceClassification
    AutoTokenizer.from_pretrained(tiny_mean_model_dir)
    assert "trust_remote_code" not in capsys.readouterr().out


def test_labels_give_the_multi_label_loss(tiny_mean_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    model = load_classifier(tiny_mean_model_dir)
    inputs = AutoTokenizer.from_pretrained(tiny_mean_model_dir)(["one text", "and another"], padding=True, return_tensors="pt")
    labels = torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]])
    out = model(**inputs, labels=labels)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(out.logits, labels)
    assert out.loss is not None and torch.allclose(out.loss, expected)
    assert model(**inputs).loss is None
