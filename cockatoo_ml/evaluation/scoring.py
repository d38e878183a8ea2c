"""Scores from the system under test: a model directory loaded in-process exactly as the server loads it
(``TextClassifier``: same windows, precision and thresholds), or a running server through ``/batch``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import requests
from tqdm.auto import tqdm

from cockatoo_ml.errors import CockatooError, ConfigError
from cockatoo_ml.inference.cascade import Cascade
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.inference.loading import check_model_dir, load_scorer
from cockatoo_ml.registry import evaluation as defaults

log = logging.getLogger(__name__)


class Scorer(Protocol):
    """Anything that turns texts into one probability per label (columns in ``labels`` order)."""

    name: str
    labels: tuple[str, ...]
    thresholds: dict[str, float]

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray: ...


class RemoteError(CockatooError):
    """The server could not be reached or refused the evaluation's requests."""


class LocalScorer:
    """A model directory scored in this process by the server's own loader and ``TextClassifier``; with the
    server's cascade (``cascade``) when the directory has a ``student/`` and COCKATOO_CASCADE is not off."""

    def __init__(
        self, model_dir: Path, classifier: TextClassifier | None = None, cascade: Cascade | None = None
    ) -> None:
        self.model_dir = Path(model_dir)
        if classifier is None:
            check_model_dir(self.model_dir)
            from cockatoo_ml.registry.serving import serving_settings_from_env

            # The server's settings (COCKATOO_* environment included): same windows, precision, threads and tiers.
            classifier, cascade = load_scorer(serving_settings_from_env(model_dir=self.model_dir))
        self.classifier = classifier
        self.cascade = cascade
        self.name = self.model_dir.name
        self.labels = tuple(classifier.labels)
        self.thresholds = dict(classifier.thresholds)

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """Texts in chunks (one progress step each), shortest first so each chunk packs tightly."""
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: np.ndarray = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        chunk = defaults.SCORE_CHUNK_TEXTS
        with tqdm(total=len(texts), desc=f"scoring {self.name}", unit="text", disable=not progress) as bar:
            for start in range(0, len(order), chunk):
                part = order[start : start + chunk]
                results = self.classifier.score([texts[i] for i in part])
                out[part] = [result.scores for result in results]
                bar.update(len(part))
        return out

    def cascade_scores(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """The server's cascade on every text: its scores (the student's on the windows it is sure of, the
        transformer's on the rest) and whether the student answered the text alone. Requires ``cascade``."""
        if self.cascade is None:
            raise ValueError(f"{self.model_dir} has no cascade (no student/, or COCKATOO_CASCADE=off)")
        scores: list[np.ndarray] = []
        alone: list[bool] = []
        chunk = defaults.SCORE_CHUNK_TEXTS
        for start in range(0, len(texts), chunk):
            for score, tier in self.cascade.score(self.classifier, texts[start : start + chunk]):
                scores.append(np.asarray(score.scores))
                alone.append(tier == "student")
        if not scores:
            return np.zeros((0, len(self.labels))), np.zeros(0, dtype=bool)
        return np.stack(scores), np.asarray(alone, dtype=bool)


def parse_headers(headers: Sequence[str]) -> dict[str, str]:
    """``["Authorization: Bearer KEY", ...]`` (curl's ``-H`` form) -> a header dict."""
    parsed: dict[str, str] = {}
    for header in headers:
        name, sep, value = header.partition(":")
        if not sep or not name.strip():
            raise ConfigError(f"--header {header!r} is not 'Name: value' (e.g. 'Authorization: Bearer KEY')")
        parsed[name.strip()] = value.strip()
    return parsed


class RemoteScorer:
    """A running server: its labels and thresholds from ``GET /health``, scores from ``POST /batch``.

    Requests hold at most ``batch_texts`` texts; a 413 (more texts or bytes than the server accepts) halves
    the request and tries again, so an operator's lower ``COCKATOO_MAX_BATCH_TEXTS`` or body limit is respected
    without being known in advance. Scores are the server's (rounded to 4 places)."""

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        batch_texts: int = defaults.REMOTE_BATCH_TEXTS,
        timeout_s: float = defaults.REMOTE_TIMEOUT_S,
    ) -> None:
        self.url = url.rstrip("/")
        self.session = requests.Session()
        self.session.headers.update(headers or {})
        self.batch_texts = max(1, batch_texts)
        self.timeout_s = timeout_s
        health = self._call("GET", "/health").json()
        self.name = str(health.get("model") or self.url)
        self.labels = tuple(health["labels"])
        self.thresholds = {label: float(health["thresholds"][label]) for label in self.labels}

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> requests.Response:
        try:
            response = self.session.request(method, self.url + path, json=body, timeout=self.timeout_s)
        except requests.RequestException as exc:
            raise RemoteError(f"cannot reach {self.url}{path} ({type(exc).__name__}); is the server running?") from None
        if response.status_code == 413:
            return response  # the caller splits the batch
        if response.status_code != 200:
            try:
                message = response.json().get("error", "")
            except ValueError:
                message = response.text[:200]
            hint = " (pass the API key: --header 'Authorization: Bearer KEY')" if response.status_code == 401 else ""
            raise RemoteError(f"{method} {self.url}{path} answered {response.status_code}: {message}{hint}")
        return response

    def score(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        out: np.ndarray = np.empty((len(texts), len(self.labels)), dtype=np.float64)
        start = 0
        with tqdm(total=len(texts), desc=f"scoring {self.url}", unit="text", disable=not progress) as bar:
            while start < len(texts):
                part = list(texts[start : start + self.batch_texts])
                response = self._call("POST", "/batch", {"texts": part})
                if response.status_code == 413:
                    if len(part) == 1:
                        raise RemoteError(f"{self.url}/batch refused one text as too large (413): raise its limits")
                    self.batch_texts = len(part) // 2
                    log.info("server refused %d texts per request (413); sending %d", len(part), self.batch_texts)
                    continue
                results = response.json()["results"]
                out[start : start + len(part)] = [[r["predictions"][label] for label in self.labels] for r in results]
                start += len(part)
                bar.update(len(part))
        return out
