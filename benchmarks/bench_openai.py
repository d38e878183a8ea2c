"""The OpenAI-compatible route against /batch: texts/s of ``POST /v1/moderations`` and ``POST /batch`` on one server,
the same texts, the same run (issue 21's target: the new route within 10% of /batch).

    .venv/bin/python benchmarks/bench_openai.py                          # fresh MiniLM head (model time dominates)
    .venv/bin/python benchmarks/bench_openai.py --model-dir data/demo_model
    .venv/bin/python benchmarks/bench_openai.py --tiny                   # a 2-layer model: HTTP and JSON dominate

One server (``start_api.sh``, the model's default precision) answers both routes. Each round sends the same
requests (``--batch-size`` texts each, from ``--clients`` concurrent clients) to both routes, the order swapped
every round so a change in the machine's load hits both alike. It prints texts/s and p50/p99 request latency per
route, their ratio, whether the target holds, and whether both routes gave every text the same scores and
``flagged``. The texts are benchmarks/bench_serve.py's ``mix`` stream (tweets, one in ten made long).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from benchmarks.bench_serve import (  # noqa: E402
    DEFAULT_TEXTS,
    SERVER_ENVIRON,
    Measured,
    load_texts,
    make_minilm_checkpoint,
)
from cockatoo_ml.cli import run_main  # noqa: E402
from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment  # noqa: E402

TARGET_RATIO = 0.9  # /v1/moderations texts/s at least 90% of /batch's
ROUTES = ("/batch", "/v1/moderations")


@dataclass
class BenchArgs:
    model_dir: str = field(default="", metadata={"help": "Model dir to serve; default: MiniLM with a fresh 4-label head."})
    tiny: bool = field(default=False, metadata={"help": "Serve a randomly initialised 2-layer model instead."})
    texts_file: str = field(default=str(DEFAULT_TEXTS), metadata={"help": "One text per line."})
    rounds: int = field(default=4, metadata={"help": "Measurement rounds; each sends the same requests to both routes."})
    requests_per_client: int = field(default=4, metadata={"help": "Timed requests per client, route and round."})
    clients: int = field(default=4, metadata={"help": "Concurrent clients."})
    batch_size: int = field(default=64, metadata={"help": "Texts per request."})
    seed: int = field(default=0, metadata={"help": "Random seed for picking texts."})


def body(route: str, texts: list[str]) -> dict:
    return {"texts": texts} if route == "/batch" else {"input": texts}


def scores_of(route: str, answer: dict, labels: list[str]) -> list[tuple[tuple[float, ...], bool]]:
    """Each text's label scores (rounded as /batch rounds them) and ``flagged``."""
    if route == "/batch":
        return [(tuple(r["predictions"][label] for label in labels), r["flagged"]) for r in answer["results"]]
    return [
        (tuple(round(r["category_scores"][label], 4) for label in labels), r["flagged"]) for r in answer["results"]
    ]


def drive(url: str, route: str, payloads: list[list[list[str]]], labels: list[str], into: Measured) -> dict:
    """Each inner list is one client's requests (lists of texts), sent one after another; clients run at once.
    Returns every text's answer (scores, flagged)."""

    def client(batches: list[list[str]]) -> tuple[list[float], dict]:
        latencies, answers = [], {}
        with requests.Session() as session:
            for texts in batches:
                began = time.perf_counter()
                response = session.post(f"{url}{route}", json=body(route, texts), timeout=600)
                latencies.append(time.perf_counter() - began)
                response.raise_for_status()
                answers.update(zip(texts, scores_of(route, response.json(), labels), strict=True))
        return latencies, answers

    began = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        outcomes = list(pool.map(client, payloads))
    into.wall_s += time.perf_counter() - began
    answers: dict = {}
    for latencies, answered in outcomes:
        into.latencies.extend(latencies)
        answers.update(answered)
    into.texts += sum(len(texts) for batches in payloads for texts in batches)
    return answers


def make_tiny_checkpoint(out: Path) -> Path:
    """tests/conftest.py's tiny model: 2 layers of 32 (window of 64 tokens), MiniLM's tokenizer, our labels."""
    from tests.conftest import write_tiny_model

    from cockatoo_ml.registry.models import resolve_base_model

    thresholds = {"scam": 0.4, "violence": 0.5, "nsfw": 0.6, "harassment": 0.5}
    return write_tiny_model(out, resolve_base_model("minilm"), thresholds)


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(BenchArgs).parse_args_into_dataclasses(args=argv)
    texts = load_texts(Path(args.texts_file), 0.1, args.seed)
    with tempfile.TemporaryDirectory(prefix="cockatoo_bench_openai_") as tmp:
        if args.model_dir:
            model_dir = args.model_dir
        elif args.tiny:
            model_dir = str(make_tiny_checkpoint(Path(tmp) / "tiny"))
        else:
            model_dir = str(make_minilm_checkpoint(Path(tmp) / "minilm_4labels"))
        env = server_environment(SERVER_ENVIRON, COCKATOO_MODEL_DIR=model_dir)
        print(f"model {model_dir}; {len(texts)} texts; cpus {os.cpu_count()}; load {os.getloadavg()}", flush=True)
        with ServerProcess.start_api(free_port(), Path(tmp) / "server.log", env).wait_ready(timeout=600) as server:
            labels = requests.get(f"{server.url}/health", timeout=30).json()["labels"]
            measured = {route: Measured() for route in ROUTES}
            answers: dict[str, dict] = {route: {} for route in ROUTES}
            cursor = iter(texts * 1000)
            for route in ROUTES:  # warm-up, not measured
                drive(server.url, route, [[[next(cursor) for _ in range(args.batch_size)]]], labels, Measured())
            for round_index in range(args.rounds):
                payloads = [
                    [[next(cursor) for _ in range(args.batch_size)] for _ in range(args.requests_per_client)]
                    for _ in range(args.clients)
                ]
                order = ROUTES if round_index % 2 == 0 else ROUTES[::-1]
                for route in order:
                    print(f"round {round_index + 1}/{args.rounds} {route}: load {os.getloadavg()[0]:.2f}", flush=True)
                    answers[route].update(drive(server.url, route, payloads, labels, measured[route]))
    print(f"\n{'route':18} {'texts/s':>9} {'p50 ms':>9} {'p99 ms':>9}   ({args.clients} clients, "
          f"{args.batch_size} texts/request, {args.rounds} rounds)")  # fmt: skip
    for route in ROUTES:
        m = measured[route]
        print(f"{route:18} {m.texts_per_s:9.1f} {m.percentile_ms(50):9.1f} {m.percentile_ms(99):9.1f}")
    ratio = measured["/v1/moderations"].texts_per_s / measured["/batch"].texts_per_s
    common = [text for text in answers["/batch"] if text in answers["/v1/moderations"]]
    same = sum(answers["/batch"][t] == answers["/v1/moderations"][t] for t in common)
    print(f"\n{'PASS' if ratio >= TARGET_RATIO else 'FAIL'}  /v1/moderations at {ratio:.1%} of /batch's texts/s "
          f"(target >= {TARGET_RATIO:.0%})")  # fmt: skip
    print(f"{'PASS' if same == len(common) else 'FAIL'}  {same} of {len(common)} texts: the same scores (4 places) "
          "and flagged on both routes")  # fmt: skip
    print(f"load average at the end: {tuple(round(x, 2) for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
