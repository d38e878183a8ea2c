"""A real Hypercorn process on loopback, driven with ``requests``: start-up via start_api.sh, concurrent clients,
errors over real HTTP, a failed start-up, and SIGTERM finishing in-flight requests."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cockatoo_ml.registry.serving import ServingSettings
from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment
from tests.conftest import EXAMPLES, REPO_ROOT

pytestmark = pytest.mark.slow

TEXTS = [text for texts in EXAMPLES.values() for text in texts]


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = server_environment(
        os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_MICRO_BATCH_WAIT_MS="20",
        COCKATOO_MAX_BODY_BYTES="65536",
    )
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    running = ServerProcess.start_api(free_port(), log_path, env).wait_ready()
    yield running
    assert running.terminate() == 0, running.output()


def test_predict_and_batch_over_http(server: ServerProcess) -> None:
    health = requests.get(f"{server.url}/health", timeout=10).json()
    assert health["status"] == "ok" and health["labels"] == ["scam", "violence", "nsfw", "harassment"]
    predict = requests.post(f"{server.url}/predict", json={"text": TEXTS[0], "threshold": 0.5}, timeout=10)
    assert predict.status_code == 200
    assert set(predict.json()) >= {"text", "predictions", "positive_labels", "top_label", "max_score", "error"}
    batch = requests.post(f"{server.url}/batch", json={"texts": TEXTS[:5]}, timeout=10).json()
    assert batch["count"] == 5 and [r["text"] for r in batch["results"]] == TEXTS[:5]


def test_start_api_gives_hypercorn_the_default_header_timeout(server: ServerProcess) -> None:
    arguments = Path(f"/proc/{server.process.pid}/cmdline").read_bytes().split(b"\0")  # exec'd: Hypercorn's pid
    assert arguments[arguments.index(b"--keep-alive") + 1] == str(ServingSettings().header_timeout_s).encode()


def test_errors_over_http(server: ServerProcess) -> None:
    malformed = requests.post(f"{server.url}/predict", data=b"{", headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "not valid JSON" in malformed.json()["error"]
    invalid = requests.post(f"{server.url}/predict", json={"text": "x", "threshold": 7})
    assert invalid.status_code == 422 and invalid.json()["detail"][0]["field"] == "threshold"
    too_big = requests.post(f"{server.url}/batch", json={"texts": ["x" * 1000] * 100}, timeout=10)
    assert too_big.status_code == 413 and "65536-byte limit" in too_big.json()["error"]


def test_concurrent_clients_get_their_own_answers(server: ServerProcess) -> None:
    expected = {
        r["text"]: r["predictions"]
        for r in requests.post(f"{server.url}/batch", json={"texts": TEXTS}, timeout=30).json()["results"]
    }
    before = _batches_scored(server)

    def client(offset: int) -> list[tuple[str, dict]]:
        with requests.Session() as session:
            answers = []
            for i in range(6):
                text = TEXTS[(offset + i) % len(TEXTS)]
                response = session.post(f"{server.url}/predict", json={"text": text}, timeout=30)
                assert response.status_code == 200, response.text
                answers.append((text, response.json()))
            return answers

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = [a for answers in pool.map(client, range(16)) for a in answers]
    assert len(answers) == 96
    for text, body in answers:
        assert body["text"] == text
        assert body["predictions"] == pytest.approx(expected[text], abs=2e-4)
    assert _batches_scored(server) - before < 96  # requests were coalesced into shared forward passes


def _batches_scored(server: ServerProcess) -> float:
    for line in requests.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith("cockatoo_batch_texts_count"):
            return float(line.split()[-1])
    raise AssertionError("cockatoo_batch_texts_count missing from /metrics")


def test_workers_share_the_cores_instead_of_each_taking_all(tiny_model_dir: Path, tmp_path: Path) -> None:
    from cockatoo_ml.inference.runtime import thread_plan

    env = server_environment(os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir))
    two = ServerProcess.start_api(free_port(), tmp_path / "two.log", env, workers=2).wait_ready()
    passes, threads = thread_plan(processes=2)  # the share of this machine's cores that each worker should take
    for _ in range(100):  # the second worker may still be loading when the first answers
        if two.output().count("forward passes at once") == 2:
            break
        time.sleep(0.2)
    assert two.terminate() == 0, two.output()  # SIGTERM passed on by start_api.sh: a clean stop
    plans = [line for line in two.log_path.read_text(errors="replace").splitlines() if "forward passes at once" in line]
    assert len(plans) == 2 and all(f"{passes} forward passes at once, {threads} torch threads each" in p for p in plans)


def test_missing_model_dir_stops_start_up_with_one_line(tmp_path: Path) -> None:
    missing = tmp_path / "no_model_here"
    result = subprocess.run(
        ["bash", "start_api.sh", "127.0.0.1", str(free_port()), "1"], cwd=REPO_ROOT,
        env=server_environment(os.environ, COCKATOO_MODEL_DIR=str(missing)), capture_output=True, text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"model directory {missing} does not exist" in errors[0]


def test_a_failed_multi_worker_start_up_exits_non_zero(tmp_path: Path) -> None:
    """Hypercorn's own supervisor exits 0 when its workers fail to start; start_api.sh must not."""
    missing = tmp_path / "no_model_here"
    result = subprocess.run(
        ["bash", "start_api.sh", "127.0.0.1", str(free_port()), "2"], cwd=REPO_ROOT,
        env=server_environment(os.environ, COCKATOO_MODEL_DIR=str(missing)), capture_output=True, text=True,
        timeout=300,
    )
    assert result.returncode != 0, result.stderr
    assert f"model directory {missing} does not exist" in result.stderr
    assert "a Hypercorn worker stopped on its own" in result.stderr


def test_sigterm_finishes_in_flight_requests(tiny_model_dir: Path, tmp_path: Path) -> None:
    env = server_environment(os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_TEST_SCORE_DELAY_S="2")
    slow = ServerProcess.hypercorn(
        "tests/serving/slow_app.py:app", free_port(), tmp_path / "slow.log", env, options=["--graceful-timeout", "20"]
    ).wait_ready()
    results: dict[str, requests.Response] = {}

    def call() -> None:
        results["response"] = requests.post(f"{slow.url}/batch", json={"texts": TEXTS[:4]}, timeout=60)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.5)  # the request is now inside the (slow) model call
    returncode = slow.terminate()
    caller.join(timeout=60)
    assert results["response"].status_code == 200, slow.output()
    assert results["response"].json()["count"] == 4
    assert returncode == 0, slow.output()
