"""The cascade in the server (cockatoo_ml/serving/cascade.py): the student answers the windows it is sure of, the
transformer (spied on) the rest; tiers in results and metrics; COCKATOO_CASCADE=off; a broken student/."""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from quart.typing import TestClientProtocol as QuartClient

from cockatoo_ml.inference.students import Student
from cockatoo_ml.registry.serving import serving_settings_from_env
from cockatoo_ml.serving.app import create_app, create_app_from_env
from cockatoo_ml.inference.classifier import ReadyCallback, ScoreItem, TextClassifier, TextScore
from tests.conftest import SURE, UNSURE

LONG_SURE = " ".join([SURE] * 30)  # past the tiny model's 64-token window; every window as sure to the student
LONG_MIXED = f"{LONG_SURE} {' '.join([UNSURE] * 15)}"  # sure windows, then an unsure passage at the end


class SpyClassifier(TextClassifier):
    """The real tiny model, recording every text (or window already cut) it is asked to score."""

    def __init__(self, inner: TextClassifier) -> None:
        self.__dict__.update(inner.__dict__)
        self.seen: list[ScoreItem] = []
        self.calls: list[list[ScoreItem]] = []  # each call's items: one micro-batch
        self._lock = threading.Lock()

    def score(self, texts: Sequence[ScoreItem], ready: ReadyCallback | None = None) -> list[TextScore]:
        with self._lock:
            self.seen.extend(texts)
            self.calls.append(list(texts))
        return super().score(texts, ready)


@pytest.fixture
def spy(tiny_classifier: TextClassifier) -> SpyClassifier:
    return SpyClassifier(tiny_classifier)


@asynccontextmanager
async def open_client(model_dir: Path, classifier: TextClassifier, **overrides: object) -> AsyncIterator[QuartClient]:
    app = create_app(serving_settings_from_env(model_dir=model_dir, **overrides), classifier)
    async with app.test_app() as test_app:
        yield test_app.test_client()


async def test_a_sure_text_never_reaches_the_transformer_and_an_unsure_one_always_does(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    student = Student.load(cascade_dir / "student")
    async with open_client(cascade_dir, spy) as client:
        sure = await (await client.post("/predict", json={"text": SURE})).get_json()
        assert sure["tier"] == "student" and spy.seen == []
        expected = dict(zip(spy.labels, student.scores([SURE])[0]))
        assert sure["predictions"] == {label: round(float(v), 4) for label, v in expected.items()}
        assert sure["positive_labels"] == [] and sure["windows"] == 1

        unsure = await (await client.post("/predict", json={"text": UNSURE})).get_json()
        assert unsure["tier"] == "model" and spy.seen == spy.cut([UNSURE]).ids  # its one window, already cut
        [score] = spy.score([UNSURE])
        assert unsure["predictions"] == {label: round(v, 4) for label, v in zip(spy.labels, score.scores)}


async def test_a_batch_mixes_tiers_in_input_order_and_metrics_count_them(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    from cockatoo_ml.inference.cascade import Cascade

    texts = [SURE, UNSURE, LONG_SURE, LONG_MIXED, SURE]
    plan = Cascade.load(cascade_dir / "student", spy).plan(spy, texts)
    owner = plan.cut.owner
    assert plan.sure[owner == 2].all() and (owner == 2).sum() > 1  # the long sure text: every window sure
    assert plan.sure[owner == 3].any() and not plan.sure[owner == 3].all()  # the mixed one: some of each
    async with open_client(cascade_dir, spy) as client:
        body = await (await client.post("/batch", json={"texts": texts})).get_json()
        assert [r["tier"] for r in body["results"]] == ["student", "model", "student", "model", "student"]
        assert [r["text"] for r in body["results"]] == texts
        # Only the windows the student is not sure of reach the transformer: the short unsure text's one window
        # and the unsure end of the mixed text, never its sure windows.
        assert sorted(spy.seen) == sorted(plan.cut.ids[i] for i in plan.for_model)
        assert len(spy.seen) < 1 + (owner == 3).sum()
        assert [r["windows"] for r in body["results"]] == [int((owner == i).sum()) for i in range(len(texts))]
        metrics = (await (await client.get("/metrics")).get_data()).decode()
    assert 'cockatoo_answered_texts_total{tier="student"} 3.0' in metrics
    assert 'cockatoo_answered_texts_total{tier="model"} 2.0' in metrics
    assert f"cockatoo_texts_total {float(len(spy.seen))}" in metrics  # windows the transformer scored


async def test_openai_moderations_go_through_the_same_cascade_as_batch(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    texts = [SURE, UNSURE, LONG_SURE, LONG_MIXED]
    async with open_client(cascade_dir, spy) as client:
        batch = (await (await client.post("/batch", json={"texts": texts})).get_json())["results"]
        seen = len(spy.seen)
        moderated = (await (await client.post("/v1/moderations", json={"input": texts})).get_json())["results"]
    assert [r["tier"] for r in moderated] == [r["tier"] for r in batch] == ["student", "model", "student", "model"]
    assert len(spy.seen) == 2 * seen  # the same windows reached the transformer again, no more
    for ours, seed in zip(moderated, batch, strict=True):
        assert {label: round(ours["category_scores"][label], 4) for label in spy.labels} == seed["predictions"]
        assert ours["flagged"] is seed["flagged"] is bool(seed["positive_labels"])


async def test_a_long_text_keeps_each_labels_maximum_over_student_and_transformer_windows(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    from cockatoo_ml.inference.cascade import Cascade

    cascade = Cascade.load(cascade_dir / "student", spy)
    plan = cascade.plan(spy, [LONG_MIXED])
    async with open_client(cascade_dir, spy) as client:
        body = await (await client.post("/predict", json={"text": LONG_MIXED})).get_json()
    model = np.array([r.scores for r in spy.score([plan.cut.ids[i] for i in plan.for_model])])
    window_scores = plan.student.copy()
    window_scores[plan.for_model] = model
    expected = window_scores.max(axis=0)
    assert body["predictions"] == {label: round(float(v), 4) for label, v in zip(spy.labels, expected, strict=True)}
    assert body["positive_labels"] == [l for l, v in zip(spy.labels, expected, strict=True) if v >= spy.thresholds[l]]


async def test_concurrent_windows_and_whole_texts_share_batches_without_mixing_answers(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    import asyncio

    texts = [SURE, UNSURE, LONG_SURE, LONG_MIXED, f"{UNSURE} again", f"{LONG_MIXED} twice"]
    requests = [{"texts": texts[i:] + texts[:i], **({"threshold": 0.4} if i % 2 else {})} for i in range(len(texts))]
    async with open_client(cascade_dir, spy, micro_batch_wait_ms=200) as client:  # room to meet
        alone = [await (await client.post("/batch", json=body)).get_json() for body in requests]
        together = await asyncio.gather(*(client.post("/batch", json=body) for body in requests))
        together = [await response.get_json() for response in together]
    # Whole texts (own threshold) and cut windows (cascade) were batched together; each answer is its own.
    assert any({type(item) for item in call} == {str, tuple} for call in spy.calls)
    assert together == alone
    assert {r["tier"] for body in alone for r in body["results"]} == {"student", "model"}


async def test_a_request_with_its_own_threshold_goes_to_the_transformer(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    async with open_client(cascade_dir, spy) as client:
        body = await (await client.post("/predict", json={"text": SURE, "threshold": 0.01})).get_json()
    assert body["tier"] == "model" and spy.seen == [SURE]


async def test_health_shows_the_cascade_and_off_switches_it_off(clean_env, cascade_dir: Path, spy: SpyClassifier) -> None:
    async with open_client(cascade_dir, spy) as client:
        health = await (await client.get("/health")).get_json()
    # The held-out figures, never the in-sample ones of the texts the bands were fitted on.
    assert health["cascade"] == {"enabled": True, "student": "tfidf", "held_out_agreement": 0.997,
                                 "held_out_answered_share": 0.7, "held_out_texts": 100}
    async with open_client(cascade_dir, spy, cascade="off") as client:
        health = await (await client.get("/health")).get_json()
        body = await (await client.post("/batch", json={"texts": [SURE, UNSURE]})).get_json()
    assert health["cascade"] == {"enabled": False, "student": None, "held_out_agreement": None,
                                 "held_out_answered_share": None, "held_out_texts": None}
    assert [r["tier"] for r in body["results"]] == ["model", "model"] and spy.seen == [SURE, UNSURE]


async def test_health_shows_no_agreement_for_a_student_whose_bands_were_never_checked(
    clean_env, cascade_dir: Path, spy: SpyClassifier
) -> None:
    """An older distill.py measured "validation" on the very texts it fitted the bands on: not held out."""
    path = cascade_dir / "student" / "cascade.json"
    report = json.loads(path.read_text())
    report["validation"] = report.pop("fit")
    del report["held_out"]
    path.write_text(json.dumps(report))
    async with open_client(cascade_dir, spy) as client:
        health = await (await client.get("/health")).get_json()
    assert health["cascade"] == {"enabled": True, "student": "tfidf", "held_out_agreement": None,
                                 "held_out_answered_share": None, "held_out_texts": None}


def test_cascade_setting_from_the_environment(clean_env, cascade_dir: Path) -> None:
    clean_env.setenv("COCKATOO_MODEL_DIR", str(cascade_dir))
    assert create_app_from_env().extensions["cockatoo"]["cascade"] is not None
    clean_env.setenv("COCKATOO_CASCADE", "off")
    assert create_app_from_env().extensions["cockatoo"]["cascade"] is None
    clean_env.setenv("COCKATOO_CASCADE", "maybe")
    with pytest.raises(SystemExit, match="error: COCKATOO_CASCADE='maybe'"):
        create_app_from_env()


def _edit_report(folder: Path, change) -> None:  # noqa: ANN001
    path = folder / "cascade.json"
    report = json.loads(path.read_text())
    change(report)
    path.write_text(json.dumps(report))


def test_a_tokenizer_without_offsets_cannot_serve_a_cascade(cascade_dir: Path, tiny_classifier: TextClassifier) -> None:
    from cockatoo_ml.errors import ModelLoadError
    from cockatoo_ml.inference.cascade import Cascade

    slow = SpyClassifier(tiny_classifier)
    slow.tokenizer = type("SlowTokenizer", (), {"is_fast": False})()
    with pytest.raises(ModelLoadError, match="no fast tokenizer, which the cascade needs; .*COCKATOO_CASCADE=off"):
        Cascade.load(cascade_dir / "student", slow)


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "cascade.json").unlink(), "cannot load the cascade's student in .*cascade.json"),
        (lambda d: (d / "head.npz").write_bytes(b"not a zip"), "cannot load the cascade's student"),
        (lambda d: (d / "tfidf.json").write_text("{"), "cannot load the cascade's student"),
        (lambda d: _edit_report(d, lambda r: r["bands"].pop("nsfw")), "no band for label 'nsfw'"),
        (lambda d: _edit_report(d, lambda r: r["bands"]["scam"].update(low=2.0)), "low <= high"),
        (lambda d: _edit_report(d, lambda r: r["thresholds"].update(scam=0.9)), "thresholds.json changed"),
        (lambda d: _edit_report(d, lambda r: r.pop("unit")), "banded per text, not per window"),
    ],
)
def test_a_broken_student_stops_start_up_with_one_line(clean_env, cascade_dir: Path, damage, message: str) -> None:
    damage(cascade_dir / "student")
    clean_env.setenv("COCKATOO_MODEL_DIR", str(cascade_dir))
    with pytest.raises(SystemExit, match=message) as caught:
        create_app_from_env()
    text = str(caught.value)
    assert text.startswith("error: ") and "\n" not in text and "COCKATOO_CASCADE=off" in text
    clean_env.setenv("COCKATOO_CASCADE", "off")  # the way out the message names
    assert create_app_from_env().extensions["cockatoo"]["cascade"] is None


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
# Every code point but lone surrogates: the request models turn those away with a 422 before any scoring
# (tests/serving/test_fuzz.py sends them through HTTP), so the cascade never sees one.
@given(texts=st.lists(st.text(alphabet=st.characters(codec=None, exclude_categories=("Cs",)), min_size=1, max_size=300),
                      min_size=1, max_size=8))
def test_any_unicode_is_cut_into_the_transformers_windows_and_scored_by_the_student(
    cascade_dir: Path, tiny_classifier, texts
) -> None:
    from cockatoo_ml.inference.cascade import Cascade, Plan

    cascade = Cascade.load(cascade_dir / "student", tiny_classifier)
    plan = cascade.plan(tiny_classifier, texts)
    assert plan.student.shape == (len(plan.cut.ids), 4) and np.isfinite(plan.student).all()
    assert ((plan.student >= 0) & (plan.student <= 1)).all() and plan.sure.shape == (len(plan.cut.ids),)
    assert all(0 <= start <= end <= len(texts[o]) for o, (start, end) in zip(plan.cut.owner, plan.cut.spans))
    # The windows are the transformer's own: sent whole, they score exactly as the texts do.
    alone = tiny_classifier.score(texts)
    everything = Plan(plan.texts, plan.cut, plan.student, np.zeros_like(plan.sure))
    results = everything.finish(np.array([r.scores for r in tiny_classifier.score(plan.cut.ids)]))
    assert [r.windows for r, _ in results] == [r.windows for r in alone] and {t for _, t in results} == {"model"}
    assert np.allclose([r.scores for r, _ in results], [r.scores for r in alone], atol=1e-6)
