"""launch.py against small stand-in servers (no model): free ports, the server's environment, waiting for
/health, a server that dies or never answers, and stopping a server started as a child of a script."""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path

import psutil
import pytest
import requests

from cockatoo_ml.registry.paths import REPO_ROOT
from cockatoo_ml.serving.launch import ServerNotReady, ServerProcess, free_port, server_environment

# Answers GET /health after --delay seconds (as a server loading a model), and stops cleanly on SIGTERM.
HEALTH_SERVER = """
import signal, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

port, delay = int(sys.argv[1]), float(sys.argv[2])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))

class Health(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200 if self.path == "/health" else 404)
        self.end_headers()
        self.wfile.write(b'{"status": "ok"}')

print("loading", flush=True)
time.sleep(delay)
HTTPServer(("127.0.0.1", port), Health).serve_forever()
"""


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "health_server.py"
    path.write_text(HEALTH_SERVER)
    return path


def test_free_port_is_a_loopback_port_nobody_listens_on() -> None:
    port = free_port()
    with pytest.raises(ConnectionRefusedError), socket.create_connection(("127.0.0.1", port), timeout=2):
        pass
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", port))  # and it can be taken


def test_server_environment_drops_other_cockatoo_settings_and_keeps_the_rest() -> None:
    base = {"PATH": "/usr/bin", "COCKATOO_API_KEY": "from the shell", "COCKATOO_DTYPE": "int8"}
    env = server_environment(base, COCKATOO_DTYPE="float32")
    assert env["PATH"] == "/usr/bin" and env["COCKATOO_DTYPE"] == "float32"
    assert "COCKATOO_API_KEY" not in env
    assert env["PYTHONPATH"] == str(REPO_ROOT) and env["HF_HUB_OFFLINE"] == "1"
    assert base["COCKATOO_API_KEY"] == "from the shell"  # the caller's mapping is left alone


def test_wait_ready_returns_once_health_answers_and_terminate_stops_it(script: Path, tmp_path: Path) -> None:
    port = free_port()
    with ServerProcess([sys.executable, str(script), str(port), "1"], port, tmp_path / "log") as server:
        assert server.wait_ready(timeout=60) is server
        assert requests.get(f"{server.url}/health", timeout=5).status_code == 200
        assert "loading" in server.output()
    assert server.process.returncode == 0  # SIGTERM, handled
    assert "loading" in server.output()  # still readable once stopped (for assertion messages)


def test_a_server_that_exits_is_not_ready_and_its_output_says_why(tmp_path: Path) -> None:
    command = [sys.executable, "-c", "import sys; print('error: no model here'); sys.exit(2)"]
    server = ServerProcess(command, free_port(), tmp_path / "log")
    with pytest.raises(ServerNotReady, match=r"exited with 2:\nerror: no model here"):
        server.wait_ready(timeout=60)


def test_a_server_that_never_answers_is_killed_after_the_timeout(script: Path, tmp_path: Path) -> None:
    port = free_port()
    server = ServerProcess([sys.executable, str(script), str(port), "600"], port, tmp_path / "log")
    started = time.monotonic()
    with pytest.raises(ServerNotReady, match=f"no answer on {server.url}/health in 1 s"):
        server.wait_ready(timeout=1)
    assert time.monotonic() - started < 30
    assert server.process.poll() is not None


def test_own_group_stops_a_server_started_by_a_script(script: Path, tmp_path: Path) -> None:
    port = free_port()
    command = ["bash", "-c", f"{sys.executable} {script} {port} 0 & wait"]  # the server is the script's child
    server = ServerProcess(command, port, tmp_path / "log", own_group=True).wait_ready(timeout=60)
    [child] = psutil.Process(server.process.pid).children()
    server.terminate()
    deadline = time.monotonic() + 30
    while not gone(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert gone(child), "the server outlived the script that started it"


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # dead, waiting for its parent (here: init) to reap it
    except psutil.NoSuchProcess:
        return True
