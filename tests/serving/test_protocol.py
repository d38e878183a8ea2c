"""What Hypercorn turns down before the app sees it (cockatoo_ml/serving/protocol.py), through a real server
started by start_api.sh and raw sockets: each rejection has a JSON body that says what was wrong, one escaped
access-log line and a count in /metrics; headers trickled byte by byte are cut off with a 408."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.serving import protocol
from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment
from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow

HEADER_TIMEOUT_S = 2


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    port = free_port()
    env = server_environment(
        os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_HEADER_TIMEOUT_S=str(HEADER_TIMEOUT_S)
    )
    log_path = tmp_path_factory.mktemp("protocol") / "server.log"
    running = ServerProcess.start_api(port, log_path, env).wait_ready()
    yield running
    assert running.terminate() == 0, running.output()


def connect(server: ServerProcess, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(("127.0.0.1", int(server.url.rsplit(":", 1)[1])), timeout=timeout)


def read_answer(client: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Status, headers and body of the one answer before the server closes the connection."""
    received = b""
    try:
        while chunk := client.recv(65536):
            received += chunk
    except ConnectionResetError:  # the server closed with part of a 100 KB request unread: the answer came first
        pass
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


def rejections(server: ServerProcess) -> dict[tuple[str, str], float]:
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    return {
        (sample.labels["status"], sample.labels["reason"]): sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "cockatoo_protocol_rejections"
        for sample in family.samples
        if sample.name.endswith("_total")
    }


CASES = {
    "a 100 KB header": (
        b"GET /health HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        431, "Receive buffer too long", "are over 16384 bytes",
    ),
    "a 100 KB URL": (
        b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        431, "Receive buffer too long", "send a shorter URL",
    ),
    "a bad request line": (b"GARBAGE\r\n\r\n", 400, "illegal request line", "send a valid HTTP/1.1 request"),
    "a negative Content-Length": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n", 400, "bad Content-Length",
        "malformed HTTP request (bad Content-Length)",
    ),
    "no Host header": (b"GET /health HTTP/1.1\r\n\r\n", 400, "Missing mandatory Host: header", "Host"),
    "an unsupported Transfer-Encoding": (
        b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 501,
        "Only Transfer-Encoding: chunked is supported", "send the body with Content-Length",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_rejection_is_explained_logged_and_counted(server: ServerProcess, case: str) -> None:
    raw, status, reason, explanation = CASES[case]
    before = rejections(server).get((str(status), reason), 0)
    with connect(server) as client:
        client.sendall(raw)
        got_status, headers, body = read_answer(client)
    assert got_status == status
    assert headers["content-type"] == "application/json" and headers["connection"] == "close"
    assert explanation in json.loads(body)["error"]
    assert rejections(server)[(str(status), reason)] == before + 1
    time.sleep(0.2)
    assert any(f" - - {status} rejected by Hypercorn: {reason}" in line for line in server.output().splitlines())


def test_a_rejected_request_line_cannot_forge_log_lines(server: ServerProcess) -> None:
    with connect(server) as client:
        client.sendall(b"GET /\x1b[31m\x00FORGED HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_answer(client)[0] == 400
    time.sleep(0.2)
    assert "\x1b" not in server.output() and "\x00" not in server.output()
    assert any("rejected by Hypercorn: illegal request line" in line and "\\x1b" in line for line in
               server.output().splitlines())


def test_headers_trickled_byte_by_byte_are_cut_off_with_a_408(server: ServerProcess) -> None:
    before = rejections(server).get(("408", protocol.HEADER_TIMEOUT_REASON), 0)
    started = time.monotonic()
    with connect(server) as client:
        for byte in b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n":  # 1 byte per second: would take 34 s
            try:
                client.sendall(bytes([byte]))
            except (BrokenPipeError, ConnectionResetError):
                break
            client.settimeout(1.0)
            try:
                if client.recv(1, socket.MSG_PEEK):
                    break  # the server has answered
            except TimeoutError:
                continue
        client.settimeout(10.0)
        status, _, body = read_answer(client)
    elapsed = time.monotonic() - started
    assert status == 408 and f"within {HEADER_TIMEOUT_S}s (COCKATOO_HEADER_TIMEOUT_S" in json.loads(body)["error"]
    assert HEADER_TIMEOUT_S - 0.5 < elapsed < HEADER_TIMEOUT_S + 2.5
    assert rejections(server)[("408", protocol.HEADER_TIMEOUT_REASON)] == before + 1


def test_an_idle_keep_alive_connection_closes_without_a_408(server: ServerProcess) -> None:
    before = rejections(server)
    with connect(server) as client:
        client.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        time.sleep(HEADER_TIMEOUT_S + 1)  # answered, then idle until the keep-alive timer closes it
        received = b""
        while chunk := client.recv(65536):
            received += chunk
    assert received.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" not in received
    assert rejections(server) == before


def test_an_answer_sent_before_the_body_arrived_says_connection_close(server: ServerProcess) -> None:
    # The 404 is decided from the request line alone; Hypercorn then closes the connection because the body
    # was not read. Without "connection: close" a client would send its next request into the closed connection.
    body = b'{"text": "x"}'
    with connect(server) as client:
        client.sendall(
            b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)
        )
        client.settimeout(10.0)
        assert client.recv(1, socket.MSG_PEEK)  # the answer comes before the body is sent
        client.sendall(body)
        status, headers, _ = read_answer(client)  # returns once the server has closed the connection
    assert status == 404 and headers.get("connection") == "close"


def test_an_answer_to_a_whole_request_keeps_the_connection_open(server: ServerProcess) -> None:
    body = b'{"text": "x"}'
    request = b"POST /nope HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    with connect(server) as client:
        client.sendall(request + request)  # the second request on the same connection is answered too
        client.settimeout(HEADER_TIMEOUT_S + 3)
        received = b""
        while received.count(b"HTTP/1.1 404") < 2 and (chunk := client.recv(65536)):
            received += chunk
    assert received.count(b"HTTP/1.1 404") == 2 and b"connection: close" not in received.lower()


def test_an_unknown_hypercorn_version_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(protocol, "_installed", False)
    monkeypatch.setattr(protocol.importlib.metadata, "version", lambda name: "0.19.0")
    with pytest.raises(ConfigError, match=r"hypercorn 0\.19\.0 is not supported.*pinned in requirements\.txt"):
        protocol.install()


def test_start_api_refuses_a_bad_header_timeout_in_one_line() -> None:
    done = subprocess.run(
        ["bash", "start_api.sh", "127.0.0.1", str(free_port()), "1"], check=False, cwd=REPO_ROOT, capture_output=True,
        text=True, env=server_environment(os.environ, COCKATOO_HEADER_TIMEOUT_S="0.5"), timeout=60,
    )
    # The settings layer turns it down before Hypercorn starts: one line naming the variable.
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: COCKATOO_HEADER_TIMEOUT_S='0.5' is not a whole number; fix it, or unset it (environment or .env) for "
        "the default"
    )
