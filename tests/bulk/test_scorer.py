"""score.py answers as the server does (cockatoo_ml/bulk/scorer.py): same scores, windows, tiers, decisions and
refusals for the same texts, model and settings, with and without the cascade's student."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.bulk.conftest import Runner, read_output, server_batch, write_jsonl
from tests.conftest import EXAMPLES, SURE, UNSURE

LONG = " ".join(text for texts in EXAMPLES.values() for text in texts)  # several of the tiny model's 64-token windows
TEXTS = [
    *(text for texts in EXAMPLES.values() for text in texts[:2]),
    LONG,
    SURE,
    UNSURE,
    f"{' '.join([SURE] * 30)} {' '.join([UNSURE] * 15)}",  # sure windows, then an unsure passage
    "emoji 🦜 and RTL ‏שלום‎ and NUL-free \u00e9",
]
HALF_LAST_DIGIT = 5e-5 + 1e-9  # the server rounds scores to 4 places; score.py keeps them whole


def assert_same_answers(rows: list[dict], results: list[dict], labels: tuple[str, ...]) -> None:
    assert len(rows) == len(results)
    for row, result in zip(rows, results, strict=True):
        assert row["error"] is None
        for label in labels:
            assert abs(row[label] - result["predictions"][label]) <= HALF_LAST_DIGIT, (result["text"], label)
        same = ("positive_labels", "flagged", "top_label", "tier", "windows")
        assert {key: row[key] for key in same} == {key: result[key] for key in same}, result["text"]


@pytest.mark.parametrize("with_student", [False, True], ids=["transformer", "cascade"])
async def test_the_same_texts_get_the_servers_answers(
    run_score: Runner, tiny_model_dir: Path, cascade_dir: Path, tmp_path: Path, labels, with_student: bool
) -> None:
    model = cascade_dir if with_student else tiny_model_dir
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text} for text in TEXTS])
    summary = run_score([source], tmp_path / "out", "--batch-size", "4", model=model)
    status, body = await server_batch(model, TEXTS)
    assert status == 200
    rows = read_output(tmp_path / "out")
    assert_same_answers(rows, body["results"], labels)
    assert max(row["windows"] for row in rows) > 1  # the long texts were scored in windows
    tiers = {row["tier"] for row in rows}
    assert tiers == ({"student", "model"} if with_student else {"model"})
    assert summary["tiers"] == {tier: sum(row["tier"] == tier for row in rows) for tier in tiers}


async def test_scoring_settings_from_the_environment_apply_as_in_the_server(
    run_score: Runner, tiny_model_dir: Path, cascade_dir: Path, tmp_path: Path, labels, monkeypatch
) -> None:
    monkeypatch.setenv("COCKATOO_CASCADE", "off")
    monkeypatch.setenv("COCKATOO_WINDOW_OVERLAP", "0.5")
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": text} for text in TEXTS])
    run_score([source], tmp_path / "out", model=cascade_dir)
    status, body = await server_batch(cascade_dir, TEXTS)  # the app reads the same environment
    rows = read_output(tmp_path / "out")
    assert_same_answers(rows, body["results"], labels)
    assert {row["tier"] for row in rows} == {"model"}


@pytest.mark.parametrize("text", ["", " \t\u200b\u2063", "ab\ud800c"], ids=["empty", "invisible", "surrogate"])
async def test_a_text_the_server_refuses_gets_the_servers_reason_and_its_neighbours_are_scored(
    run_score: Runner, tiny_model_dir: Path, tmp_path: Path, labels, text: str
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "before"}, {"text": text}, {"text": "after"}])
    summary = run_score([source], tmp_path / "out")
    before, refused, after = read_output(tmp_path / "out")
    status, body = await server_batch(tiny_model_dir, [text])
    assert status == 422 and body["detail"][0]["message"] == refused["error"]
    assert refused["tier"] is None and refused["flagged"] is None and all(refused[label] is None for label in labels)
    _, neighbours = await server_batch(tiny_model_dir, ["before", "after"])
    assert_same_answers([before, after], neighbours["results"], labels)
    assert (summary["rows"], summary["errors"], summary["scored"]) == (3, 1, 2)


async def test_a_text_over_the_token_limit_gets_the_servers_reason(
    run_score: Runner, tiny_model_dir: Path, tmp_path: Path
) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", [{"text": "short"}, {"text": LONG}])
    run_score([source], tmp_path / "out", max_text_tokens=40)
    short, long = read_output(tmp_path / "out")
    status, body = await server_batch(tiny_model_dir, [LONG], max_text_tokens=40)
    assert status == 413 and short["error"] is None and "COCKATOO_MAX_TEXT_TOKENS" in long["error"]
    assert long["error"].split(": ", 1)[1] == body["error"].split(": ", 1)[1]  # the same words after the field name
