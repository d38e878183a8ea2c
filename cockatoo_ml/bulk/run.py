"""``score.py``: files of texts -> a folder of Parquet parts with every row's scores, decisions and errors.

The inputs are expanded and cut into batches (``inputs.py``); parts already in the output folder are counted from
their footers and skipped (``outputs.py``); the rest go through the chosen engine (``local.py``, ``ray_engine.py``),
each batch scored by a ``BatchScorer`` as the server would score it. A progress bar counts rows (rows/s, ETA), and
the end prints, and saves as ``_summary.json``, how many rows were scored, had an error, were flagged, and were
positive per label.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from cockatoo_ml.bulk.inputs import Columns, FileProblem, check_columns, estimate_rows, expand
from cockatoo_ml.bulk.local import run_local
from cockatoo_ml.bulk.outputs import PartStore, PartSummary, summary_dict
from cockatoo_ml.bulk.scorer import BatchScorer
from cockatoo_ml.cli import report_settings, settings_to_dict
from cockatoo_ml.inference.loading import check_model_dir
from cockatoo_ml.registry.bulk import ScoreSettings
from cockatoo_ml.registry.serving import ServingSettings, serving_settings_from_env
from cockatoo_ml.settings import parse_args

log = logging.getLogger(__name__)

# What the model directory holds that decides its answers: a rerun against a changed model must not resume.
MODEL_FILES = ("config.json", "thresholds.json", "student/cascade.json")
# Scoring settings that change answers (the rest only change speed).
SCORING_SETTINGS = ("dtype", "bucket_tokens", "cascade", "max_window_tokens", "window_overlap", "max_text_tokens")


def main(argv: Sequence[str] | None = None) -> int:
    settings = parse_args(ScoreSettings, argv, description=__doc__.splitlines()[0] if __doc__ else None)
    score(settings)
    return 0


def score(settings: ScoreSettings, serving: ServingSettings | None = None) -> dict[str, Any]:
    """Score ``settings.inputs`` into ``settings.output``; returns the summary (also in ``_summary.json``)."""
    serving = serving or serving_settings_from_env(model_dir=settings.model)
    report_settings("score.py", settings_to_dict(settings))
    columns = Columns(settings.text_column, settings.id_column)
    files = expand(settings.inputs, None if settings.format == "auto" else settings.format)
    check_columns(files, columns)
    check_model_dir(settings.model)
    store = PartStore(settings.output)
    store.prepare(job_record(settings, serving))
    keys = {file.key for file in files}
    done = {name for name in store.parts() if name.rsplit("-", 1)[0] in keys}  # parts of other inputs: not ours
    total = store.summaries(done)
    written = 0
    problems: list[FileProblem] = []
    estimates = [estimate_rows(file) for file in files]
    expected = None if None in estimates else sum(n or 0 for n in estimates)
    with tqdm(
        total=expected, initial=total.rows, unit=" rows", unit_scale=True, desc="scoring", disable=None, smoothing=0.05
    ) as bar:

        def on_part(name: str, summary: PartSummary) -> None:
            nonlocal written
            total.add(summary)
            written += 1
            bar.update(summary.rows)

        if settings.engine == "ray":
            from cockatoo_ml.bulk.ray_engine import run_ray

            run_ray(files, settings, serving, columns, done, on_part, problems)
        else:
            run_local(
                files,
                columns,
                settings.batch_size,
                lambda: BatchScorer(serving, columns),
                store,
                done,
                on_part,
                problems,
            )
        if bar.total is not None and bar.n != bar.total:  # the estimate was off: end the bar where it ended
            bar.total = bar.n
            bar.refresh()
    summary = summary_dict(
        total, model_labels(settings.model), [p.describe() for p in problems], len(done) + written, len(done)
    )
    store.write_summary(summary)
    print(describe(summary, settings.output, len(files)))
    return summary


def model_labels(model_dir: Path) -> list[str]:
    id2label = json.loads((Path(model_dir) / "config.json").read_text())["id2label"]
    return [id2label[key] for key in sorted(id2label, key=int)]


def job_record(settings: ScoreSettings, serving: ServingSettings) -> dict[str, Any]:
    """What decides the parts' content: a rerun must agree on all of it to resume (``PartStore.prepare``)."""
    model = Path(settings.model)
    fingerprint = hashlib.sha1()
    for name in MODEL_FILES:
        if (model / name).is_file():
            fingerprint.update(name.encode() + b"\0" + (model / name).read_bytes())
    return {
        "batch_size": settings.batch_size,
        "text_column": settings.text_column,
        "id_column": settings.id_column,
        "format": settings.format,
        "model": str(model.resolve()),
        "model_files_sha1": fingerprint.hexdigest(),
        **{name: getattr(serving, name) for name in SCORING_SETTINGS},
    }


def describe(summary: dict[str, Any], output: str, files: int) -> str:
    """The end of a run, for people."""
    lines = [
        f"{summary['rows']:,} rows of {files} file(s) in {output} ({summary['parts']} parts, "
        f"{summary['parts_resumed']} from an earlier run): {summary['scored']:,} scored, {summary['errors']:,} "
        f"with an error (column 'error'), {summary['flagged']:,} flagged",
        "positives: " + ", ".join(f"{label} {count:,}" for label, count in summary["positives"].items()),
    ]
    if summary["tiers"]:
        lines.append("answered by: " + ", ".join(f"{tier} {count:,}" for tier, count in summary["tiers"].items()))
    lines += [f"skipped: {problem}" for problem in summary["skipped_files"]]
    return "\n".join(lines)
