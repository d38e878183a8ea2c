"""Fixtures for the inference-server tests: an app on the tiny model, its test client, and helpers."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from quart import Quart
from quart.typing import TestClientProtocol

from cockatoo_ml.registry.serving import ServingSettings, serving_settings_from_env
from cockatoo_ml.serving.app import create_app
from cockatoo_ml.inference.classifier import TextClassifier, TextScore


class GatedClassifier(TextClassifier):
    """The real tiny model, but every ``score`` call first waits for ``gate``: lets a test hold the model busy."""

    def __init__(self, inner: TextClassifier) -> None:
        self.__dict__.update(inner.__dict__)
        self.gate = threading.Event()
        self.entered = threading.Event()

    def score(self, texts, ready=None):  # type: ignore[no-untyped-def]
        self.entered.set()
        if not self.gate.wait(timeout=30):
            raise TimeoutError("test never opened the gate")
        return super().score(texts, ready)


@pytest.fixture
def make_settings(tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., ServingSettings]:
    """Settings for the tiny model; the environment's COCKATOO_* variables are ignored so tests are stable."""
    import os

    for name in list(os.environ):
        if name.startswith("COCKATOO_"):
            monkeypatch.delenv(name)
    return lambda **overrides: serving_settings_from_env(model_dir=tiny_model_dir, **overrides)


@pytest.fixture
def make_client(
    make_settings: Callable[..., ServingSettings], tiny_classifier: TextClassifier
) -> Callable[..., AsyncIterator[TestClientProtocol]]:
    """``async with make_client(**settings) as client``: a started app (batcher running) and its test client."""
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_client(classifier: TextClassifier | None = None, **overrides: object):
        app: Quart = create_app(make_settings(**overrides), classifier or tiny_classifier)
        async with app.test_app() as test_app:
            yield test_app.test_client()

    return open_client


@pytest.fixture
def full_queue(make_client, tiny_classifier: TextClassifier):  # type: ignore[no-untyped-def]
    """``async with full_queue((path, body), (path, body)) as client``: one model thread held busy by the first
    request and the queue (2 texts, Retry-After: 3) filled by the second, so the next request gets a 429. On
    leaving, the model is let go and both must be answered 200."""
    import asyncio
    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def open_full(first: tuple[str, dict], second: tuple[str, dict]):  # type: ignore[no-untyped-def]
        gated = GatedClassifier(tiny_classifier)
        async with make_client(
            classifier=gated, max_batch_texts=2, max_queue_texts=2, micro_batch_wait_ms=0, retry_after_s=3,
            model_threads=1,  # one model thread, held busy by the first request
        ) as client:
            held = asyncio.create_task(client.post(first[0], json=first[1]))
            await asyncio.to_thread(gated.entered.wait, 10)  # the model is busy with it
            queued = asyncio.create_task(client.post(second[0], json=second[1]))
            for _ in range(100):  # until the second is queued
                await asyncio.sleep(0.01)
                if client.app.extensions["cockatoo"]["batcher"].waiting_texts == 2:
                    break
            yield client
            gated.gate.set()
            assert (await held).status_code == 200 and (await queued).status_code == 200

    return open_full


@pytest.fixture
async def client(make_client) -> AsyncIterator[TestClientProtocol]:  # type: ignore[no-untyped-def]
    async with make_client() as test_client:
        yield test_client


def expected_scores(classifier: TextClassifier, text: str) -> TextScore:
    return classifier.score([text])[0]

