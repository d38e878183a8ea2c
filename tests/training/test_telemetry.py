"""Telemetry against real loopback HTTP servers: one that records, one that is down, one that hangs."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest
from transformers import TrainerControl, TrainerState, TrainingArguments

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.training import TrainSettings
from cockatoo_ml.serving.launch import free_port
from cockatoo_ml.settings import parse_args
from cockatoo_ml.training.telemetry import TelemetryCallback, WebhookSender, redact_url, telemetry_from_env

SECRET = "sk-test-do-not-log-9f8e7d"


@pytest.fixture
def down_url() -> str:
    """A loopback port nobody listens on."""
    return f"http://127.0.0.1:{free_port()}/train"


@pytest.fixture
def hanging_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}/train"
    sock.close()


def wait_for(condition, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


def test_sender_posts_json_with_the_api_key(server) -> None:
    sender = WebhookSender(api_key=SECRET, timeout_s=2)
    assert sender.submit(server.url("/train"), {"metrics": {"loss": 0.5, "bad": float("nan")}})
    sender.close()
    assert sender.sent == 1
    (request,) = server.requests
    assert request["headers"]["Authorization"] == SECRET
    assert request["headers"]["Content-Type"] == "application/json"
    assert request["body"] == {"metrics": {"loss": 0.5, "bad": None}}


def test_server_errors_are_retried(make_server) -> None:
    flaky = make_server([503, 200])
    sender = WebhookSender(timeout_s=2, retries=2, backoff_s=0.01)
    sender.submit(flaky.url("/train"), {"n": 1})
    sender.close()
    assert sender.sent == 1 and len(flaky.requests) == 2


def test_client_errors_are_not_retried(make_server, caplog: pytest.LogCaptureFixture) -> None:
    refusing = make_server([401, 401, 401])
    sender = WebhookSender(api_key=SECRET, timeout_s=2, retries=2, backoff_s=0.01)
    with caplog.at_level(logging.DEBUG):  # DEBUG: urllib3's request lines are captured too
        sender.submit(refusing.url("/train?sig=query-secret"), {"n": 1})
        sender.close()
    assert sender.failed == 1 and len(refusing.requests) == 1
    assert "HTTP 401" in caplog.text and SECRET not in caplog.text
    ours = [r.getMessage() for r in caplog.records if r.name.startswith("cockatoo_ml")]
    assert ours and not any("query-secret" in message for message in ours)  # our logs drop the query


def test_down_server_never_blocks_and_never_leaks_the_key(down_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        sender = WebhookSender(api_key=SECRET, timeout_s=0.5, retries=1, backoff_s=0.01)
        started = time.monotonic()
        for step in range(20):
            sender.submit(down_url, {"step": step})
        assert time.monotonic() - started < 0.2  # enqueueing only
        assert wait_for(lambda: sender.failed == 20)
        sender.close()
    assert sender.sent == 0
    assert "could not send" in caplog.text and SECRET not in caplog.text


def test_hanging_server_is_bounded_by_timeout_and_close(hanging_url: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        sender = WebhookSender(api_key=SECRET, timeout_s=0.3, retries=0, queue_size=4)
        started = time.monotonic()
        accepted = [sender.submit(hanging_url, {"step": step}) for step in range(50)]
        assert time.monotonic() - started < 0.2  # the training loop never waits on the server
        assert sum(accepted) <= 5 and sender.dropped >= 45  # bounded queue: extra payloads are dropped
        started = time.monotonic()
        sender.close(timeout_s=1.0)
        assert time.monotonic() - started < 1.5
    assert SECRET not in caplog.text


def _state(step: int, history: list[dict[str, Any]], zero: bool = True) -> TrainerState:
    state = TrainerState(global_step=step, epoch=step / 10, is_world_process_zero=zero)
    state.log_history = history
    return state


def test_callback_sends_seed_shaped_payloads(server, tmp_path) -> None:
    sender = WebhookSender(timeout_s=2)
    callback = TelemetryCallback(sender, server.url("/train"), server.url("/eval"), experiment_id="exp-1")
    args, control = TrainingArguments(output_dir=str(tmp_path), report_to="none"), TrainerControl()
    callback.on_log(args, _state(5, [{"loss": 0.43, "learning_rate": 1.5e-5, "epoch": 0.5, "step": 5}]), control)
    eval_metrics = {"eval_loss": 0.16, "eval_f1": 0.7, "eval_f1_scam": 0.9}
    eval_state = _state(10, [{**eval_metrics, "epoch": 1.0, "step": 10}])
    callback.on_evaluate(args, eval_state, control, metrics=eval_metrics)
    callback.on_log(args, eval_state, control)  # the Trainer also logs evaluations: not a training payload
    callback.on_log(args, _state(6, [{"loss": 0.4}], zero=False), control)  # other ranks stay quiet
    callback.on_train_end(args, eval_state, control)

    (train,) = server.bodies("/train")
    assert set(train) == {"experiment_id", "global_step", "epoch", "metrics", "timestamp"}
    assert train["experiment_id"] == "exp-1" and train["global_step"] == 5 and train["epoch"] == 0.5
    assert train["metrics"] == {"loss": 0.43, "learning_rate": 1.5e-5, "epoch": 0.5, "step": 5}
    assert len(train["timestamp"]) >= 19 and "T" not in train["timestamp"]  # "YYYY-MM-DD HH:MM:SS.ffffff"
    (evaluation,) = server.bodies("/eval")
    assert set(evaluation) == {"experiment_id", "global_step", "epoch", "metrics", "timestamp", "is_eval"}
    assert evaluation["is_eval"] is True and evaluation["metrics"] == eval_metrics and evaluation["global_step"] == 10


def test_telemetry_is_off_by_default_and_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("COCKATOO_TELEMETRY", "METRICS_WEBHOOK_URL", "METRICS_VALIDATION_WEBHOOK_URL", "METRICS_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert telemetry_from_env(enabled=False) is None
    with pytest.raises(ConfigError, match="METRICS_WEBHOOK_URL"):
        telemetry_from_env(enabled=True)
    monkeypatch.setenv("COCKATOO_TELEMETRY", "1")
    assert parse_args(TrainSettings, []).telemetry is True  # the environment switches it on too (as --telemetry)
    monkeypatch.setenv("METRICS_VALIDATION_WEBHOOK_URL", "ftp://example.invalid/x")
    with pytest.raises(ConfigError, match="http"):
        telemetry_from_env(enabled=True)
    monkeypatch.setenv("METRICS_VALIDATION_WEBHOOK_URL", "http://127.0.0.1:9/eval")
    callback = telemetry_from_env(enabled=True, experiment_id="x")
    assert callback.training_url is None and callback.validation_url.endswith("/eval")
    callback.close()


def test_redact_url_drops_credentials() -> None:
    assert redact_url(f"https://user:{SECRET}@host.example:8443/api/data?key={SECRET}") == "https://host.example:8443/api/data"
