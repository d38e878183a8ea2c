"""The real app on the tiny model, but each model call takes ``COCKATOO_TEST_SCORE_DELAY_S`` seconds longer: lets
test_server.py catch a request in flight when it sends SIGTERM. Hypercorn runs it in a subprocess."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence

from cockatoo_ml.registry.serving import serving_settings_from_env
from cockatoo_ml.serving.app import create_app
from cockatoo_ml.inference.classifier import ReadyCallback, TextClassifier, TextScore


class SlowClassifier(TextClassifier):
    def score(self, texts: Sequence[str], ready: ReadyCallback | None = None) -> list[TextScore]:
        time.sleep(float(os.environ.get("COCKATOO_TEST_SCORE_DELAY_S", "2")))
        return super().score(texts, ready)


settings = serving_settings_from_env()
app = create_app(settings, SlowClassifier.load(settings.model_dir))
