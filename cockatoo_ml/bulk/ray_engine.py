"""The Ray engine: Ray Data reads the files, an actor pool of model replicas scores and writes the parts.

The read side is a Ray Data ``Datasource`` with one read task per file, cutting the same batches as the local engine
(``inputs.read_batches``), so both engines name parts alike and a job started with one can be resumed with the
other. Each batch travels as one row (its part's name and the pickled batch): ``map_batches`` with
``batch_size=1`` then hands each replica whole batches, however Ray Data groups rows into blocks. A replica
(``PartWriter``, a callable class: Ray Data makes one actor of it per replica, each loading the model directory
once) scores the batch and writes its part itself, all or nothing (``PartStore.write``): Ray's own
``write_parquet`` names files by its write and block ids, which a rerun could not match to batches. The stream that
comes back to the driver is one small row per part: its counts, for the progress bar and the summary.

A batch whose part already exists is left out of the stream (the driver has counted it from the part's footer). A
file that cannot be read becomes a row with the problem.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import pickle
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pyarrow as pa

from cockatoo_ml.bulk.inputs import Columns, FileProblem, InputFile, read_batches
from cockatoo_ml.bulk.outputs import PartStore, PartSummary
from cockatoo_ml.registry import bulk as defaults
from cockatoo_ml.registry.bulk import ScoreSettings
from cockatoo_ml.registry.serving import ServingSettings
from cockatoo_ml.settings import set_default_environ

log = logging.getLogger(__name__)

ROW_SCHEMA = pa.schema([("part", pa.string()), ("batch", pa.binary()), ("problem", pa.binary())])
RESULT_SCHEMA = pa.schema([("part", pa.string()), ("summary", pa.string()), ("problem", pa.binary())])
# Reading a file is light next to scoring it, and read tasks that reserved a CPU could never start once the replicas
# hold every CPU (a fixed pool on a small machine waited forever): reads reserve none.
READ_TASK_CPUS = 0


def _file_rows(file: InputFile, columns: Columns, batch_rows: int, done: frozenset[str]) -> Iterator[pa.Table]:
    """One file's batches whose parts are not written yet, as one-row blocks."""
    problems: list[FileProblem] = []
    for batch in read_batches(file, columns, batch_rows, problems):
        if batch.part not in done:
            payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
            yield pa.table({"part": [batch.part], "batch": [payload], "problem": [None]}, schema=ROW_SCHEMA)
    for problem in problems:
        yield pa.table({"part": [""], "batch": [None], "problem": [pickle.dumps(problem)]}, schema=ROW_SCHEMA)


def batch_datasource(files: Sequence[InputFile], columns: Columns, batch_rows: int, done: frozenset[str]) -> Any:
    """The Ray Data datasource of ``files``' batches (built here: ``ray`` is imported only with --engine ray)."""
    from ray.data.block import BlockMetadata
    from ray.data.datasource import Datasource, ReadTask

    class BatchDatasource(Datasource):
        def estimate_inmemory_data_size(self) -> int | None:
            return None

        def get_read_tasks(
            self, parallelism: int, per_task_row_limit: int | None = None, data_context: Any = None
        ) -> list[Any]:
            # One task per file: a file's batches are numbered in reading order.
            return [
                ReadTask(
                    functools.partial(_file_rows, file, columns, batch_rows, done),
                    BlockMetadata(num_rows=None, size_bytes=None, exec_stats=None, input_files=(file.url,)),
                )
                for file in files
            ]

    return BatchDatasource()


class PartWriter:
    """A model replica in a Ray actor: scores each batch it is given and writes its part."""

    def __init__(self, serving: ServingSettings, columns: Columns, output: str, cpus: float) -> None:
        if serving.model_threads == 0 and serving.torch_threads == 0:
            # This actor's share of the machine is the CPUs it reserved, not every core the node has.
            machine = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
            serving = replace(serving, worker_processes=max(1, round(machine / max(1.0, cpus))))
        # Imported here: the read tasks unpickle this module too, and need neither torch nor transformers.
        from cockatoo_ml.bulk.scorer import BatchScorer

        self.scorer = BatchScorer(serving, columns)
        self.store = PartStore(output)

    def __call__(self, rows: pa.Table) -> pa.Table:
        results: dict[str, list[Any]] = {name: [] for name in RESULT_SCHEMA.names}
        for part, payload, problem in zip(*(rows.column(name).to_pylist() for name in ROW_SCHEMA.names), strict=True):
            summary = None
            if problem is None:
                batch = pickle.loads(payload)
                table, counts = self.scorer(batch)
                self.store.write(batch.part, table, counts)
                summary = counts.to_json()
            for name, value in zip(RESULT_SCHEMA.names, (part, summary, problem), strict=True):
                results[name].append(value)
        return pa.table(results, schema=RESULT_SCHEMA)


def replica_plan(settings: ScoreSettings, resources: dict[str, float]) -> tuple[int, float]:
    """(replicas, GPUs each): one GPU per replica where the cluster has GPUs, else CPUs only."""
    gpus = int(resources.get("GPU", 0))
    if settings.replicas:
        return settings.replicas, 1.0 if gpus >= settings.replicas else 0.0
    if gpus:
        return gpus, 1.0
    return max(1, math.floor(resources.get("CPU", 1) / settings.cpus_per_replica)), 0.0


def run_ray(
    files: Sequence[InputFile],
    settings: ScoreSettings,
    serving: ServingSettings,
    columns: Columns,
    done: set[str],
    on_part: Callable[[str, PartSummary], None],
    problems: list[FileProblem],
) -> None:
    """Score ``files`` on a Ray cluster (joined at ``--ray-address``, else a local one started for the run)."""
    import ray
    import ray.data

    import cockatoo_ml

    started = not ray.is_initialized()
    if started:
        if settings.ray_address is None:
            # Ray runs its workers at niceness 15 as background work; here they are the job. On a busy machine they
            # starved: replicas took over 5 minutes to load the tiny model that the local engine loaded in 25 s.
            set_default_environ(RAY_worker_niceness="0")
        # The driver's package travels to the workers (a cluster need only have the dependencies installed).
        ray.init(
            address=settings.ray_address,
            runtime_env={"py_modules": [os.path.dirname(cockatoo_ml.__file__)]},
            include_dashboard=False,
            logging_level=logging.WARNING,
            log_to_driver=True,
        )
    try:
        context = ray.data.DataContext.get_current()
        context.enable_progress_bars = False  # score.py's own bar counts rows
        context.print_on_execution_start = False
        replicas, gpus = replica_plan(settings, ray.cluster_resources())
        log.info("ray: %d replica(s), %s each", replicas, "1 GPU" if gpus else f"{settings.cpus_per_replica:g} CPU(s)")
        dataset = ray.data.read_datasource(
            batch_datasource(files, columns, settings.batch_size, frozenset(done)), num_cpus=READ_TASK_CPUS
        ).map_batches(
            PartWriter,
            batch_size=1,
            batch_format="pyarrow",
            fn_constructor_kwargs={
                "serving": serving,
                "columns": columns,
                "output": settings.output,
                "cpus": settings.cpus_per_replica,
            },
            compute=ray.data.ActorPoolStrategy(
                size=replicas, max_tasks_in_flight_per_actor=defaults.RAY_TASKS_IN_FLIGHT
            ),
            num_cpus=settings.cpus_per_replica if not gpus else None,
            num_gpus=gpus or None,
        )
        for row in dataset.iter_rows():
            if row["problem"] is not None:
                problems.append(pickle.loads(row["problem"]))
                continue
            on_part(row["part"], PartSummary.from_json(row["summary"]))
    finally:
        if started:
            ray.shutdown()
