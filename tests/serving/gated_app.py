"""The real app on the tiny model, but a model call whose texts include ``WAIT:<path>`` waits (on the model thread)
until the file at ``<path>`` exists: lets a test hold a real server's model busy, fill its queue and release it
when it chooses (test_openai_client.py's 429). Hypercorn runs it in a subprocess."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from cockatoo_ml.registry.serving import serving_settings_from_env
from cockatoo_ml.serving.app import create_app
from cockatoo_ml.inference.classifier import ReadyCallback, ScoreItem, TextClassifier, TextScore

MARKER = "WAIT:"


class GatedClassifier(TextClassifier):
    def score(self, texts: Sequence[ScoreItem], ready: ReadyCallback | None = None) -> list[TextScore]:
        for text in texts:
            if isinstance(text, str) and text.startswith(MARKER):
                gate = Path(text.removeprefix(MARKER))
                deadline = time.monotonic() + 60
                while not gate.exists() and time.monotonic() < deadline:
                    time.sleep(0.01)
        return super().score(texts, ready)


settings = serving_settings_from_env()
app = create_app(settings, GatedClassifier.load(settings.model_dir, dtype=settings.dtype))
