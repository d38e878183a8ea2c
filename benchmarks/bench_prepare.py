"""Benchmark prepare_data on synthetic sources: rows/s and peak memory at 100k and 1M rows.

    .venv/bin/python benchmarks/bench_prepare.py            # 100k and 1M rows
    .venv/bin/python benchmarks/bench_prepare.py 20000 200000

Each size runs in a fresh subprocess (so peak RSS is that run's own) and prepares two synthetic sources: a
CSV with scam/harassment columns (some cells missing) and a JSONL with violence/nsfw, 5% of texts repeated
across them. Time should grow linearly with rows; 1M rows should stay under 4 GB.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere: import the repo's package

SOURCES = """
[[sources]]
name = "synthetic_csv"
format = "csv"
text_column = "text"
[sources.labels.scam]
columns = ["scam"]
[sources.labels.harassment]
columns = ["insult", "hate"]
merge = "any"

[[sources]]
name = "synthetic_jsonl"
format = "jsonl"
text_column = "text"
[sources.labels.violence]
columns = ["violence"]
[sources.labels.nsfw]
columns = ["nsfw"]
"""


def make_sources(folder: Path, rows: int) -> None:
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(0)
    vocab = np.array([f"w{i}" for i in range(5000)] + ["the", "a", "you", "click", "here", "now", "free"])
    words = rng.choice(vocab, size=(rows, 14))
    texts = pd.Series([" ".join(row) for row in words])
    texts[rng.random(rows) < 0.05] = texts.iloc[0:1000].sample(n=1, random_state=1).iloc[0]  # some duplicates
    half = rows // 2

    def flags(n: int, p: float, missing: float) -> pd.Series:
        values = pd.Series((rng.random(n) < p).astype(float))
        values[rng.random(n) < missing] = np.nan
        return values.astype("Int64")

    (folder / "raw" / "synthetic_csv").mkdir(parents=True)
    (folder / "raw" / "synthetic_jsonl").mkdir(parents=True)
    pd.DataFrame({"text": texts[:half], "scam": flags(half, 0.1, 0.05), "insult": flags(half, 0.2, 0.0),
                  "hate": flags(half, 0.05, 0.3)}).to_csv(folder / "raw" / "synthetic_csv" / "data.csv", index=False)
    jsonl = pd.DataFrame({"text": texts[half:].to_numpy(), "violence": flags(rows - half, 0.05, 0.0),
                          "nsfw": flags(rows - half, 0.05, 0.1)})
    jsonl.to_json(folder / "raw" / "synthetic_jsonl" / "data.jsonl", orient="records", lines=True)
    (folder / "sources.toml").write_text(SOURCES)


def run_one(rows: int) -> dict:
    """Child process: build the data, time prepare(), report time and peak RSS as JSON."""
    import logging

    from cockatoo_ml.data.prepare import PrepareSettings, prepare

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        make_sources(folder, rows)
        settings = PrepareSettings(sources=str(folder / "sources.toml"), raw_dir=str(folder / "raw"),
                                   output=str(folder / "out"))
        start = time.perf_counter()
        stats = prepare(settings)
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    return {"rows": rows, "kept": sum(stats["rows"].values()), "seconds": seconds, "peak_mb": peak_mb}


def main(sizes: list[int]) -> None:
    results = []
    for rows in sizes:
        child = subprocess.run([sys.executable, __file__, "--child", str(rows)], capture_output=True, text=True)
        if child.returncode:
            sys.exit(f"benchmark at {rows} rows failed:\n{child.stderr}")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    print(f"{'rows':>9} {'kept':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for r in results:
        print(f"{r['rows']:>9} {r['kept']:>9} {r['seconds']:>8.2f} {r['rows'] / r['seconds']:>9.0f} {r['peak_mb']:>8.0f}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"time ratio {last['seconds'] / first['seconds']:.1f}x for {last['rows'] / first['rows']:.0f}x rows")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--child"]:
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):  # prepare() prints its tables; keep stdout for JSON
            result = run_one(int(sys.argv[2]))
        print(json.dumps(result))
    else:
        main([int(a) for a in sys.argv[1:]] or [100_000, 1_000_000])
