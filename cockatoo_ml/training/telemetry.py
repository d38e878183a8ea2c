"""Live training telemetry to your own HTTP endpoints, in the seed project's JSON shapes.

On every training log a payload ``{experiment_id, global_step, epoch, metrics, timestamp}`` goes to
``METRICS_WEBHOOK_URL``; on every evaluation the same plus ``"is_eval": true`` goes to
``METRICS_VALIDATION_WEBHOOK_URL``; ``METRICS_API_KEY`` is sent as the ``Authorization`` header.

Sending happens on a background thread fed by a bounded queue: the training loop only enqueues (and drops a
payload when the queue is full), each request has a timeout and a few retries, so a slow, failing or absent
server never slows or stops training. The API key is never logged, and logged URLs lose userinfo and query.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import queue
import threading
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry import training as defaults
from cockatoo_ml.registry.training import TelemetrySettings
from cockatoo_ml.settings import env_name, from_env

log = logging.getLogger(__name__)

_STOP = object()


def redact_url(url: str) -> str:
    """``scheme://host[:port]/path`` only: credentials in userinfo or the query string never reach a log."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _json_safe(value: Any) -> Any:
    """NaN/inf are not JSON; send them as null so a receiver's strict parser does not reject the payload."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def seed_timestamp() -> str:
    """UTC time without offset, formatted like the seed (``2026-02-13 18:12:03.123456``)."""
    return str(datetime.now(UTC).replace(tzinfo=None))


class WebhookSender:
    """Posts JSON payloads from a daemon thread; ``submit`` never blocks."""

    def __init__(
        self,
        api_key: str | None = None,
        timeout_s: float = defaults.TELEMETRY_TIMEOUT_S,
        retries: int = defaults.TELEMETRY_RETRIES,
        backoff_s: float = defaults.TELEMETRY_RETRY_BACKOFF_S,
        queue_size: int = defaults.TELEMETRY_QUEUE_SIZE,
    ) -> None:
        self.timeout_s, self.retries, self.backoff_s = timeout_s, retries, backoff_s
        self.sent = self.failed = self.dropped = 0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._session = requests.Session()
        self._session.headers["Content-Type"] = "application/json"
        if api_key:
            self._session.headers["Authorization"] = api_key  # the seed sends the bare key
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="telemetry-sender", daemon=True)
        self._thread.start()

    def submit(self, url: str, payload: dict[str, Any]) -> bool:
        """Queue ``payload`` for ``url``; False (and counted as dropped) when closed or the queue is full."""
        if self._closed.is_set():
            self.dropped += 1
            return False
        try:
            self._queue.put_nowait((url, json.dumps(_json_safe(payload), default=str)))
        except queue.Full:
            self.dropped += 1
            log.warning(
                "telemetry queue full (%d waiting); dropped a payload for %s", self._queue.qsize(), redact_url(url)
            )
            return False
        return True

    def close(self, timeout_s: float = defaults.TELEMETRY_CLOSE_TIMEOUT_S) -> None:
        """Stop accepting payloads and give queued ones up to ``timeout_s`` to go out; never waits longer."""
        if self._closed.is_set():
            return
        self._closed.set()
        deadline = time.monotonic() + timeout_s
        with contextlib.suppress(queue.Full):  # the sender is stuck; the join below gives up in time
            self._queue.put(_STOP, timeout=timeout_s)
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive():
            log.warning("telemetry: gave up waiting for the endpoint; %d payload(s) unsent", self._queue.qsize())
        log.info("telemetry: %d sent, %d failed, %d dropped", self.sent, self.failed, self.dropped)

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            url, body = item
            if self._post(url, body):
                self.sent += 1
            else:
                self.failed += 1

    def _post(self, url: str, body: str) -> bool:
        delay = self.backoff_s
        for attempt in range(self.retries + 1):
            try:
                response = self._session.post(url, data=body, timeout=self.timeout_s)
                if response.status_code < 400:
                    return True
                problem = f"HTTP {response.status_code}"
                if response.status_code < 500 and response.status_code != 429:
                    break  # the server refuses this payload; resending it will not help
            except requests.RequestException as exc:
                problem = type(exc).__name__  # the exception text can echo headers; its type is enough
            if attempt < self.retries and not self._closed.is_set():
                time.sleep(delay)
                delay *= 2
        log.warning("telemetry: could not send to %s (%s)", redact_url(url), problem)
        return False


class TelemetryCallback(TrainerCallback):
    """Turns Trainer logs and evaluations into seed-shaped payloads (main process only)."""

    def __init__(
        self,
        sender: WebhookSender,
        training_url: str | None,
        validation_url: str | None,
        experiment_id: str = defaults.EXPERIMENT_ID,
    ) -> None:
        self.sender = sender
        self.training_url, self.validation_url = training_url, validation_url
        self.experiment_id = experiment_id

    def _payload(self, state: TrainerState, metrics: dict[str, Any]) -> dict[str, Any]:
        return {
            "experiment_id": self.experiment_id,
            "global_step": state.global_step,
            "epoch": state.epoch,
            "metrics": dict(metrics),
            "timestamp": seed_timestamp(),
        }

    def on_log(self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any) -> None:
        if not (self.training_url and state.is_world_process_zero and state.log_history):
            return
        latest = state.log_history[-1]
        if any(key.startswith("eval_") for key in latest):
            return  # evaluation results go to the validation endpoint (on_evaluate)
        self.sender.submit(self.training_url, self._payload(state, latest))

    def on_evaluate(
        self,
        args: TrainingArguments,
        state: TrainerState,
        control: TrainerControl,
        metrics: dict[str, float] | None = None,
        **kwargs: Any,
    ) -> None:
        if not (self.validation_url and state.is_world_process_zero and metrics):
            return
        self.sender.submit(self.validation_url, {**self._payload(state, metrics), "is_eval": True})

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.close()

    def close(self) -> None:
        self.sender.close()


def telemetry_from_env(enabled: bool, experiment_id: str = defaults.EXPERIMENT_ID) -> TelemetryCallback | None:
    """The telemetry callback when switched on (``--telemetry`` / ``COCKATOO_TELEMETRY``), sending to the
    webhooks of ``TelemetrySettings`` (environment or .env); None when off."""
    if not enabled:
        return None
    settings = from_env(TelemetrySettings)
    training_url = settings.training_webhook_url or None
    validation_url = settings.validation_webhook_url or None
    if not (training_url or validation_url):
        raise ConfigError(
            f"telemetry is on but neither {env_name(TelemetrySettings, 'training_webhook_url')} nor "
            f"{env_name(TelemetrySettings, 'validation_webhook_url')} is set; set one in the environment or .env, "
            "or drop --telemetry"
        )
    for url in (training_url, validation_url):
        if url and urlsplit(url).scheme not in ("http", "https"):
            raise ConfigError(f"telemetry URL {redact_url(url)!r} must start with http:// or https://")
    api_key = settings.api_key or None
    log.info(
        "telemetry on: training -> %s, validation -> %s, api key %s",
        redact_url(training_url) if training_url else "off",
        redact_url(validation_url) if validation_url else "off",
        "set" if api_key else "not set",
    )
    return TelemetryCallback(WebhookSender(api_key=api_key), training_url, validation_url, experiment_id)
