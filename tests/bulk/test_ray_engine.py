"""The Ray engine (cockatoo_ml/bulk/ray_engine.py) on a local Ray cluster with the tiny model: the same rows as the
local engine, and a job the local engine left half done is finished by Ray without a part twice."""

from __future__ import annotations

from pathlib import Path

import pytest

from cockatoo_ml.bulk.outputs import PartStore
from cockatoo_ml.bulk.ray_engine import replica_plan
from cockatoo_ml.registry.bulk import ScoreSettings
from tests.bulk.conftest import Crash, Runner, crash_after, read_output, write_inputs, write_jsonl


@pytest.mark.slow  # starts a local Ray cluster and two model replicas: 30 s on two idle cores
def test_ray_finishes_a_job_the_local_engine_began_with_the_same_rows_as_the_local_engine(
    run_score: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inputs = write_inputs(tmp_path / "in")
    bad = write_jsonl(tmp_path / "in" / "bad.jsonl", [{"body": "fine"}, {"body": 3}, {"nobody": 1}])
    sources = [inputs["jsonl"], inputs["csv"], inputs["parquet"], bad]
    flags = ("--text-column", "body", "--batch-size", "4")  # 5 parts per 18-row file, 1 for bad.jsonl
    local = run_score(sources, tmp_path / "local", *flags)
    with monkeypatch.context() as patch:
        first = crash_after(patch, 6)
        with pytest.raises(Crash):
            run_score(sources, tmp_path / "mixed", *flags)
    mixed = run_score(sources, tmp_path / "mixed", *flags, "--engine", "ray", "--replicas", "2")
    assert read_output(tmp_path / "mixed") == read_output(tmp_path / "local")  # none missing, none twice
    assert {**mixed, "parts_resumed": 0} == local and mixed["parts_resumed"] == len(first) == 6
    assert PartStore(str(tmp_path / "mixed")).parts() == PartStore(str(tmp_path / "local")).parts()


def test_replicas_one_per_gpu_else_per_cpu_share() -> None:
    def plan(resources: dict[str, float], **flags: object) -> tuple[int, float]:
        settings = ScoreSettings(inputs=["x"], model=Path("m"), output="o", engine="ray", **flags)  # type: ignore[arg-type]
        return replica_plan(settings, resources)

    assert plan({"CPU": 16, "GPU": 4}) == (4, 1.0)
    assert plan({"CPU": 16}) == (16, 0.0)
    assert plan({"CPU": 16}, cpus_per_replica=4) == (4, 0.0)
    assert plan({"CPU": 2}, replicas=3) == (3, 0.0)
    assert plan({"CPU": 8, "GPU": 2}, replicas=2) == (2, 1.0)
