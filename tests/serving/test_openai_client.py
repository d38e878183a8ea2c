"""The official ``openai`` Python client against a real server on loopback, as an application that calls
``client.moderations.create`` would use it after changing only ``base_url`` and ``api_key``: one text, a list, a
long text, hostile Unicode; errors as the SDK's own exceptions; a 429 whose Retry-After the SDK honours."""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import openai
import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai import OpenAI
from openai.types import ModerationCreateResponse

from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.serving.schemas import VISIBLE_CHARACTER

pytestmark = pytest.mark.slow

KEY = "sk-cockatoo-test"
TEXTS = ["Send 0.5 BTC to this wallet and we will double it", "hello there", "I will hurt you tonight"]
MAX_TEXTS = 8


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = server_environment(
        os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_API_KEY=KEY,
        COCKATOO_MAX_BATCH_TEXTS=str(MAX_TEXTS), COCKATOO_MICRO_BATCH_WAIT_MS="2",
    )  # fmt: skip
    running = ServerProcess.start_api(free_port(), tmp_path_factory.mktemp("openai") / "server.log", env).wait_ready()
    yield running
    assert running.terminate() == 0, running.output()


@pytest.fixture(scope="module")
def client(server: ServerProcess) -> Iterator[OpenAI]:
    # The three lines of the README: only base_url and api_key differ from a client of OpenAI itself.
    with OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=120) as opened:
        yield opened


def assert_scored_as_alone(result: openai.types.Moderation, text: str, classifier: TextClassifier) -> None:
    [score] = classifier.score([text])
    extra = result.categories.model_extra or {}
    scores = result.category_scores.model_extra or {}
    for label, value in zip(classifier.labels, score.scores, strict=True):
        own = scores.get(label, getattr(result.category_scores, label, None))
        assert own == pytest.approx(value, abs=1e-6), (label, text)
        decided = extra.get(label, getattr(result.categories, label, None))
        assert decided is (value >= classifier.thresholds[label])
    assert result.category_scores.sexual == scores["nsfw"] and result.categories.sexual is extra["nsfw"]
    assert result.flagged is bool(result.categories.sexual or result.categories.violence or result.categories.harassment
                                  or extra["scam"])  # fmt: skip


def test_one_text(client: OpenAI, tiny_classifier: TextClassifier) -> None:
    moderation = client.moderations.create(input=TEXTS[0])
    assert isinstance(moderation, ModerationCreateResponse)
    assert moderation.model == "tiny_model0" and moderation.id.startswith("modr-")
    [result] = moderation.results
    assert_scored_as_alone(result, TEXTS[0], tiny_classifier)
    assert result.category_applied_input_types.sexual == ["text"] and result.tier == "model"  # type: ignore[attr-defined]
    assert result.categories.self_harm is None  # no label answers for it: not assessed, not a made-up "clean"
    named = client.moderations.create(input=TEXTS[0], model="omni-moderation-latest")
    assert named.model == "tiny_model0" and named.results[0].category_scores == result.category_scores


def test_a_list(client: OpenAI, tiny_classifier: TextClassifier) -> None:
    moderation = client.moderations.create(input=TEXTS)
    assert len(moderation.results) == len(TEXTS)
    for text, result in zip(TEXTS, moderation.results, strict=True):
        assert_scored_as_alone(result, text, tiny_classifier)
    items = client.moderations.create(input=[{"type": "text", "text": text} for text in TEXTS])
    assert [r.category_scores for r in items.results] == [r.category_scores for r in moderation.results]


def test_a_long_text_in_several_windows(client: OpenAI, tiny_classifier: TextClassifier) -> None:
    long_text = " ".join(f"{TEXTS[i % 3]} {i}." for i in range(60))  # the tiny model's window is 64 tokens
    assert tiny_classifier.score([long_text])[0].windows > 5
    [result] = client.moderations.create(input=long_text).results
    assert_scored_as_alone(result, long_text, tiny_classifier)


# Every code point but the surrogates: the SDK cannot send a lone surrogate at all (it fails to encode the body
# as UTF-8 before any request is made); raw JSON escapes of them are fuzzed in test_fuzz.py.
characters = st.one_of(
    st.characters(exclude_categories=["Cs"]),
    st.characters(categories=["Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp", "So"]),
)
pieces = st.sampled_from(["\u200b", "\u202e", "\ufeff", "\U0001f469\u200d\U0001f4bb", "\U000e0041", "\x00", "word"])
hostile = st.lists(characters | pieces, max_size=40).map("".join)


@settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(texts=st.lists(hostile, min_size=1, max_size=4), as_list=st.booleans())
def test_hostile_unicode(client: OpenAI, tiny_classifier: TextClassifier, texts: list[str], as_list: bool) -> None:
    sent: str | list[str] = texts if as_list else texts[0]
    texts = texts if as_list else texts[:1]
    blank = [i for i, text in enumerate(texts) if not re.search(VISIBLE_CHARACTER, text)]
    try:
        moderation = client.moderations.create(input=sent)
    except openai.BadRequestError as error:  # only a text with nothing visible in it may be refused
        assert blank, (texts, error.message)
        assert (
            error.param == ("input" if not as_list else f"input.{blank[0]}") and error.type == "invalid_request_error"
        )
        return
    assert not blank, texts
    for text, result in zip(texts, moderation.results, strict=True):
        assert_scored_as_alone(result, text, tiny_classifier)


@pytest.mark.parametrize(
    ("kwargs", "param", "code", "words"),
    [
        ({"input": ""}, "input", None, "must not be empty"),
        ({"input": ["fine", "\u200b\u200e \t"]}, "input.1", None, "only whitespace, control or format"),
        ({"input": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}, "input.0.type", None,
         "Input should be 'text'"),
        ({"input": "hi", "model": "gpt-4o"}, "model", "model_not_found", "this server serves 'tiny_model0'"),
    ],
)  # fmt: skip
def test_a_bad_request_is_the_sdks_bad_request_error(
    client: OpenAI, kwargs: dict, param: str, code: str | None, words: str
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.moderations.create(**kwargs)
    error = caught.value
    assert error.status_code == 400 and error.param == param and error.code == code and words in error.message
    assert error.type == "invalid_request_error"


def test_a_list_over_the_limit_is_a_413(client: OpenAI) -> None:
    with pytest.raises(openai.APIStatusError) as caught:
        client.moderations.create(input=["x"] * (MAX_TEXTS + 1))
    assert caught.value.status_code == 413 and caught.value.param == "input"
    assert "the limit is 8 (COCKATOO_MAX_BATCH_TEXTS)" in caught.value.message


def test_a_wrong_key_is_the_sdks_authentication_error(server: ServerProcess) -> None:
    with OpenAI(base_url=f"{server.url}/v1", api_key="sk-wrong", max_retries=0) as wrong:
        with pytest.raises(openai.AuthenticationError) as caught:
            wrong.moderations.create(input="hello")
    assert caught.value.status_code == 401 and caught.value.code == "invalid_api_key"


def _metric(url: str, prefix: str) -> float:
    for line in requests.get(f"{url}/metrics", timeout=10).text.splitlines():
        if line.startswith(prefix):
            return float(line.split()[-1])
    return 0.0


def _until(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.02)


def test_a_busy_server_is_the_sdks_rate_limit_error_and_its_retry_after_is_honoured(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """One model thread held busy (tests/serving/gated_app.py) and a queue of one text, filled: the next request is
    a 429 with Retry-After: 2. Without retries the SDK raises RateLimitError; with retries it waits the 2 s the
    header says (its own first back-off would be under 0.5 s) and gets its answer once the model is free."""
    env = server_environment(
        os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_MAX_QUEUE="1", COCKATOO_MAX_BATCH_TEXTS="1",
        COCKATOO_MODEL_THREADS="1", COCKATOO_RETRY_AFTER_S="2", COCKATOO_MICRO_BATCH_WAIT_MS="0",
    )  # fmt: skip
    gate = tmp_path / "open"
    answers: dict[str, requests.Response] = {}

    def post(name: str, text: str) -> None:
        answers[name] = requests.post(f"{busy.url}/v1/moderations", json={"input": text}, timeout=120)

    refused = '{endpoint="/v1/moderations",status="429"}'
    with ServerProcess.hypercorn("tests/serving/gated_app.py:app", free_port(), tmp_path / "busy.log", env) as busy:
        busy.wait_ready()
        held = threading.Thread(target=post, args=("held", f"WAIT:{gate}"))
        held.start()
        _until(lambda: _metric(busy.url, "cockatoo_texts_total") >= 1, "the model holds the first text")
        queued = threading.Thread(target=post, args=("queued", "queued"))
        queued.start()
        _until(lambda: _metric(busy.url, "cockatoo_queue_texts") == 1, "the second text waits in the queue")

        with OpenAI(base_url=f"{busy.url}/v1", api_key="unused", max_retries=0) as impatient:
            with pytest.raises(openai.RateLimitError) as caught:
                impatient.moderations.create(input="refused")
        assert caught.value.status_code == 429 and caught.value.response.headers["Retry-After"] == "2"
        assert caught.value.code == "rate_limit_exceeded" and "busy" in caught.value.message

        outcome: dict[str, object] = {}

        def patient_call() -> None:
            with OpenAI(base_url=f"{busy.url}/v1", api_key="unused", max_retries=3) as patient:
                began = time.monotonic()
                outcome["moderation"] = patient.moderations.create(input="patient")
                outcome["seconds"] = time.monotonic() - began

        patient = threading.Thread(target=patient_call)
        patient.start()
        _until(lambda: _metric(busy.url, f"cockatoo_requests_total{refused}") == 2, "the patient call is refused")
        gate.touch()  # the model is free again: the patient call's retry gets in
        for thread in (patient, held, queued):
            thread.join(timeout=120)
        patient_refusals = _metric(busy.url, f"cockatoo_requests_total{refused}") - 1
    assert isinstance(outcome["moderation"], ModerationCreateResponse), busy.output()[-3000:]
    assert patient_refusals >= 1 and outcome["seconds"] >= 2.0 * patient_refusals  # type: ignore[operator]
    assert answers["held"].status_code == 200 and answers["queued"].status_code == 200
