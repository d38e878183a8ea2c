"""Fuzzing a real Hypercorn process on loopback with the whole of Unicode (lone surrogates, controls, format and
direction marks, combining marks, emoji), odd JSON shapes and odd thresholds: never a 5xx, /health stays up, and
every accepted text scores as it does alone. Then a bounded schemathesis run against the server's /openapi.json:
no 5xx, and every answer as the schema describes it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings, strategies as st
from schemathesis import Case
from schemathesis.generation.modes import GenerationMode

from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment

pytestmark = pytest.mark.slow

LABELS = ["scam", "violence", "nsfw", "harassment"]
SPECIAL = [
    "\ud800", "\udfff", "\x00", "\x1b[31m", "\r\n", "\u200b", "\u200e", "\u202e", "\u2066", "\ufeff", "\u0301",
    "\u0489", "\U0001f600", "\U0001f469\u200d\U0001f4bb", "\u05e9\u05dc\u05d5\u05dd",
    "\u0627\u0644\u0633\u0644\u0627\u0645", "\uffff", "\U0010ffff", "\U000e0041", " ", "word", "BTC", "\u4e00\u4e8c",
]
characters = st.one_of(
    st.characters(exclude_categories=[]),  # every code point, surrogates (Cs) included
    st.characters(categories=["Cc", "Cf", "Mn", "Me", "Zs", "Zl", "Zp", "So"]),
    st.sampled_from([piece for piece in SPECIAL if len(piece) == 1]),
)
texts = st.one_of(
    st.text(characters, max_size=40), st.lists(st.sampled_from(SPECIAL) | characters, max_size=80).map("".join)
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(characters, max_size=10),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)
thresholds = st.one_of(
    st.none(), st.floats(), st.integers(-2, 2), st.text(max_size=4), st.booleans(),
    st.dictionaries(st.sampled_from(LABELS + ["toxic", "", "\ud800"]), st.floats() | st.integers() | st.none(),
                    max_size=4),
    json_values,
)
requests_ = st.one_of(
    st.tuples(st.just("/predict"), st.fixed_dictionaries({"text": texts}, optional={"threshold": thresholds})),
    st.tuples(
        st.just("/batch"),
        st.fixed_dictionaries({"texts": st.lists(texts, max_size=6)}, optional={"threshold": thresholds}),
    ),
    st.tuples(st.sampled_from(["/predict", "/batch"]), json_values),
    st.tuples(st.sampled_from(["/predict", "/batch"]), st.dictionaries(st.sampled_from(["text", "texts", "threshold"]),
                                                                         json_values, max_size=3)),
    # OpenAI's moderation route: a text, a list of texts and of {"type": "text", "text": ...} items, odd models
    st.tuples(
        st.just("/v1/moderations"),
        st.fixed_dictionaries(
            {"input": texts | st.lists(texts | st.fixed_dictionaries({"type": st.just("text"), "text": texts}),
                                       max_size=6) | json_values},
            optional={"model": st.sampled_from(["omni-moderation-latest", "tiny_model0", "gpt-4o", ""]) | json_values},
        ),
    ),
    st.tuples(st.just("/v1/moderations"), json_values),
)


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    env = server_environment(os.environ, COCKATOO_MODEL_DIR=str(tiny_model_dir), COCKATOO_MICRO_BATCH_WAIT_MS="2")
    log_path = tmp_path_factory.mktemp("fuzz") / "server.log"
    running = ServerProcess.start_api(free_port(), log_path, env).wait_ready()
    yield running
    assert running.terminate() == 0, running.output()


@pytest.fixture(scope="module")
def session() -> Iterator[requests.Session]:
    with requests.Session() as opened:
        yield opened


@settings(max_examples=200, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(request=requests_)
def test_fuzzed_requests_never_get_a_5xx_and_accepted_texts_score_as_alone(
    server: ServerProcess, session: requests.Session, tiny_classifier: TextClassifier, request: tuple[str, object]
) -> None:
    path, body = request
    data = json.dumps(body, allow_nan=True).encode()  # lone surrogates travel as \ud800 escapes: valid JSON
    response = session.post(server.url + path, data=data, headers={"Content-Type": "application/json"}, timeout=60)
    assert response.status_code < 500, (response.status_code, response.text, server.output()[-2000:])
    assert response.headers["Content-Type"].startswith("application/json")
    answer = response.json()
    if response.status_code != 200:
        message = answer["error"]["message"] if path.startswith("/v1/") else answer["error"]  # OpenAI's shape there
        assert isinstance(message, str) and message and len(response.content) <= 16 * 1024
    elif path == "/v1/moderations":
        received = json.loads(data)["input"]
        sent = [received] if isinstance(received, str) else [i if isinstance(i, str) else i["text"] for i in received]
        assert len(answer["results"]) == len(sent)
        for text, result in zip(sent, answer["results"]):
            alone = tiny_classifier.score([text])[0].scores
            assert [result["category_scores"][label] for label in LABELS] == pytest.approx(alone, abs=1e-4), text
    else:
        results = [answer] if path == "/predict" else answer["results"]
        received = json.loads(data)  # as the server read it: JSON joins an escaped surrogate pair into one character
        sent = [received["text"]] if path == "/predict" else received["texts"]
        assert [result["text"] for result in results] == sent
        for text, result in zip(sent, results):
            alone = tiny_classifier.score([text])[0].scores
            assert result["predictions"] == pytest.approx(dict(zip(LABELS, alone)), abs=1e-4 + 1e-9), text
    assert session.get(f"{server.url}/health", timeout=10).status_code == 200


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_generated_requests_get_answers_as_the_openapi_schema_says(
    server: Server, session: requests.Session, mode: GenerationMode
) -> None:
    """Schemathesis' checks on every operation of /openapi.json: no 5xx, documented status codes and content types,
    bodies matching their schemas, invalid data refused and valid data accepted. (Its pytest plugin's lazy
    ``from_fixture`` does not run under pytest 9, so each operation's strategy is driven here.)"""
    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json", timeout=30)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {"GET /health", "POST /predict", "POST /batch"}
    for operation in operations:
        if mode == GenerationMode.NEGATIVE and operation.method.upper() == "GET":
            continue  # GET /health takes no input that could be made invalid

        @settings(max_examples=15, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def check(case: Case) -> None:
            case.call_and_validate(base_url=server.url, session=session, timeout=60)

        check()
