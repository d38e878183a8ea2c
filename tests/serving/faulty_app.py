"""The real app on the tiny model, but a model call whose texts include a marker fails: ``FAIL:bug`` raises a
bug (RuntimeError), ``FAIL:input`` a user's mistake (CockatooError); ``SLOW:`` holds the model for a second.
The failure happens inside the shared micro-batch, as a tokenizer or model error on one text would. Hypercorn
runs it in a subprocess (test_hostile.py)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from cockatoo_ml.errors import CockatooError
from cockatoo_ml.logging import configure_logging
from cockatoo_ml.registry.serving import serving_settings_from_env
from cockatoo_ml.serving.app import create_app
from cockatoo_ml.inference.classifier import ReadyCallback, TextClassifier, TextScore


class FaultyClassifier(TextClassifier):
    def score(self, texts: Sequence[str], ready: ReadyCallback | None = None) -> list[TextScore]:
        if any("FAIL:bug" in text for text in texts):
            raise RuntimeError("injected scoring bug")
        if any("FAIL:input" in text for text in texts):
            raise CockatooError("this text cannot be scored (injected)")
        if any(text.startswith("SLOW:") for text in texts):
            time.sleep(1.0)
        return super().score(texts, ready)


configure_logging()  # the access log, as app.py has it
settings = serving_settings_from_env()
app = create_app(settings, FaultyClassifier.load(settings.model_dir, dtype=settings.dtype))
