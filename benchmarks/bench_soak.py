"""Soak benchmark: many clients, a share of them hostile, against one real server; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_soak.py --model-dir data/demo_model
    .venv/bin/python benchmarks/bench_soak.py --model-dir DIR --requests 2000 --clients 16   # shorter

Starts the server with start_api.sh on a free loopback port (or drives --url), then ``--clients`` threads send
``--requests`` requests in all, mixed /predict and /batch, ``--hostile`` of them hostile or malformed (lone
surrogates, NUL-only and zero-width texts, bad JSON, wrong types, unknown labels, texts over the token budget,
a batch of 20,000 integers, forged log lines in the path). It prints the count of answers by status (a 5xx is
a bug), p50/p99 latency of the valid requests, the server's resident memory at start and end, and whether every
valid request was answered in order (a 429 is retried after its Retry-After, and counted).
"""

from __future__ import annotations

import json
import random
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from benchmarks.bench_serve import DEFAULT_TEXTS, SERVER_ENVIRON, load_texts  # noqa: E402
from cockatoo_ml.cli import run_main  # noqa: E402
from cockatoo_ml.serving.launch import ServerProcess, free_port  # noqa: E402


@dataclass
class SoakArgs:
    model_dir: str = field(default="data/demo_model", metadata={"help": "Model directory to serve."})
    url: str = field(default="", metadata={"help": "Drive this running server instead of starting one."})
    requests: int = field(default=10_000, metadata={"help": "Requests in all."})
    clients: int = field(default=32, metadata={"help": "Concurrent clients."})
    hostile: float = field(default=0.2, metadata={"help": "Share of hostile or malformed requests."})
    batch_share: float = field(default=0.3, metadata={"help": "Share of valid requests sent to /batch."})
    batch_texts: int = field(default=8, metadata={"help": "Most texts in a valid /batch request."})
    texts_file: str = field(default=str(DEFAULT_TEXTS), metadata={"help": "One valid text per line."})
    seed: int = field(default=0, metadata={"help": "Random seed."})


HOSTILE_BODIES: list[tuple[str, bytes | dict]] = [
    ("/predict", b'{"text": "hi \\ud800"}'),
    ("/batch", b'{"texts": ["fine", "also fine", "\\udfff"]}'),
    ("/predict", {"text": "\x00\x00\x00"}),
    ("/predict", {"text": "\u200b\u200c\u200d\ufeff\u202e"}),
    ("/predict", b"{not json"),
    ("/predict", b'{"text": "x", "threshold": NaN}'),
    ("/predict", {"text": 42}),
    ("/predict", {"text": "x", "threshold": {"toxic": 0.5}}),
    ("/predict", {"text": "x", "threshold": 7}),
    ("/batch", {"texts": []}),
    ("/batch", {"texts": list(range(20_000))}),
    ("/predict", {"text": "a " * 20_000}),  # 20,000 tokens: over COCKATOO_MAX_TEXT_TOKENS
    ("/predict", [1, 2, 3]),
    ("/nope%0a22:16:00%20INFO%20FORGED%1b[31m", {"text": "x"}),
]


@dataclass
class Outcome:
    status: int
    latency_s: float
    valid: bool
    in_order: bool = True
    retries: int = 0


def plan(args: SoakArgs, texts: list[str]) -> list[tuple[str, bytes | dict, bool]]:
    """(path, body, valid) for every request, in a fixed random order."""
    rng = random.Random(args.seed)
    planned = []
    for _ in range(args.requests):
        if rng.random() < args.hostile:
            path, body = rng.choice(HOSTILE_BODIES)
            planned.append((path, body, False))
        elif rng.random() < args.batch_share:
            planned.append(("/batch", {"texts": rng.sample(texts, rng.randint(1, args.batch_texts))}, True))
        else:
            planned.append(("/predict", {"text": rng.choice(texts)}, True))
    return planned


def send(session: requests.Session, url: str, path: str, body: bytes | dict, valid: bool) -> Outcome:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    retries = 0
    start = time.perf_counter()
    while True:
        response = session.post(url + path, data=data, headers={"Content-Type": "application/json"}, timeout=600)
        if response.status_code != 429:
            break
        retries += 1
        time.sleep(float(response.headers.get("Retry-After", "1")))
    outcome = Outcome(response.status_code, time.perf_counter() - start, valid, retries=retries)
    if valid and response.status_code == 200:
        answer = response.json()
        sent = [body["text"]] if path == "/predict" else body["texts"]  # type: ignore[index]
        got = [answer["text"]] if path == "/predict" else [r["text"] for r in answer["results"]]
        outcome.in_order = got == sent
    return outcome


def rss_mb(server: ServerProcess) -> float:
    """Resident memory now of the server process and its children."""
    import psutil

    root = psutil.Process(server.process.pid)
    return sum(proc.memory_info().rss for proc in [root, *root.children(recursive=True)]) / 2**20


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(SoakArgs).parse_args_into_dataclasses(args=argv)
    texts = load_texts(Path(args.texts_file), 0.1, args.seed)
    planned = plan(args, texts)
    server = None
    url = args.url
    if not url:
        env = {**SERVER_ENVIRON, "COCKATOO_MODEL_DIR": args.model_dir, "HF_HUB_OFFLINE": "1"}
        log = Path(tempfile.mkdtemp(prefix="bench_soak_")) / "server.log"
        server = ServerProcess.start_api(free_port(), log, env).wait_ready(timeout=600)
        url = server.url
        print(f"server log: {log}")
    try:
        requests.post(f"{url}/predict", json={"text": "warm up"}, timeout=600)
        rss_start = rss_mb(server) if server else float("nan")
        shares = [planned[i :: args.clients] for i in range(args.clients)]

        def client(mine: list[tuple[str, bytes | dict, bool]]) -> list[Outcome]:
            with requests.Session() as session:
                return [send(session, url, path, body, valid) for path, body, valid in mine]

        started = time.perf_counter()
        with ThreadPoolExecutor(args.clients) as pool:
            outcomes = [outcome for outcomes in pool.map(client, shares) for outcome in outcomes]
        wall = time.perf_counter() - started
        health = requests.get(f"{url}/health", timeout=30).status_code
        rss_end = rss_mb(server) if server else float("nan")
    finally:
        if server:
            server.terminate(timeout=60)
    report(args, outcomes, wall, rss_start, rss_end, health)
    return 0


def report(
    args: SoakArgs, outcomes: list[Outcome], wall: float, rss_start: float, rss_end: float, health: int
) -> None:
    statuses = Counter(outcome.status for outcome in outcomes)
    valid = [outcome for outcome in outcomes if outcome.valid]
    latencies = sorted(outcome.latency_s for outcome in valid if outcome.status == 200)
    lost = sum(1 for outcome in valid if outcome.status != 200 or not outcome.in_order)
    quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
    print(f"{len(outcomes)} requests from {args.clients} clients in {wall:.1f}s ({len(outcomes) / wall:.1f}/s), "
          f"{len(outcomes) - len(valid)} hostile or malformed")
    print("answers by status: " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))
    print(f"5xx: {sum(count for status, count in statuses.items() if status >= 500)}")
    print(f"valid requests: {len(valid)}, answered 200 in order: {len(valid) - lost}, lost or out of order: {lost}, "
          f"429 retries: {sum(outcome.retries for outcome in outcomes)}")
    print(f"valid latency: p50 {1000 * quantiles[49]:.0f} ms, p99 {1000 * quantiles[98]:.0f} ms")
    print(f"server RSS: start {rss_start:.0f} MB, end {rss_end:.0f} MB ({(rss_end / rss_start - 1):+.1%})")
    print(f"/health after the soak: {health}")


if __name__ == "__main__":
    sys.exit(run_main(main))
