"""POST /v1/moderations through the Quart test client: OpenAI's request and response shapes (checked against the
official SDK's own types), the category map, ``flagged``, the served model's name, and every error in OpenAI's
shape while the seed routes keep theirs. The SDK against a real server: test_openai_client.py."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
from openai._models import construct_type
from openai.types import ModerationCreateResponse
from openai.types.moderation import Categories, CategoryAppliedInputTypes, CategoryScores
from openai.types.moderation_model import ModerationModel

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.serving import OPENAI_CATEGORIES, OPENAI_MODERATION_MODELS
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.serving.moderations import CategoryMap
from tests.conftest import write_tiny_model

TEXTS = ["Send 0.5 BTC to this wallet and we will double it", "hello there", "I will hurt you tonight"]
OPENAI_OF = {"nsfw": "sexual", "harassment": "harassment", "violence": "violence"}  # the default map
ERROR_KEYS = {"message", "type", "param", "code"}


def sdk_names(model: type) -> set[str]:
    """A model's field names as the wire spells them (``self-harm``, ``sexual/minors``)."""
    return {field.alias or name for name, field in model.model_fields.items()}


def test_our_openai_names_are_the_sdks() -> None:
    for model in (Categories, CategoryScores, CategoryAppliedInputTypes):
        assert sdk_names(model) == set(OPENAI_CATEGORIES)
    assert set(typing.get_args(ModerationModel)) == set(OPENAI_MODERATION_MODELS)


def assert_openai_shape(body: dict, count: int) -> None:
    """Against the SDK's published types: the top level strictly; in each result every OpenAI category we answer
    has the SDK's type (validated by the SDK's own pydantic models, the categories we leave out filled in), and
    every other key is one of the served model's labels."""
    assert set(body) == {"id", "model", "results"} and body["id"].startswith("modr-") and len(body["results"]) == count
    for result in body["results"]:
        assert set(result) == {"flagged", "categories", "category_scores", "category_applied_input_types", "tier"}
        assert isinstance(result["flagged"], bool) and result["tier"] in ("student", "model")
        keys = set(result["categories"])
        assert set(result["category_scores"]) == keys == set(result["category_applied_input_types"])
        ours = {key for key in keys if key in OPENAI_CATEGORIES}
        for model, field, filler in (
            (Categories, "categories", False),
            (CategoryScores, "category_scores", 0.0),
            (CategoryAppliedInputTypes, "category_applied_input_types", ["text"]),
        ):
            model.model_validate({**dict.fromkeys(OPENAI_CATEGORIES, filler), **{k: result[field][k] for k in ours}})
        assert all(isinstance(result["categories"][key], bool) for key in keys)
        assert all(isinstance(result["category_scores"][key], float) for key in keys)
        assert all(result["category_applied_input_types"][key] == ["text"] for key in keys)


async def test_a_string_gets_one_result_scored_as_batch_scores_it(client, tiny_classifier: TextClassifier) -> None:
    response = await client.post("/v1/moderations", json={"input": TEXTS[0]})
    assert response.status_code == 200
    body = await response.get_json()
    assert_openai_shape(body, 1)
    assert body["model"] == "tiny_model0" and body["id"] == f"modr-{response.headers['X-Request-ID']}"
    [result] = body["results"]
    [score] = tiny_classifier.score([TEXTS[0]])
    expected = dict(zip(tiny_classifier.labels, score.scores, strict=True))
    decided = {label: value >= tiny_classifier.thresholds[label] for label, value in expected.items()}
    assert set(result["categories"]) == set(tiny_classifier.labels) | {"sexual"}  # harassment, violence: same names
    for label, value in expected.items():
        assert result["category_scores"][label] == pytest.approx(value, abs=1e-6)
        assert result["categories"][label] is decided[label]
        assert result["category_scores"][OPENAI_OF.get(label, label)] == result["category_scores"][label]
        assert result["categories"][OPENAI_OF.get(label, label)] is decided[label]
    assert result["flagged"] is any(decided.values()) and result["tier"] == "model"
    batch = await (await client.post("/batch", json={"texts": [TEXTS[0]]})).get_json()
    assert batch["results"][0]["flagged"] is result["flagged"]
    assert batch["results"][0]["predictions"] == {k: round(v, 4) for k, v in expected.items()}


async def test_the_sdk_reads_our_answer(client) -> None:
    """As the client parses it: OpenAI's names as attributes, our labels and tier as extras, a category no label
    answers for as None (not assessed) rather than a made-up 0."""
    body = await (await client.post("/v1/moderations", json={"input": TEXTS})).get_json()
    parsed = construct_type(type_=ModerationCreateResponse, value=body)
    assert isinstance(parsed, ModerationCreateResponse) and len(parsed.results) == 3
    for result, raw in zip(parsed.results, body["results"], strict=True):
        assert result.flagged is raw["flagged"] and result.tier == raw["tier"]  # type: ignore[attr-defined]
        assert result.categories.sexual is raw["categories"]["nsfw"]
        assert result.category_scores.violence == raw["category_scores"]["violence"]
        assert result.category_applied_input_types.sexual == ["text"]
        assert result.categories.self_harm is None and result.category_scores.hate is None
        assert result.categories.model_extra["scam"] is raw["categories"]["scam"]


async def test_a_list_keeps_its_order_and_takes_openai_text_items(client, tiny_classifier: TextClassifier) -> None:
    items = [TEXTS[0], {"type": "text", "text": TEXTS[1]}, TEXTS[2]]
    body = await (await client.post("/v1/moderations", json={"input": items})).get_json()
    assert_openai_shape(body, 3)
    for text, result in zip(TEXTS, body["results"], strict=True):
        [score] = tiny_classifier.score([text])
        assert [result["category_scores"][label] for label in tiny_classifier.labels] == pytest.approx(
            score.scores, abs=1e-6
        )


async def test_a_long_text_is_scored_in_windows(client, tiny_classifier: TextClassifier) -> None:
    long_text = " ".join(f"word{i}" for i in range(200))
    [score] = tiny_classifier.score([long_text])
    assert score.windows > 3
    body = await (await client.post("/v1/moderations", json={"input": long_text})).get_json()
    scores = body["results"][0]["category_scores"]
    assert [scores[label] for label in tiny_classifier.labels] == pytest.approx(score.scores, abs=1e-6)


@pytest.mark.parametrize("name", [None, "tiny_model0", "omni-moderation-latest", "text-moderation-stable"])
async def test_model_is_optional_and_answered_with_the_served_name(client, name: str | None) -> None:
    body = {"input": "hello"} if name is None else {"input": "hello", "model": name}
    response = await client.post("/v1/moderations", json=body)
    assert response.status_code == 200 and (await response.get_json())["model"] == "tiny_model0"


async def test_only_the_configured_names_are_answered(make_client) -> None:
    async with make_client(model_name="cockatoo-v2", openai_models=("cockatoo-latest",)) as client:
        ok = await client.post("/v1/moderations", json={"input": "hi", "model": "cockatoo-latest"})
        assert ok.status_code == 200 and (await ok.get_json())["model"] == "cockatoo-v2"
        refused = await client.post("/v1/moderations", json={"input": "hi", "model": "omni-moderation-latest"})
        assert refused.status_code == 400
        error = (await refused.get_json())["error"]
        assert error["param"] == "model" and "'cockatoo-v2' (it also answers to cockatoo-latest)" in error["message"]


BAD_REQUESTS = [
    # (body, status, param, words in the message)
    ({"input": ""}, 400, "input", "must not be empty"),
    ({"input": " \u200b\u200e\ufeff\t"}, 400, "input", "only whitespace, control or format"),
    (b'{"input": "hi \\ud800"}', 400, "input", "lone surrogate U+D800"),
    ({"input": ["fine", "\x00"]}, 400, "input.1", "must not be empty"),
    ({"input": []}, 400, "input", "at least 1 item"),
    ({"input": 42}, 400, "input", "valid string"),
    ({"input": None}, 400, "input", "valid string"),
    ({"input": ["ok", 7]}, 400, "input.1", "valid string"),
    ({"input": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}, 400, "input.0.type", "'text'"),
    ({"input": [{"type": "text", "text": ""}]}, 400, "input.0.text", "must not be empty"),
    ({}, 400, "input", "Field required"),
    ([1, 2], 400, "body", ""),
    ({"input": "hi", "model": "gpt-4o"}, 400, "model", "model 'gpt-4o' is not served here; this server serves"),
    ({"input": "hi", "model": 3}, 400, "model", "valid string"),
    (b"{not json", 400, None, "not valid JSON"),
    (b"", 400, None, "not valid JSON"),
    ({"input": ["x"] * 4}, 413, "input", "4 texts in one request; the limit is 3 (COCKATOO_MAX_BATCH_TEXTS)"),
    ({"input": "word " * 30}, 413, "input", "more than 20 tokens"),
    ({"input": ["a", "word " * 30]}, 413, "input.1", "COCKATOO_MAX_TEXT_TOKENS"),
]


@pytest.mark.parametrize(("body", "status", "param", "words"), BAD_REQUESTS)
async def test_errors_take_openais_shape(make_client, body, status: int, param: str | None, words: str) -> None:
    async with make_client(max_batch_texts=3, max_queue_texts=3, max_text_tokens=20) as client:
        if isinstance(body, bytes):
            response = await client.post("/v1/moderations", data=body, headers={"Content-Type": "application/json"})
        else:
            response = await client.post("/v1/moderations", json=body)
        answer = await response.get_json()
    assert response.status_code == status, answer
    assert set(answer) == {"error"} and set(answer["error"]) == ERROR_KEYS
    assert answer["error"]["type"] == "invalid_request_error" and answer["error"]["param"] == param
    assert words in answer["error"]["message"]
    assert answer["error"]["code"] == ("model_not_found" if param == "model" and "gpt-4o" in words else None)


async def test_one_handler_answers_each_route_in_its_own_shape(client) -> None:
    seed = await client.post("/predict", json={"text": ""})
    assert seed.status_code == 422 and set(await seed.get_json()) == {"error", "detail", "error_count"}
    ours = await client.post("/v1/moderations", json={"input": ""})
    assert ours.status_code == 400 and set(await ours.get_json()) == {"error"}
    unknown = await client.post("/v1/embeddings", json={"input": "x"})  # an OpenAI client on a route we lack
    assert unknown.status_code == 404 and set((await unknown.get_json())["error"]) == ERROR_KEYS
    wrong_method = await client.get("/v1/moderations")
    assert wrong_method.status_code == 405 and "POST" in wrong_method.headers["Allow"]
    assert (await wrong_method.get_json())["error"]["type"] == "invalid_request_error"


async def test_the_api_key_guards_the_route(make_client) -> None:
    async with make_client(api_key="s3cret") as client:
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            refused = await client.post("/v1/moderations", json={"input": "x"}, headers=headers)
            assert refused.status_code == 401 and refused.headers["WWW-Authenticate"].startswith("Bearer")
            error = (await refused.get_json())["error"]
            assert error["code"] == "invalid_api_key" and "API key" in error["message"]
        ok = await client.post("/v1/moderations", json={"input": "x"}, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200


async def test_a_full_queue_is_a_429_with_retry_after(full_queue) -> None:
    busy = (("/v1/moderations", {"input": "first"}), ("/v1/moderations", {"input": ["a", "b"]}))
    async with full_queue(*busy) as client:
        refused = await client.post("/v1/moderations", json={"input": "third"})
        assert refused.status_code == 429 and refused.headers["Retry-After"] == "3"
        error = (await refused.get_json())["error"]
        assert error == {"message": error["message"], "type": "requests", "param": None, "code": "rate_limit_exceeded"}
        assert "busy" in error["message"]


async def test_a_category_map_of_our_own(make_client, tiny_classifier: TextClassifier) -> None:
    """Several labels on one category (its score is their maximum, its decision any of theirs); one label on
    several categories; pairs for labels the model lacks are left out."""
    pairs = (
        "violence=harassment/threatening",
        "harassment=harassment/threatening",
        "harassment=hate",
        "unsafe=illicit",
    )
    async with make_client(openai_categories=pairs) as client:
        health = await (await client.get("/health")).get_json()
        assert health["openai_categories"] == {
            "violence": ["harassment/threatening"],
            "harassment": ["harassment/threatening", "hate"],
        }
        body = await (await client.post("/v1/moderations", json={"input": TEXTS, "model": None})).get_json()
    assert_openai_shape(body, 3)
    thresholds = tiny_classifier.thresholds
    for text, result in zip(TEXTS, body["results"], strict=True):
        scores = dict(zip(tiny_classifier.labels, tiny_classifier.score([text])[0].scores, strict=True))
        assert set(result["categories"]) == {*tiny_classifier.labels, "harassment/threatening", "hate"}
        both = ("violence", "harassment")
        assert result["category_scores"]["harassment/threatening"] == pytest.approx(max(scores[l] for l in both))
        assert result["categories"]["harassment/threatening"] is any(scores[l] >= thresholds[l] for l in both)
        assert result["category_scores"]["hate"] == pytest.approx(scores["harassment"])
        assert result["category_scores"]["nsfw"] == pytest.approx(scores["nsfw"])  # no pair: its own name only


def test_a_category_spelled_as_another_label_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"maps nsfw to 'harassment', which is also one of this model's own labels"):
        CategoryMap.build(("nsfw", "harassment"), {"nsfw": ("harassment",)})
    assert CategoryMap.build(("harassment",), {"harassment": ("harassment",)}).openai == {}


async def test_health_shows_the_default_map(client) -> None:
    health = await (await client.get("/health")).get_json()
    assert health["openai_categories"] == {"violence": ["violence"], "nsfw": ["sexual"], "harassment": ["harassment"]}


@pytest.fixture(scope="module")
def unsafe_model_dir(tmp_path_factory: pytest.TempPathFactory, minilm_path: str) -> Path:
    """A model with an ``unsafe`` label; its thresholds make unsafe the only label that can be positive."""
    thresholds = {"scam": 1.0, "violence": 1.0, "nsfw": 1.0, "harassment": 1.0, "unsafe": 0.0}
    return write_tiny_model(tmp_path_factory.mktemp("unsafe_model"), minilm_path, thresholds)


async def test_unsafe_drives_flagged_under_its_own_name(make_client, unsafe_model_dir: Path) -> None:
    classifier = TextClassifier.load(unsafe_model_dir, dtype="float32")
    async with make_client(classifier=classifier) as client:
        [result] = (await (await client.post("/v1/moderations", json={"input": "hello"})).get_json())["results"]
        predicted = await (await client.post("/predict", json={"text": "hello"})).get_json()
    assert result["flagged"] is True and result["categories"]["unsafe"] is True
    assert not any(result["categories"][name] for name in ("sexual", "harassment", "violence", "scam", "nsfw"))
    assert "unsafe" in result["category_scores"] and not set(result["categories"]) & {"hate", "illicit"}
    assert predicted["flagged"] is True and predicted["positive_labels"] == ["unsafe"]


async def test_openapi_documents_the_route(client) -> None:
    spec = await (await client.get("/openapi.json")).get_json()
    operation = spec["paths"]["/v1/moderations"]["post"]
    request_schema = operation["requestBody"]["content"]["application/json"]["schema"]
    assert request_schema["title"] == "ModerationRequest" and request_schema["required"] == ["input"]
    [name_shape] = [shape for shape in request_schema["properties"]["model"]["anyOf"] if shape["type"] == "string"]
    assert name_shape["enum"] == sorted({"tiny_model0", *OPENAI_MODERATION_MODELS})
    assert set(operation["responses"]) == {"200", "400", "401", "408", "413", "429"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["title"] == "OpenAIErrorResponse"
    assert operation["responses"]["200"]["content"]["application/json"]["schema"]["title"] == "ModerationResponse"


async def test_metrics_count_the_route(client) -> None:
    await client.post("/v1/moderations", json={"input": ["a", "b"]})
    await client.post("/v1/moderations", json={"input": ""})
    text = await (await client.get("/metrics")).get_data(as_text=True)
    assert 'cockatoo_requests_total{endpoint="/v1/moderations",status="200"} 1.0' in text
    assert 'cockatoo_requests_total{endpoint="/v1/moderations",status="400"} 1.0' in text
    assert 'cockatoo_request_latency_seconds_count{endpoint="/v1/moderations"} 2.0' in text
    assert "cockatoo_texts_total 2.0" in text
