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
async def client(make_client) -> AsyncIterator[TestClientProtocol]:  # type: ignore[no-untyped-def]
    async with make_client() as test_client:
        yield test_client


def expected_scores(classifier: TextClassifier, text: str) -> TextScore:
    return classifier.score([text])[0]

