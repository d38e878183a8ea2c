"""The Quart app through its test client: shapes, thresholds, every error status, auth, 429, metrics, logs."""

from __future__ import annotations

import asyncio
import json
import logging
import threading

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.serving.schemas import VISIBLE_CHARACTER, BatchRequest

SEED_KEYS = {"text", "predictions", "positive_labels", "top_label", "max_score", "error"}


async def test_health(client, labels) -> None:
    response = await client.get("/health")
    assert response.status_code == 200
    body = await response.get_json()
    assert body["status"] == "ok"
    assert body["model"] == "tiny_model0"  # the model directory's name
    assert body["labels"] == list(labels)
    assert body["problem_type"] == "multi_label" and body["window_tokens"] == 64
    assert body["dtype"] == "float32" and body["thresholds"]["nsfw"] == 0.6
    assert body["precision"] == {"path": "float32", "reason": "dtype float32 asked for"}


async def test_health_says_which_path_serves_and_why(make_client, make_settings) -> None:
    from cockatoo_ml.serving.app import load_classifier

    async with make_client(classifier=load_classifier(make_settings(dtype="bfloat16"))) as client:
        body = await (await client.get("/health")).get_json()
    assert body["dtype"] == "bfloat16" and body["precision"]["path"] == "bucketed-bfloat16"
    assert "without parity check" in body["precision"]["reason"]


async def test_health_reports_a_configured_name(make_client) -> None:
    async with make_client(model_name="constellation_one_text") as client:
        assert (await (await client.get("/health")).get_json())["model"] == "constellation_one_text"


async def test_predict_has_the_seed_shape_and_uses_tuned_thresholds(client, tiny_classifier) -> None:
    text = "Send 0.5 BTC to this wallet and we will double it"
    response = await client.post("/predict", json={"text": text})
    assert response.status_code == 200
    body = await response.get_json()
    assert SEED_KEYS <= set(body) and body["error"] is None and body["text"] == text
    [score] = tiny_classifier.score([text])
    expected = dict(zip(tiny_classifier.labels, score.scores))
    assert body["predictions"] == {label: round(value, 4) for label, value in expected.items()}
    assert body["positive_labels"] == [l for l, v in expected.items() if v >= tiny_classifier.thresholds[l]]
    assert body["top_label"] == max(expected, key=expected.get)
    assert body["max_score"] == round(max(expected.values()), 4)
    assert body["windows"] == 1


@pytest.mark.parametrize(
    ("threshold", "positive"),
    [
        (0.0, ["scam", "violence", "nsfw", "harassment"]),
        (1.0, []),
        ({"nsfw": 0.0}, "tuned+nsfw"),  # other labels keep their thresholds.json value
        (None, "tuned"),
    ],
)
async def test_threshold_forms(client, tiny_classifier: TextClassifier, threshold, positive) -> None:
    text = "hello"
    [score] = tiny_classifier.score([text])
    tuned = [l for l, v in zip(tiny_classifier.labels, score.scores) if v >= tiny_classifier.thresholds[l]]
    if positive == "tuned":
        positive = tuned
    elif positive == "tuned+nsfw":
        positive = [l for l in tiny_classifier.labels if l in tuned or l == "nsfw"]
    body = await (await client.post("/predict", json={"text": text, "threshold": threshold})).get_json()
    assert body["positive_labels"] == positive
    assert body["flagged"] is bool(positive)  # any label at its threshold flags the text (the tiny model has no unsafe)


@pytest.mark.parametrize(("threshold", "flagged"), [(0.0, True), (1.0, False), (None, "tuned")])
async def test_a_four_label_model_flags_from_the_labels_it_has(client, tiny_classifier, threshold, flagged) -> None:
    """The tiny model has no ``unsafe`` label (as model directories before it): ``flagged`` is whether any of its
    four labels reaches its threshold, in /predict and in every /batch result."""
    texts = ["hello", "Send 0.5 BTC to this wallet and we will double it"]
    body = await (await client.post("/batch", json={"texts": texts, "threshold": threshold})).get_json()
    single = await (await client.post("/predict", json={"text": texts[0], "threshold": threshold})).get_json()
    for text, result in zip(texts, body["results"]):
        [score] = tiny_classifier.score([text])
        tuned = any(v >= tiny_classifier.thresholds[l] for l, v in zip(tiny_classifier.labels, score.scores))
        assert result["flagged"] is (tuned if flagged == "tuned" else flagged)
        assert result["flagged"] is bool(result["positive_labels"])
    assert single["flagged"] is body["results"][0]["flagged"]


async def test_batch_keeps_input_order_and_matches_predict(client) -> None:
    texts = ["short", "a much longer text about a bank account that was suspended " * 3, "mid length text here"]
    response = await client.post("/batch", json={"texts": texts, "threshold": 0.5})
    assert response.status_code == 200
    body = await response.get_json()
    assert body["count"] == 3 and [r["text"] for r in body["results"]] == texts
    for text, result in zip(texts, body["results"]):
        single = await (await client.post("/predict", json={"text": text, "threshold": 0.5})).get_json()
        assert result["predictions"] == pytest.approx(single["predictions"], abs=2e-4)
        assert SEED_KEYS <= set(result)


async def test_long_text_reports_its_windows(client) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    body = await (await client.post("/predict", json={"text": long_text})).get_json()
    assert body["windows"] > 3 and body["text"] == long_text


BAD_REQUESTS = [
    # (body as raw bytes or JSON-able value, status, field named in the error)
    (b"{not json", 400, None),
    (b"", 400, None),
    (b"\xff\xfe\xfa", 400, None),
    (b'{"text": "x", "threshold": NaN}', 400, None),
    (b"[" * 5000, 400, None),
    ([1, 2], 422, "body"),
    ("just a string", 422, "body"),
    ({}, 422, "text"),
    ({"txt": "typo"}, 422, "text"),
    ({"text": 42}, 422, "text"),
    ({"text": ""}, 422, "text"),
    ({"text": " \n\t "}, 422, "text"),
    ({"text": "x", "threshold": 1.5}, 422, "threshold"),
    ({"text": "x", "threshold": -0.1}, 422, "threshold"),
    ({"text": "x", "threshold": "0.5"}, 422, "threshold"),
    ({"text": "x", "threshold": True}, 422, "threshold"),
    ({"text": "x", "threshold": [0.5]}, 422, "threshold"),
    ({"text": "x", "threshold": {"nsfw": 2}}, 422, "threshold.nsfw"),
    ({"text": "x", "threshold": {"nsfw": "high"}}, 422, "threshold.nsfw"),
    ({"text": "x", "threshold": {"toxic": 0.5}}, 422, "threshold.toxic"),
    # valid JSON, but text the tokenizer cannot encode (a lone surrogate) or with nothing visible in it
    (b'{"text": "hi \\ud800"}', 422, "text"),
    (b'{"text": "\\udfff"}', 422, "text"),
    ({"text": "\x00\x00"}, 422, "text"),
    ({"text": "\u200b\u200c\u200d\ufeff"}, 422, "text"),
    ({"text": " \u200e\t\u202e\x7f "}, 422, "text"),
]


@pytest.mark.parametrize(("body", "status", "field"), BAD_REQUESTS)
async def test_predict_rejects_bad_input(client, body, status: int, field: str | None) -> None:
    if isinstance(body, bytes):
        response = await client.post("/predict", data=body, headers={"Content-Type": "application/json"})
    else:
        response = await client.post("/predict", json=body)
    assert response.status_code == status
    error = await response.get_json()
    assert isinstance(error["error"], str) and error["error"]
    if field is not None:
        assert field in [d["field"] for d in error["detail"]]
        assert error["error"].startswith(field)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"texts": []}, "texts"),
        ({"texts": "one text"}, "texts"),
        ({"texts": ["ok", " "]}, "texts.1"),
        ({"texts": ["ok", None]}, "texts.1"),
        ({"texts": ["ok", "ok", "ok", "\ud800 x"]}, "texts.3"),
        ({"texts": ["ok", "\u2060\x00"]}, "texts.1"),
        ({"texts": ["ok"], "threshold": {"bogus": 0.1}}, "threshold.bogus"),
    ],
)
async def test_batch_rejects_bad_input(client, body, field: str) -> None:
    response = await client.post("/batch", json=body)
    assert response.status_code == 422
    assert field in [d["field"] for d in (await response.get_json())["detail"]]


async def test_unencodable_or_invisible_text_never_reaches_the_model(client) -> None:
    for body in (b'{"text": "hi \\ud800"}', b'{"texts": ["fine", "\\ud800"]}', json.dumps({"text": "\x00\u200b"}).encode()):
        path = "/batch" if b"texts" in body else "/predict"
        response = await client.post(path, data=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        error = await response.get_json()
        assert "not valid Unicode" in error["error"] or "control or format" in error["error"]
    metrics = await (await client.get("/metrics")).get_data(as_text=True)
    assert "cockatoo_texts_total 0.0" in metrics  # refused at validation: nothing was queued or scored


async def test_text_with_visible_characters_among_invisible_ones_is_scored(client) -> None:
    for text in ("\u200bhi\u200b", "\u0301", "\u05e9\u05dc\u05d5\u05dd", "\U0001f600"):
        assert (await client.post("/predict", json={"text": text})).status_code == 200, text


async def test_json_without_content_type_is_accepted(client) -> None:
    response = await client.post("/predict", data=b'{"text": "curl -d sends form encoding"}')
    assert response.status_code == 200


async def test_too_many_texts_or_too_big_a_body_is_413(make_client) -> None:
    async with make_client(max_batch_texts=4, max_queue_texts=8, max_body_bytes=2048) as client:
        response = await client.post("/batch", json={"texts": ["x"] * 5})
        assert response.status_code == 413
        assert "limit is 4" in (await response.get_json())["error"]
        response = await client.post("/predict", json={"text": "x" * 5000})
        assert response.status_code == 413
        assert "2048-byte limit" in (await response.get_json())["error"]
        assert (await client.post("/batch", json={"texts": ["x"] * 4})).status_code == 200


@pytest.mark.parametrize(("method", "path", "status"), [("GET", "/nope", 404), ("GET", "/predict", 405)])
async def test_unknown_routes_are_json_errors(client, method: str, path: str, status: int) -> None:
    response = await client.open(path, method=method)
    assert response.status_code == status
    assert "error" in await response.get_json()


async def test_api_key(make_client) -> None:
    async with make_client(api_key="s3cret") as client:
        assert (await client.get("/health")).status_code == 200  # stays open
        assert (await client.get("/openapi.json")).status_code == 200
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret"}):
            response = await client.post("/predict", json={"text": "x"}, headers=headers)
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert "API key" in (await response.get_json())["error"]
        assert (await client.get("/metrics")).status_code == 401
        ok = await client.post("/predict", json={"text": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def test_full_queue_answers_429_with_retry_after(full_queue) -> None:
    async with full_queue(("/predict", {"text": "first"}), ("/batch", {"texts": ["a", "b"]})) as client:
        health = await client.get("/health")  # the event loop is free while the model works
        assert health.status_code == 200
        refused = await client.post("/predict", json={"text": "third"})
        assert refused.status_code == 429
        assert refused.headers["Retry-After"] == "3"
        assert "busy" in (await refused.get_json())["error"]


async def test_freed_memory_is_handed_back_after_scoring(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    from cockatoo_ml.serving import app as app_module

    trims: list[str] = []

    class RecordingTrimmer:
        def __call__(self) -> None:
            trims.append(threading.current_thread().name)

    monkeypatch.setattr(app_module, "HeapTrimmer", RecordingTrimmer)
    async with make_client() as client:
        assert (await client.post("/predict", json={"text": "hello"})).status_code == 200
    assert trims and all(name.startswith("cockatoo-model") for name in trims)  # off the event loop


async def test_the_start_up_heap_is_frozen_once_per_process(make_client, monkeypatch: pytest.MonkeyPatch) -> None:
    """Out of the garbage collector's sight (gc.freeze), so full collections stop walking torch and the model."""
    import gc

    frozen: list[int] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(1))
    monkeypatch.setattr(gc, "get_freeze_count", lambda: len(frozen))
    for _ in range(2):
        async with make_client() as client:
            assert (await client.post("/predict", json={"text": "hello"})).status_code == 200
    assert frozen == [1]


async def test_start_up_logs_the_thread_plan(make_client, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="cockatoo_ml.serving.app"):
        async with make_client(model_threads=3, torch_threads=1):
            pass
    assert "3 forward passes at once, 1 torch threads each" in caplog.text


async def test_metrics(client) -> None:
    await client.post("/predict", json={"text": "x"})
    await client.post("/predict", json={"text": ""})
    await client.post("/batch", json={"texts": ["a", "b", "c"]})
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.content_type.startswith("text/plain")
    text = await response.get_data(as_text=True)
    assert 'cockatoo_requests_total{endpoint="/predict",status="200"} 1.0' in text
    assert 'cockatoo_requests_total{endpoint="/predict",status="422"} 1.0' in text
    assert 'cockatoo_request_latency_seconds_count{endpoint="/batch"} 1.0' in text
    assert "cockatoo_batch_texts_sum 4.0" in text  # 1 + 3 texts scored
    assert "cockatoo_queue_texts 0.0" in text
    assert "cockatoo_texts_total 4.0" in text


async def test_access_log_has_one_line_per_request_and_no_texts(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cockatoo_ml.access")
    await client.post("/predict", json={"text": "private message"})
    await client.post("/predict", data=b"{")
    lines = [r.getMessage() for r in caplog.records if r.name == "cockatoo_ml.access"]
    assert len(lines) == 2
    assert "POST /predict 200" in lines[0] and "n_texts=1" in lines[0] and "POST /predict 400" in lines[1]
    assert all("private message" not in line for line in caplog.text.splitlines())


async def test_texts_are_logged_only_when_switched_on(make_client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cockatoo_ml.access")
    async with make_client(log_texts=True) as client:
        await client.post("/predict", json={"text": "log me please"})
    assert any("log me please" in r.getMessage() for r in caplog.records if r.name == "cockatoo_ml.access")


async def test_openapi_and_docs(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    assert {"/predict", "/batch", "/health"} <= set(spec["paths"])
    assert "/metrics" not in spec["paths"]
    predict = spec["paths"]["/predict"]["post"]
    request_schema = predict["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["title"] == "PredictRequest" and request_schema["required"] == ["text"]
    assert set(predict["responses"]) >= {"200", "400", "401", "413", "422", "429"}
    assert predict["responses"]["422"]["content"]["application/json"]["schema"]["title"] == "ErrorResponse"
    assert predict["requestBody"]["required"] is True and spec["paths"]["/batch"]["post"]["requestBody"]["required"]
    text = request_schema["properties"]["text"]
    assert text["minLength"] == 1 and text["pattern"] == VISIBLE_CHARACTER and "lone surrogates" in text["description"]
    [threshold_map] = [
        shape for shape in request_schema["properties"]["threshold"]["anyOf"][0]["oneOf"] if shape["type"] == "object"
    ]
    assert threshold_map["propertyNames"] == {"enum": ["scam", "violence", "nsfw", "harassment"]}
    docs = await client.get("/docs")
    assert docs.status_code == 200 and "swagger" in (await docs.get_data(as_text=True)).lower()


async def test_no_debug_mode(client) -> None:
    assert client.app.debug is False


# --- property: no client input can produce a 500 ---------------------------------------------------------
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
field_names = st.sampled_from(["text", "texts", "threshold", "scam", "nsfw", "extra"])
bodies = st.one_of(
    st.binary(max_size=200),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(field_names, json_values, max_size=3).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"text": st.text(max_size=50)},
        optional={"threshold": st.one_of(json_values, st.dictionaries(field_names, json_values, max_size=3))},
    ).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"texts": st.lists(st.text(max_size=20), max_size=5)}, optional={"threshold": json_values})
    .map(lambda v: json.dumps(v).encode()),
)


@settings(max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    path=st.sampled_from(["/predict", "/batch"]),
    body=bodies,
    content_type=st.sampled_from(["application/json", "text/plain", ""]),
)
def test_no_input_produces_a_500(make_client, path: str, body: bytes, content_type: str) -> None:
    async def send() -> tuple[int, dict]:
        async with make_client() as client:
            headers = {"Content-Type": content_type} if content_type else {}
            response = await client.post(path, data=body, headers=headers)
            return response.status_code, await response.get_json()

    status, payload = asyncio.run(send())
    assert status in (200, 400, 413, 422), (status, payload)
    if status != 200:
        assert isinstance(payload["error"], str) and payload["error"]


# --- same text, same answer: a text's scores do not depend on its batch-mates -------------------------------
class RecordingClassifier(TextClassifier):
    """The real model; remembers each text's raw scores from every (shared) scoring call."""

    def __init__(self, inner: TextClassifier) -> None:
        self.__dict__.update(inner.__dict__)
        self.calls: list[list[str]] = []
        self.scored: list[tuple[str, tuple[float, ...]]] = []

    def score(self, texts, ready=None):  # type: ignore[no-untyped-def]
        results = super().score(texts, ready)
        self.calls.append(list(texts))
        self.scored.extend((text, result.scores) for text, result in zip(texts, results))
        return results


SAME_ANSWER_POOL = [
    "hi", "Send 0.5 BTC to this wallet now", "I could kill for a coffee", "\u05e9\u05dc\u05d5\u05dd \u202e abc",
    "e\u0301\u0301\u0301 \U0001f600\U0001f600", "word " * 30, " ".join(f"token{i}" for i in range(150)),  # 1 to 5+ windows
    "URGENT your account is suspended, verify your card number", "ok \x00 fine", "Z\u0351\u0360a\u0362l\u0322g\u0334o",
]


@pytest.mark.parametrize("dtype", ["auto", "bfloat16"])
async def test_a_texts_scores_do_not_depend_on_its_batch_mates(make_client, make_settings, dtype: str) -> None:
    """Whichever path serves: float32 (auto on the tiny model, which has no parity sample) or bucketed bfloat16."""
    import random

    from cockatoo_ml.inference.loading import load_classifier

    settings = make_settings(dtype=dtype)
    assert make_settings().dtype == "auto"
    recording = RecordingClassifier(load_classifier(settings))
    alone = {text: recording.score([text])[0].scores for text in SAME_ANSWER_POOL}
    recording.calls.clear()
    recording.scored.clear()
    rng = random.Random(10)
    async with make_client(classifier=recording, micro_batch_wait_ms=30, model_threads=1) as client:
        for _ in range(6):  # random compositions: single texts and batches sent together share scoring calls
            requests = []
            for _ in range(rng.randint(2, 6)):
                texts = rng.sample(SAME_ANSWER_POOL, rng.randint(1, 4))
                requests.append(("/predict", {"text": texts[0]}) if len(texts) == 1 else ("/batch", {"texts": texts}))
            responses = await asyncio.gather(*(client.post(path, json=body) for path, body in requests))
            for (path, body), response in zip(requests, responses):
                assert response.status_code == 200
                answer = await response.get_json()
                results = [answer] if path == "/predict" else answer["results"]
                for result in results:
                    expected = dict(zip(recording.labels, alone[result["text"]]))
                    assert result["predictions"] == pytest.approx(expected, abs=1e-4 + 1e-9)
    assert max(len(call) for call in recording.calls) >= 4  # texts really were scored together
    for text, scores in recording.scored:
        assert scores == pytest.approx(alone[text], abs=1e-6, rel=0), text


async def test_the_server_runs_no_more_forward_passes_at_once_than_its_thread_plan(make_client, make_settings) -> None:
    """The batcher's model threads each call score(), whose passes may also run on the classifier's pool: under
    load, COCKATOO_MODEL_THREADS bounds them all together (a spy on the forward pass counts them)."""
    from cockatoo_ml.inference.loading import load_classifier
    from tests.inference.test_classifier import Overlap

    classifier = load_classifier(make_settings(model_threads=2, micro_batch_tokens=16))
    assert classifier.parallel_passes == 2
    spy = classifier._forward = Overlap(classifier._forward)  # type: ignore[method-assign]
    # One request per batch: a /predict of one short text is one pass on its model thread, beside a /batch on the pool.
    async with make_client(classifier=classifier, model_threads=2, micro_batch_tokens=16, micro_batch_size=1) as client:
        requests = [("/batch", {"texts": SAME_ANSWER_POOL})] * 3 + [("/predict", {"text": t}) for t in SAME_ANSWER_POOL]
        responses = await asyncio.gather(*(client.post(path, json=body) for path, body in requests * 2))
    assert all(response.status_code == 200 for response in responses)
    assert spy.most == 2 and spy.calls > len(responses)


# --- cost, bounded answers, honest logs and metrics, readiness ----------------------------------------------
async def test_a_batch_over_the_text_limit_is_413_before_its_texts_are_validated(client, monkeypatch) -> None:
    from quart_schema import conversion

    validated: list[type] = []
    type_adapter = conversion.TypeAdapter

    def recording_type_adapter(model: type) -> object:
        validated.append(model)
        return type_adapter(model)

    monkeypatch.setattr(conversion, "TypeAdapter", recording_type_adapter)
    response = await client.post("/batch", data=json.dumps({"texts": list(range(20_000))}).encode())
    assert response.status_code == 413 and BatchRequest not in validated  # one count, not 20,000 pydantic errors
    assert "20000 texts in one request; the limit is 256" in (await response.get_json())["error"]


async def test_a_huge_invalid_batch_gets_a_small_422(make_client) -> None:
    async with make_client(max_batch_texts=100_000, max_queue_texts=100_000) as client:
        response = await client.post("/batch", data=json.dumps({"texts": list(range(100_000))}).encode())
    assert response.status_code == 422
    body = await response.get_data()
    assert len(body) <= 16 * 1024
    error = json.loads(body)
    assert error["error_count"] == 100_000 and 1 <= len(error["detail"]) <= 5
    assert error["detail"][0]["field"] == "texts.0" and "(and 99997 more)" in error["error"]


async def test_tokens_are_counted_off_the_event_loop_and_over_budget_is_413(make_client, monkeypatch) -> None:
    from cockatoo_ml.inference.budget import TokenBudget

    threads: list[str] = []
    count = TokenBudget.count

    def recording_count(self, texts, *args, **kwargs):  # type: ignore[no-untyped-def]
        threads.append(threading.current_thread().name)
        return count(self, texts, *args, **kwargs)

    monkeypatch.setattr(TokenBudget, "count", recording_count)
    async with make_client(max_text_tokens=20, max_request_tokens=30, max_queue_tokens=30) as client:
        assert (await client.post("/predict", json={"text": "word " * 20})).status_code == 200
        over = await client.post("/predict", json={"text": "word " * 21})
        assert over.status_code == 413 and "COCKATOO_MAX_TEXT_TOKENS" in (await over.get_json())["error"]
        over = await client.post("/batch", json={"texts": ["word " * 20, "word " * 11]})
        assert over.status_code == 413 and "COCKATOO_MAX_REQUEST_TOKENS" in (await over.get_json())["error"]
    assert threads and threading.main_thread().name not in threads


async def test_405_is_counted_under_its_route(client) -> None:
    assert (await client.get("/predict")).status_code == 405
    assert (await client.get("/nope")).status_code == 404
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'cockatoo_requests_total{endpoint="/predict",status="405"} 1.0' in text
    assert 'cockatoo_requests_total{endpoint="unmatched",status="404"} 1.0' in text


async def test_access_log_escapes_control_characters(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cockatoo_ml.access")
    await client.get("/nope%0a22:16:00%20INFO%20FORGED%1b[31m%e2%80%ae")
    [line] = [r.getMessage() for r in caplog.records if r.name == "cockatoo_ml.access"]
    assert "\n" not in line and "\x1b" not in line and "\u202e" not in line
    assert "/nope\\n22:16:00 INFO FORGED\\x1b[31m\\u202e 404" in line


async def test_every_answer_carries_a_request_id(client, caplog) -> None:
    caplog.set_level(logging.INFO, logger="cockatoo_ml.access")
    response = await client.post("/predict", json={"text": "hello"})
    request_id = response.headers["X-Request-ID"]
    assert len(request_id) == 32 and any(f"id={request_id}" in r.getMessage() for r in caplog.records)


async def test_health_is_503_with_a_reason_when_the_model_cannot_score(client) -> None:
    assert (await client.get("/health")).status_code == 200
    batcher = client.app.extensions["cockatoo"]["batcher"]
    batcher._collector.cancel()  # the collector died: nothing queued would ever be scored
    await asyncio.sleep(0)
    response = await client.get("/health")
    assert response.status_code == 503
    body = await response.get_json()
    assert body["status"] == "unavailable" and "stopped" in body["reason"]
    await batcher.stop()
    body = await (await client.get("/health")).get_json()
    assert body["status"] == "unavailable" and "not running" in body["reason"]
