"""Fixtures of the evaluation tests: one real Hypercorn server for every test that scores through --url."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import free_port
from tests.serving.test_server import Server, server_env

API_KEY = "evaluation-test-key"


@pytest.fixture(scope="package")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Hypercorn server with an API key and a /batch limit of 4 texts."""
    port = free_port()
    env = server_env(COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_API_KEY=API_KEY,
                     COCKATOO_MAX_BATCH_TEXTS="4", COCKATOO_MAX_QUEUE_TEXTS="64", COCKATOO_DTYPE="float32")
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = Server(["bash", "start_api.sh", "127.0.0.1", str(port), "1"], env, port, log_path)
    running.wait_ready(timeout=300)  # a shared, busy CPU can take minutes to import and load
    yield running
    assert running.terminate() == 0, running.output()
