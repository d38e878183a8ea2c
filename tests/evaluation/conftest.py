"""Fixtures of the evaluation tests: one real Hypercorn server for every test that scores through --url."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment

API_KEY = "evaluation-test-key"


@pytest.fixture(scope="package")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A real Hypercorn server with an API key and a /batch limit of 4 texts."""
    env = server_environment(os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_API_KEY=API_KEY,
                             COCKATOO_MAX_BATCH_TEXTS="4", COCKATOO_MAX_QUEUE="64", COCKATOO_DTYPE="float32")
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = ServerProcess.start_api(free_port(), log_path, env).wait_ready()
    yield running
    assert running.terminate() == 0, running.output()


@pytest.fixture
def float32_server_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process scoring sees exactly the server defaults, in float32 (scores exact to the last digit)."""
    for name in list(os.environ):
        if name.startswith("COCKATOO_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("COCKATOO_DTYPE", "float32")
