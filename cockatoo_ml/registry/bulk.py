"""Defaults and settings of ``score.py``: score files of texts with a model directory into Parquet parts.

How the model scores (precision, windows, the cascade, the token limit per text, threads) is the server's
business and comes from the same ``COCKATOO_*`` variables (registry/serving.py), so that a file scored here and a
text sent to the server get the same answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.settings import setting

# Rows per batch: one scoring call, one output part, what a crash can lose. 100 million texts make ~24,000 parts.
BATCH_ROWS = 4096
# Batches queued per Ray replica beside the one it scores, so that a replica never waits for its next input.
RAY_TASKS_IN_FLIGHT = 2


@dataclass
class ScoreSettings:
    """Flags of ``score.py``."""

    inputs: list[str] = setting(
        positional=True,
        help="Files to score: Parquet (.parquet), JSON Lines (.jsonl, .ndjson), CSV (.csv) or plain text with one "
        "text per line (.txt); .gz/.bz2/.xz compressed text formats too. Paths, folders (every file in them) or "
        "globs ('data/*.parquet'), local or any URL fsspec reaches (s3://bucket/posts/*.jsonl with s3fs installed).",
    )
    model: Path = setting(help="Model directory to score with (train_text.py output), as the server would serve it.")
    output: str = setting(
        help="Folder (local or URL) for the Parquet parts, _summary.json and _job.json. Run again with the same "
        "settings to resume: parts already written are skipped.",
    )
    text_column: str = setting("text", help="Column (Parquet, CSV) or field (JSON Lines) holding the text.")
    id_column: str | None = setting(
        None,
        help="Column or field carried into the output as an identifier, under its own name. Rows are always named "
        "by 'file' and 'row' (0-based position in the file) as well.",
    )
    format: Literal["auto", "parquet", "jsonl", "csv", "text"] = setting(
        "auto", help="Read every input in this format; auto: from each file's suffix."
    )
    batch_size: int = setting(
        BATCH_ROWS,
        ge=1,
        env="COCKATOO_SCORE_BATCH_SIZE",
        help="Rows per batch: one scoring call, one output part and the unit of resuming. A rerun must use the "
        "same value.",
    )
    engine: Literal["local", "ray"] = setting(
        "local",
        env="COCKATOO_SCORE_ENGINE",
        help="local: stream the files through one model in this process (memory bounded by a batch); ray: Ray Data "
        "reads the files and an actor pool of model replicas scores them, on this machine or a cluster.",
    )
    replicas: int = setting(
        0,
        ge=0,
        help="With --engine ray: model replicas (one GPU each when the cluster has GPUs); 0 = one per GPU, or, "
        "without GPUs, one per --cpus-per-replica of the cluster's CPUs.",
    )
    cpus_per_replica: float = setting(
        1.0, gt=0, help="With --engine ray: CPUs each replica reserves (its torch threads, without a GPU)."
    )
    ray_address: str | None = setting(
        None,
        env="RAY_ADDRESS",
        help="With --engine ray: the cluster to join (ray://host:10001 or auto); unset, a local Ray starts for the run.",
    )

    def __post_init__(self) -> None:
        if self.engine != "ray":
            given = [
                flag for flag, value in (("--replicas", self.replicas), ("--ray-address", self.ray_address)) if value
            ]
            if given:
                raise ConfigError(f"{given[0]} goes with --engine ray")
