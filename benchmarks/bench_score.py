"""Bulk scoring benchmark: score.py's local engine, its Ray engine and our server's /batch fed by one client, on the
same texts with the same model and settings; and the local engine's peak memory as the input grows.

    .venv/bin/python benchmarks/bench_score.py --model /work/runs/model --rows 100000
    .venv/bin/python benchmarks/bench_score.py --model data/demo_model --rows 2000 --rss-rows 2000,20000   # a smoke run

The texts are --texts (one per line; default: the public corpus's tweeteval_hate validation texts), repeated with a
row number until there are --rows of them, written once to a Parquet file (text, id). Each engine runs as its
users run it, in a process of its own (``score.py ... --engine local|ray``; ``start_api.sh`` for the server) with
the environment's COCKATOO_* settings, so all three score alike. For each it prints:

- texts/s over the whole run (start-up included: importing torch, loading the model, for Ray starting a local
  cluster) and steady texts/s (by the parts' modification times, from when each replica has written its first
  part to the last part: with two replicas, the first part's time hides the other's work; for the server, the
  requests alone, once it answers /health);
- for the local engine, the peak resident memory (the process's ru_maxrss) at each of --rss-rows.

The targets (issue 22): local >= the server's /batch, Ray within 15% of local, the local engine's memory flat
from the smallest to the largest --rss-rows. On a shared CPU, run it more than once.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import requests  # noqa: E402

from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment  # noqa: E402

DEFAULT_TEXTS = REPO_ROOT.parent / "shared" / "datasets" / "tweeteval_hate" / "val_text.txt"
SERVER_BATCH_TEXTS = 256  # the server's COCKATOO_MAX_BATCH_TEXTS default: the most one /batch takes
TARGETS = {"local_vs_server": 1.0, "ray_vs_local": 0.85, "rss_growth": 1.10}


def make_input(texts_file: Path, rows: int, out: Path) -> Path:
    """``rows`` texts cycling through ``texts_file``'s lines (a row number appended, so no two are equal)."""
    base = [line.strip() for line in texts_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    texts = [f"{base[i % len(base)]} ({i})" for i in range(rows)]
    path = out / f"texts-{rows}.parquet"
    pq.write_table(pa.table({"text": texts, "id": list(range(rows))}), path, row_group_size=65536)
    return path


def run_score(
    model: str, source: Path, output: Path, engine: str, extra: list[str], writers: int = 1
) -> dict[str, float]:
    """``score.py`` in a child process: wall seconds, steady texts/s and the child's peak RSS (MB)."""
    command = [sys.executable, str(REPO_ROOT / "score.py"), str(source), "--model", model, "--output", str(output),
               "--engine", engine, *extra]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    log = process.stdout.read().decode(errors="replace") if process.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"score.py --engine {engine} failed:\n{log[-3000:]}")
    summary = json.loads((output / "_summary.json").read_text())
    return {"rows": summary["rows"], "wall_s": wall, "texts_per_s": summary["rows"] / wall,
            "steady_texts_per_s": steady_rate(output, writers), "peak_rss_mb": usage.ru_maxrss / 1024}  # fmt: skip


def steady_rate(output: Path, writers: int) -> float:
    """Rows per second once every one of ``writers`` (replicas writing parts at once) has written its first part:
    start-up is left out, and so is the work the others did while the first part was scored."""
    parts = sorted(output.glob("*.parquet"), key=lambda p: p.stat().st_mtime)
    if len(parts) <= writers:
        return float("nan")
    rows = sum(pq.read_metadata(p).num_rows for p in parts[writers:])
    return rows / (parts[-1].stat().st_mtime - parts[writers - 1].stat().st_mtime)


def run_server(model: str, source: Path, workdir: Path) -> dict[str, float]:
    """Our server (start_api.sh, one worker) and one client sending /batch requests of 256 texts, one at a time."""
    texts = pq.read_table(source, columns=["text"]).column("text").to_pylist()
    env = server_environment(os.environ, **{"COCKATOO_MODEL_DIR": model}, **inherited_settings())
    with ServerProcess.start_api(free_port(), workdir / "server.log", env).wait_ready() as server:
        session = requests.Session()
        started = time.perf_counter()
        for start in range(0, len(texts), SERVER_BATCH_TEXTS):
            response = session.post(f"{server.url}/batch", json={"texts": texts[start : start + SERVER_BATCH_TEXTS]})
            response.raise_for_status()
        elapsed = time.perf_counter() - started
    return {"rows": len(texts), "wall_s": elapsed, "texts_per_s": len(texts) / elapsed,
            "steady_texts_per_s": len(texts) / elapsed}  # fmt: skip


def median_of(measured: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(m[key] for m in measured) for key in measured[0]}


def inherited_settings() -> dict[str, str]:
    """The COCKATOO_* settings of this environment, which server_environment would drop: the server scores as
    score.py does."""
    return {name: value for name, value in os.environ.items() if name.startswith("COCKATOO_")}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="Model directory (any: the public model, data/demo_model).")
    parser.add_argument("--rows", type=int, default=100_000, help="Texts the three engines score.")
    parser.add_argument("--rss-rows", default="100000,1000000", help="Input sizes for the local engine's memory.")
    parser.add_argument("--engines", default="local,ray,server", help="Which of local, ray, server to time.")
    parser.add_argument("--texts", type=Path, default=DEFAULT_TEXTS, help="Texts, one per line, repeated as needed.")
    parser.add_argument("--batch-size", type=int, default=None, help="score.py --batch-size (default: its own).")
    parser.add_argument("--replicas", type=int, default=0, help="score.py --replicas for Ray (0: its default).")
    parser.add_argument("--rounds", type=int, default=1, help="Rounds of the engines, alternating; medians kept.")
    args = parser.parse_args()
    engines = [name.strip() for name in args.engines.split(",") if name.strip()]
    rss_rows = [int(n) for n in args.rss_rows.split(",") if n.strip()]
    extra = ["--batch-size", str(args.batch_size)] if args.batch_size else []
    rounds: dict[str, list[dict[str, float]]] = {engine: [] for engine in engines}
    print(f"load average {os.getloadavg()}, {os.cpu_count()} CPUs; model {args.model}; {args.rows:,} texts")
    with tempfile.TemporaryDirectory(prefix="bench_score_") as tmp:
        workdir = Path(tmp)
        source = make_input(args.texts, args.rows, workdir)
        for round_ in range(args.rounds):  # alternating, so that the machine's load drifts across all engines
            for engine in engines:
                if engine == "server":
                    measured = run_server(args.model, source, workdir)
                else:
                    more = extra + (["--replicas", str(args.replicas)] if engine == "ray" and args.replicas else [])
                    # score.py's default pool on this machine: one 1-CPU replica per CPU
                    writers = (args.replicas or os.cpu_count() or 1) if engine == "ray" else 1
                    out = workdir / f"out-{engine}-{round_}"
                    measured = run_score(args.model, source, out, engine, more, writers)
                rounds[engine].append(measured)
                shown = {key: round(value, 1) for key, value in measured.items()}
                print(f"round {round_ + 1}, {engine:>6}: {json.dumps(shown)}", flush=True)
        results = {engine: median_of(measured) for engine, measured in rounds.items()}
        memory: dict[int, float] = {}
        for rows in rss_rows:
            big = source if rows == args.rows else make_input(args.texts, rows, workdir)
            memory[rows] = run_score(args.model, big, workdir / f"rss-{rows}", "local", extra)["peak_rss_mb"]
            print(f"local engine, {rows:,} rows: peak RSS {memory[rows]:.0f} MB", flush=True)
            if big != source:
                big.unlink()
    checks = {}
    if {"local", "server"} <= results.keys():
        checks["local_vs_server"] = results["local"]["steady_texts_per_s"] / results["server"]["steady_texts_per_s"]
    if {"local", "ray"} <= results.keys():
        checks["ray_vs_local"] = results["ray"]["steady_texts_per_s"] / results["local"]["steady_texts_per_s"]
    if len(memory) >= 2:
        checks["rss_growth"] = memory[max(memory)] / memory[min(memory)]
    for name, value in checks.items():
        good = value <= TARGETS[name] if name == "rss_growth" else value >= TARGETS[name]
        print(f"{name}: {value:.2f} (target {'<=' if name == 'rss_growth' else '>='} {TARGETS[name]}) "
              f"{'met' if good else 'NOT met'}")  # fmt: skip
    print(json.dumps({"results": results, "peak_rss_mb": memory, "checks": checks}, default=float))
    return 0


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashed child leaves no core file in the repo
    sys.exit(main())
