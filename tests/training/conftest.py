"""Fixtures of the training tests: a loopback HTTP server that records what it receives."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


class RecordingServer:
    """An HTTP server on loopback that stores every POST (path, headers, JSON body); answers ``statuses`` in
    order, then 200."""

    def __init__(self, statuses: list[int] | None = None) -> None:
        self.requests: list[dict[str, Any]] = []
        self.statuses = list(statuses or [])
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                recorder.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(body)})
                self.send_response(recorder.statuses.pop(0) if recorder.statuses else 200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [r["body"] for r in self.requests if r["path"] == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    srv = RecordingServer()
    yield srv
    srv.close()


@pytest.fixture
def make_server() -> Iterator[Any]:
    """Factory for servers answering given status codes first; all are closed after the test."""
    servers: list[RecordingServer] = []

    def make(statuses: list[int] | None = None) -> RecordingServer:
        servers.append(RecordingServer(statuses))
        return servers[-1]

    yield make
    for srv in servers:
        srv.close()


@pytest.fixture(scope="module")
def module_server() -> Iterator[RecordingServer]:
    """A recording server shared by one test module (for fixtures that train once per module)."""
    srv = RecordingServer()
    yield srv
    srv.close()
