"""Helpers for the score.py tests: inputs in every format, running it on the tiny model, reading its output, asking
the server the same texts, and a crash at a chosen part."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cockatoo_ml.bulk.outputs import PartStore
from cockatoo_ml.bulk.run import score
from cockatoo_ml.registry.bulk import ScoreSettings
from cockatoo_ml.registry.serving import serving_settings_from_env
from cockatoo_ml.serving.app import create_app
from cockatoo_ml.settings import parse_args
from tests.conftest import EXAMPLES

Runner = Callable[..., dict[str, Any]]
TEXTS = [text for texts in EXAMPLES.values() for text in texts]  # 18 texts


@pytest.fixture
def run_score(clean_env: pytest.MonkeyPatch, tiny_model_dir: Path) -> Runner:
    """``run_score(inputs, output, *flags, model=..., **serving)``: score.py's flags as a user types them, and the
    server's settings as the environment would give them; returns the summary."""

    def run(inputs: Sequence[Path | str], output: Path, *flags: str, model: Path | None = None, **serving: Any) -> dict:
        model = model or tiny_model_dir
        argv = [*map(str, inputs), "--model", str(model), "--output", str(output), *flags]
        return score(parse_args(ScoreSettings, argv), serving_settings_from_env(model_dir=model, **serving))

    return run


def read_output(output: Path) -> list[dict[str, Any]]:
    """Every row score.py wrote, in input order (file, row); the folder read as Parquet readers read it."""
    rows = pq.read_table(output).to_pylist()
    return sorted(rows, key=lambda row: (row["file"], row["row"]))


def write_jsonl(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records))
    return path


async def server_batch(model_dir: Path, texts: list[Any], **settings: Any) -> tuple[int, dict[str, Any]]:
    """``POST /batch`` to the app serving ``model_dir`` (loaded by the app itself, as in production)."""
    app = create_app(serving_settings_from_env(model_dir=model_dir, **settings))
    async with app.test_app() as test_app:
        response = await test_app.test_client().post("/batch", json={"texts": texts})
        return response.status_code, await response.get_json()


def write_inputs(folder: Path) -> dict[str, Path]:
    """The same texts (ids 100, 101, ...) as Parquet, JSON Lines, CSV and plain text."""
    folder.mkdir(parents=True, exist_ok=True)
    ids = [100 + i for i in range(len(TEXTS))]
    pq.write_table(pa.table({"body": TEXTS, "post_id": ids}), folder / "posts.parquet")
    write_jsonl(folder / "posts.jsonl", [{"body": t, "post_id": i} for t, i in zip(TEXTS, ids, strict=True)])
    csv_rows = "".join(f'{i},"{t}"\n' for t, i in zip(TEXTS, ids, strict=True))
    (folder / "posts.csv").write_text("post_id,body\n" + csv_rows)
    (folder / "posts.txt").write_text("\n".join(TEXTS) + "\n")
    return {path.suffix[1:]: path for path in folder.iterdir()}


class Crash(BaseException):
    """Stands for the process being killed (not an Exception: nothing may catch it on the way)."""


def crash_after(monkeypatch: pytest.MonkeyPatch, parts: int) -> list[str]:
    """Make the part store die while writing part number ``parts + 1``; returns the names written."""
    written: list[str] = []
    real = PartStore.write

    def write(self: PartStore, name: str, table: pa.Table, summary) -> None:  # type: ignore[no-untyped-def]
        if len(written) == parts:
            raise Crash
        real(self, name, table, summary)
        written.append(name)

    monkeypatch.setattr(PartStore, "write", write)
    return written
