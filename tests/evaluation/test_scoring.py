"""Scoring: a model directory in-process exactly as the server scores it, and a real Hypercorn server on
loopback through /batch (API key, batch limit)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cockatoo_ml.errors import ConfigError, ModelLoadError
from cockatoo_ml.evaluation import scoring
from cockatoo_ml.evaluation.scoring import LocalScorer, RemoteError, RemoteScorer, parse_headers
from cockatoo_ml.inference.loading import check_model_dir
from cockatoo_ml.serving.launch import ServerProcess, free_port
from cockatoo_ml.inference.classifier import TextClassifier
from tests.conftest import EXAMPLES
from tests.evaluation.conftest import API_KEY

LONG_TEXT = " ".join(EXAMPLES["harassment"] * 8)  # far past the tiny model's 64-token window
TEXTS = [text for texts in EXAMPLES.values() for text in texts] + [LONG_TEXT]


def test_local_scorer_scores_as_the_server_does(
    tiny_model_dir: Path, float32_server_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scoring.defaults, "SCORE_CHUNK_TEXTS", 4)  # several chunks, re-ordered by length
    scorer = LocalScorer(tiny_model_dir)
    reference = TextClassifier.load(tiny_model_dir, dtype="float32")
    expected = np.array([result.scores for result in reference.score(TEXTS)])
    assert reference.score([LONG_TEXT])[0].windows > 1
    np.testing.assert_allclose(scorer.score(TEXTS, progress=False), expected, atol=1e-6)
    assert scorer.labels == reference.labels and scorer.thresholds == {
        "scam": 0.4, "violence": 0.5, "nsfw": 0.6, "harassment": 0.5
    }


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: [p.unlink() for p in d.glob("*.safetensors")], "has no weights"),
        (lambda d: (d / "config.json").write_text(json.dumps({"model_type": "bert"})), "names no labels"),
        (lambda d: shutil.rmtree(d), "does not exist"),
    ],
)
def test_incomplete_model_directory_is_refused_before_loading(
    tiny_model_dir: Path, tmp_path: Path, damage, message: str  # type: ignore[no-untyped-def]
) -> None:
    broken = tmp_path / "model"
    shutil.copytree(tiny_model_dir, broken)
    damage(broken)
    with pytest.raises(ModelLoadError, match=message):
        check_model_dir(broken)


def test_headers_are_parsed_like_curl() -> None:
    assert parse_headers(["Authorization: Bearer k:ey", "X-A:b"]) == {"Authorization": "Bearer k:ey", "X-A": "b"}
    with pytest.raises(ConfigError, match="Name: value"):
        parse_headers(["Authorization Bearer key"])


@pytest.mark.slow
def test_remote_scores_match_local_within_the_batch_limit(server: ServerProcess, tiny_model_dir: Path) -> None:
    remote = RemoteScorer(server.url, {"Authorization": f"Bearer {API_KEY}"}, batch_texts=10)
    scores = remote.score(TEXTS, progress=False)
    assert remote.batch_texts <= 4  # the server's 413 halved the requests until they fit
    reference = TextClassifier.load(tiny_model_dir, dtype="float32")
    expected = np.array([result.scores for result in reference.score(TEXTS)])
    np.testing.assert_allclose(scores, expected, atol=6e-5)  # the server rounds to 4 places
    assert remote.labels == reference.labels and remote.thresholds == reference.thresholds
    assert "n_texts=10" not in server.output() and "n_texts=2" in server.output()  # 10 -> 5 -> 2 per request


@pytest.mark.slow
def test_remote_errors_are_one_clear_line(server: ServerProcess) -> None:
    health_only = RemoteScorer(server.url)  # /health is open, /batch is not
    with pytest.raises(RemoteError, match=r"answered 401: .*--header 'Authorization: Bearer KEY'"):
        health_only.score(["hello"], progress=False)
    with pytest.raises(RemoteError, match="cannot reach .* is the server running"):
        RemoteScorer(f"http://127.0.0.1:{free_port()}")
