"""A real server process on loopback, started and waited for until it answers ``GET /health``: what the tests
that need real HTTP and the serving benchmarks run, and what a script that drives the API can use too.

    env = server_environment(os.environ, COCKATOO_MODEL_DIR="data/demo_model")
    with ServerProcess.start_api(free_port(), Path("server.log"), env).wait_ready() as server:
        requests.post(f"{server.url}/predict", json={"text": "hello"})
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from cockatoo_ml.registry.paths import REPO_ROOT

LOOPBACK = "127.0.0.1"
LOG_TAIL_CHARS = 5000  # of the server's output, in the error when it never became ready


class ServerNotReady(RuntimeError):
    """The server exited, or did not answer /health in time; the message ends with the tail of its output."""


def free_port(host: str = LOOPBACK) -> int:
    """A port nobody listens on right now: bound, then released (so also a port where a client finds nobody)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def server_environment(base: Mapping[str, str], **settings: str) -> dict[str, str]:
    """``base`` (say ``os.environ``) without any ``COCKATOO_*`` variable, with this checkout importable and the
    Hub offline, plus ``settings``: a server that sees exactly the settings it is given."""
    env = {name: value for name, value in base.items() if not name.startswith("COCKATOO_")}
    env.update(PYTHONPATH=str(REPO_ROOT), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", **settings)
    return env


class ServerProcess:
    """``command`` running in this checkout with its output in ``log_path``, serving on loopback ``port``.

    ``own_group`` starts it in a process group of its own, and ``terminate`` then signals the whole group: for a
    command that starts the server as one of its children (``quickstart.sh``). Without it, only the process
    itself is signalled, which is how ``start_api.sh`` must be stopped (it passes SIGTERM on itself)."""

    def __init__(
        self,
        command: Sequence[str],
        port: int,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        *,
        own_group: bool = False,
    ) -> None:
        self.port = port
        self.url = f"http://{LOOPBACK}:{port}"
        self.log_path = Path(log_path)
        self._log = self.log_path.open("wb")  # a file, not a pipe: nobody has to keep draining the output
        self._own_group = own_group
        self.command = list(command)
        self.process = subprocess.Popen(
            self.command,
            cwd=REPO_ROOT,
            env=dict(env) if env is not None else None,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=own_group,
        )

    @classmethod
    def start_api(
        cls, port: int, log_path: Path, env: Mapping[str, str] | None = None, workers: int = 1
    ) -> ServerProcess:
        """``./start_api.sh 127.0.0.1 PORT WORKERS``: the server as its users start it."""
        return cls(["bash", "start_api.sh", LOOPBACK, str(port), str(workers)], port, log_path, env)

    @classmethod
    def hypercorn(
        cls, app: str, port: int, log_path: Path, env: Mapping[str, str] | None = None, options: Sequence[str] = ()
    ) -> ServerProcess:
        """``hypercorn APP`` from this interpreter's environment, in one process (``--workers 0``: no supervisor),
        e.g. ``app="tests/serving/slow_app.py:app"``; ``options`` are more Hypercorn flags."""
        hypercorn = Path(sys.executable).with_name("hypercorn")
        command = [str(hypercorn), app, "--bind", f"{LOOPBACK}:{port}", "--workers", "0", *options]
        return cls(command, port, log_path, env)

    def wait_ready(self, timeout: float = 600.0) -> ServerProcess:
        """Return once ``GET /health`` answers 200; raise ``ServerNotReady`` if the process exits first or
        ``timeout`` seconds pass (then it is killed). Importing torch and loading a model took over 5 minutes on
        a shared 2-core machine busy with a training run."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerNotReady(f"{self._name()} exited with {self.process.returncode}:\n{self._tail()}")
            if time.monotonic() > deadline:
                self._signal(signal.SIGKILL)
                self.process.wait()
                raise ServerNotReady(
                    f"{self._name()} gave no answer on {self.url}/health in {timeout:.0f} s:\n{self._tail()}"
                )
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.2)

    def output(self) -> str:
        """Everything the server has written so far (stdout and stderr), also after it stopped."""
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 30.0) -> int:
        """SIGTERM, then the exit code; SIGKILL if it has not stopped after ``timeout`` seconds."""
        self._signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            return self.process.wait()
        finally:
            self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *_: object) -> None:
        self.terminate()

    def _signal(self, signum: int) -> None:
        try:
            if self._own_group:
                os.killpg(self.process.pid, signum)
            elif self.process.poll() is None:
                self.process.send_signal(signum)
        except ProcessLookupError:  # already gone
            pass

    def _name(self) -> str:
        return f"the server ({' '.join(self.command[:2])})"

    def _tail(self) -> str:
        return self.output()[-LOG_TAIL_CHARS:]
