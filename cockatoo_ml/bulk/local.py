"""The local engine: every file's batches, in order, through one model in this process.

Only one batch is held at a time (read, scored, written, dropped), so memory stays flat however large the input.
The model's own forward passes use the process's cores (``COCKATOO_MODEL_THREADS`` / ``COCKATOO_TORCH_THREADS``, as
in the server).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cockatoo_ml.bulk.inputs import Columns, FileProblem, InputFile, read_batches
from cockatoo_ml.bulk.outputs import PartStore, PartSummary
from cockatoo_ml.bulk.scorer import BatchScorer

# Called after each part written: its name and its counts.
Progress = Callable[[str, PartSummary], None]


def run_local(
    files: Sequence[InputFile],
    columns: Columns,
    batch_rows: int,
    scorer: Callable[[], BatchScorer],
    store: PartStore,
    done: set[str],
    on_part: Progress,
    problems: list[FileProblem],
) -> None:
    """Score every batch of ``files`` whose part is not in ``done``; the model is loaded once, at the first batch
    that needs it (a rerun with nothing left to do loads nothing)."""
    loaded: BatchScorer | None = None
    for file in files:
        for batch in read_batches(file, columns, batch_rows, problems):
            if batch.part in done:
                continue
            loaded = loaded or scorer()
            table, summary = loaded(batch)
            store.write(batch.part, table, summary)
            on_part(batch.part, summary)
