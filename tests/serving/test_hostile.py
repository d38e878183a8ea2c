"""Hostile clients against a real Hypercorn process on loopback: a failure inside a shared micro-batch, cost
limits in tokens, clients that disconnect or trickle their body, forged log lines."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from cockatoo_ml.serving.launch import ServerProcess as Server
from cockatoo_ml.serving.launch import free_port, server_environment
from tests.conftest import EXAMPLES

pytestmark = pytest.mark.slow

GOOD = [text for texts in EXAMPLES.values() for text in texts][:3]


@pytest.fixture(scope="module")
def faulty(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One model thread and a 300 ms batching window: requests sent together share a micro-batch."""
    env = server_environment(
        os.environ,
        COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_MICRO_BATCH_WAIT_MS="300", COCKATOO_MODEL_THREADS="1",
        COCKATOO_MAX_TEXT_TOKENS="1000", COCKATOO_MAX_REQUEST_TOKENS="1500", COCKATOO_MAX_QUEUE_TOKENS="3000",
        COCKATOO_BODY_TIMEOUT_S="1", COCKATOO_MAX_BODY_BYTES=str(2 * 1024 * 1024),
    )
    log_path = tmp_path_factory.mktemp("faulty") / "server.log"
    running = Server.hypercorn("tests/serving/faulty_app.py:app", free_port(), log_path, env).wait_ready()
    yield running
    running.terminate()


def metric(server: Server, name: str) -> float:
    for line in requests.get(f"{server.url}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} missing from /metrics")


def alone(server: Server, text: str) -> dict[str, float]:
    response = requests.post(f"{server.url}/predict", json={"text": text}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


def send_together(server: Server, bodies: list[tuple[str, dict]]) -> list[requests.Response]:
    """All requests at once, so that they land in one micro-batch."""
    start = threading.Barrier(len(bodies))

    def send(item: tuple[str, dict]) -> requests.Response:
        start.wait()
        return requests.post(f"{server.url}{item[0]}", json=item[1], timeout=60)

    with ThreadPoolExecutor(len(bodies)) as pool:
        return list(pool.map(send, bodies))


@pytest.mark.parametrize(("marker", "status"), [("FAIL:bug", 500), ("FAIL:input", 400)])
def test_a_failing_text_fails_only_its_own_request(faulty: Server, marker: str, status: int) -> None:
    expected = {text: alone(faulty, text) for text in GOOD}
    for _ in range(3):
        batches, texts = metric(faulty, "cockatoo_batch_texts_count"), metric(faulty, "cockatoo_batch_texts_sum")
        bodies = [("/predict", {"text": GOOD[0]}), ("/batch", {"texts": GOOD[1:]}), ("/predict", {"text": marker})]
        good_one, good_batch, bad = send_together(faulty, bodies)
        # the three requests shared one micro-batch of four texts
        assert metric(faulty, "cockatoo_batch_texts_count") - batches == 1
        assert metric(faulty, "cockatoo_batch_texts_sum") - texts == 4
        assert good_one.status_code == 200 and good_one.json()["predictions"] == expected[GOOD[0]]
        assert good_batch.status_code == 200
        assert [r["predictions"] for r in good_batch.json()["results"]] == [expected[t] for t in GOOD[1:]]
        assert bad.status_code == status
        error = bad.json()
        if status == 500:
            request_id = bad.headers["X-Request-ID"]
            assert error["request_id"] == request_id and request_id in error["error"]
            assert "injected" not in error["error"]  # a bug's details stay in the log
            log = faulty.output()
            assert log.count(f"request id {request_id}") == 1 and "RuntimeError: injected scoring bug" in log
        else:
            assert "cannot be scored" in error["error"]


def test_a_text_over_its_token_budget_is_413_naming_the_setting(faulty: Server) -> None:
    response = requests.post(f"{faulty.url}/predict", json={"text": "word " * 1200}, timeout=30)
    assert response.status_code == 413
    assert "COCKATOO_MAX_TEXT_TOKENS" in response.json()["error"] and response.json()["detail"][0]["field"] == "text"
    response = requests.post(f"{faulty.url}/batch", json={"texts": ["word " * 800, "word " * 800]}, timeout=30)
    assert response.status_code == 413 and "COCKATOO_MAX_REQUEST_TOKENS" in response.json()["error"]
    assert response.json()["detail"][0]["field"] == "texts.1"
    assert requests.post(f"{faulty.url}/batch", json={"texts": ["word " * 700] * 2}, timeout=30).status_code == 200


def test_a_megabyte_of_tokens_is_refused_without_scoring_or_counting_all_of_it(faulty: Server) -> None:
    texts_before = metric(faulty, "cockatoo_texts_total")
    response = requests.post(f"{faulty.url}/predict", json={"text": "a " * 500_000}, timeout=30)  # 500k tokens
    assert response.status_code == 413 and "COCKATOO_MAX_TEXT_TOKENS" in response.json()["error"]
    assert "1000000 characters" in response.json()["error"]  # refused by its length alone, before tokenizing
    response = requests.post(f"{faulty.url}/predict", json={"text": "a " * 7000}, timeout=30)  # 7000 tokens
    assert response.status_code == 413
    at_least = int(re.search(r"at least (\d+)", response.json()["error"]).group(1))
    assert 1000 < at_least < 7000  # a prefix was enough to refuse it
    assert metric(faulty, "cockatoo_texts_total") == texts_before


def test_texts_of_a_client_that_went_away_are_not_scored(faulty: Server) -> None:
    texts_before = metric(faulty, "cockatoo_texts_total")
    holder = threading.Thread(
        target=requests.post, args=(f"{faulty.url}/predict",), kwargs={"json": {"text": "SLOW: hold"}, "timeout": 30}
    )
    holder.start()
    time.sleep(0.5)  # the model thread is now busy with the slow text for a second
    body = json.dumps({"text": "nobody will read this answer"}).encode()
    with socket.create_connection(("127.0.0.1", int(faulty.url.rsplit(":", 1)[1]))) as client:
        client.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
        )
        time.sleep(0.2)  # queued behind the slow text
    holder.join(timeout=30)
    time.sleep(0.5)
    assert metric(faulty, "cockatoo_texts_total") - texts_before == 1  # only the slow text was scored
    assert metric(faulty, "cockatoo_queue_texts") == 0


def test_a_trickled_body_times_out(faulty: Server) -> None:
    with socket.create_connection(("127.0.0.1", int(faulty.url.rsplit(":", 1)[1])), timeout=10) as client:
        client.sendall(b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 40\r\n\r\n")
        answer = b""
        for byte in b'{"text": "slowly, one byte at a time"}  ':
            client.sendall(bytes([byte]))
            time.sleep(0.2)
            client.setblocking(False)
            try:
                answer += client.recv(65536)
            except BlockingIOError:
                pass
            client.setblocking(True)
            if answer:
                break
        assert answer.startswith(b"HTTP/1.1 408"), answer
        assert b"COCKATOO_BODY_TIMEOUT_S" in answer


def test_control_characters_cannot_forge_access_log_lines(faulty: Server) -> None:
    forged = "22:16:00 INFO cockatoo_ml.access 127.0.0.1 GET /health 200 FORGED"
    requests.get(f"{faulty.url}/nope%0a{forged.replace(' ', '%20')}%1b[31m", timeout=10)
    time.sleep(0.2)
    lines = faulty.output().splitlines()
    assert not any(line.startswith("22:16:00") for line in lines)
    assert any("/nope\\n22:16:00" in line and "\\x1b[31m" in line for line in lines)
    assert "\x1b" not in faulty.output()
