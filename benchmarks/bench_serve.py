"""Serving benchmark: our server against a naive one (a transformers pipeline called once per text, the seed's
way) on the same MiniLM checkpoint, same texts, same run.

    .venv/bin/python benchmarks/bench_serve.py                      # fresh MiniLM head, ~2 minutes on 2 cores
    .venv/bin/python benchmarks/bench_serve.py --model-dir constellation_one_text

Both servers run as their own Hypercorn process on loopback (ours through start_api.sh). For each it prints
texts/s and p50/p99 request latency for /batch (64 texts per request, one client) and /predict (16 concurrent
clients), the peak resident memory of the server process, the ratios and whether the targets hold; and, as a
ceiling, the texts/s of our model alone (``TextClassifier.score`` in this process, same precision and threads,
64 texts per call, no HTTP). Texts are lines of ../shared/datasets/tweeteval_hate/val_text.txt, one in ten of
them made long by joining several lines. The machine's load average is printed too: on a shared CPU, run it more
than once.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

# This process runs the model-alone line; its idle OpenMP threads must not spin while the servers are measured
# (as app.py does for our server). The servers get the environment as it was.
SERVER_ENVIRON = dict(os.environ)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from cockatoo_ml.cli import run_main  # noqa: E402
from cockatoo_ml.errors import DataError  # noqa: E402
from cockatoo_ml.serving.model import TextClassifier  # noqa: E402

DEFAULT_TEXTS = REPO_ROOT.parent / "shared" / "datasets" / "tweeteval_hate" / "val_text.txt"
TARGETS = {"batch_speedup": 4.0, "predict_speedup": 3.0, "peak_rss_mb": 700.0}


@dataclass
class BenchArgs:
    model_dir: str = field(
        default="", metadata={"help": "Model dir to serve; default: MiniLM with a fresh 4-label head."}
    )
    texts_file: str = field(default=str(DEFAULT_TEXTS), metadata={"help": "One text per line."})
    rounds: int = field(default=2, metadata={"help": "Measurement rounds, alternating between the servers."})
    batch_requests: int = field(default=6, metadata={"help": "Timed /batch requests per server and round."})
    batch_size: int = field(default=64, metadata={"help": "Texts per /batch request."})
    clients: int = field(default=16, metadata={"help": "Concurrent /predict clients."})
    predict_requests: int = field(default=8, metadata={"help": "Timed /predict requests per client and round."})
    long_share: float = field(default=0.1, metadata={"help": "Share of texts made long by joining lines."})
    seed: int = field(default=0, metadata={"help": "Random seed for picking texts."})
    dtype: str = field(default="auto", metadata={"help": "COCKATOO_DTYPE for our server: auto, float32, bfloat16, int8."})
    serve_naive: bool = field(default=False, metadata={"help": "Internal: run the naive server in this process."})
    port: int = field(default=0, metadata={"help": "Internal: port for --serve-naive."})


# --- the baseline: one pipeline call per text, each in a worker thread (as the seed's app.py) ---------------
def naive_app(model_dir: str):  # type: ignore[no-untyped-def]
    import asyncio

    from quart import Quart, jsonify, request
    from transformers import pipeline

    classify = pipeline("text-classification", model=model_dir, top_k=None)
    app = Quart(__name__)

    def predict_one(text: str, threshold: float) -> dict:
        output = classify(text, truncation=True, max_length=512)
        items = output[0] if isinstance(output[0], list) else output  # one text may come back nested
        scores = {item["label"]: round(item["score"], 4) for item in items}
        top = max(scores, key=scores.get)
        return {
            "text": text, "predictions": scores, "positive_labels": [k for k, v in scores.items() if v >= threshold],
            "top_label": top, "max_score": scores[top], "error": None,
        }

    @app.get("/health")
    async def health():  # type: ignore[no-untyped-def]
        return jsonify({"status": "ok", "model": "naive"})

    @app.post("/predict")
    async def predict():  # type: ignore[no-untyped-def]
        data = await request.get_json()
        return jsonify(await asyncio.to_thread(predict_one, data["text"], data.get("threshold") or 0.5))

    @app.post("/batch")
    async def batch():  # type: ignore[no-untyped-def]
        data = await request.get_json()
        results = [await asyncio.to_thread(predict_one, t, data.get("threshold") or 0.5) for t in data["texts"]]
        return jsonify({"count": len(results), "results": results})

    return app


def serve_naive(model_dir: str, port: int) -> None:
    import asyncio

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    asyncio.run(serve(naive_app(model_dir), config))


# --- driving a server -------------------------------------------------------------------------------------
@dataclass
class Measured:
    """Requests of one kind sent to one server, over all rounds."""

    texts: int = 0
    wall_s: float = 0.0
    latencies: list[float] = field(default_factory=list)

    @property
    def texts_per_s(self) -> float:
        return self.texts / self.wall_s

    def percentile_ms(self, q: int) -> float:
        values = self.latencies
        return 1000 * (statistics.quantiles(values, n=100, method="inclusive")[q - 1] if len(values) > 1 else values[0])


class ServerProcess:
    def __init__(self, command: list[str], env: dict[str, str], port: int, log: Path) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as sink:
            self.process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT)

    def wait_ready(self) -> ServerProcess:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log.read_text(errors='replace')}")
            try:
                if requests.get(f"{self.url}/health", timeout=1).ok:
                    return self
            except requests.ConnectionError:
                time.sleep(0.3)
        raise RuntimeError(f"server not ready:\n{self.log.read_text(errors='replace')}")

    def peak_rss_mb(self) -> float:
        """Peak resident memory (VmHWM) of the server process and any worker children."""
        import psutil

        total = 0.0
        for proc in [psutil.Process(self.process.pid), *psutil.Process(self.process.pid).children(recursive=True)]:
            for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    total += int(line.split()[1]) / 1024
        return total

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()


def drive(url: str, path: str, payloads: list[list[dict]], texts_per_request: int, into: Measured) -> None:
    """Each inner list is one client's requests, sent one after another; clients run concurrently."""

    def client(requests_of_client: list[dict]) -> list[float]:
        latencies = []
        with requests.Session() as session:
            for payload in requests_of_client:
                start = time.perf_counter()
                response = session.post(f"{url}{path}", json=payload, timeout=600)
                latencies.append(time.perf_counter() - start)
                response.raise_for_status()
        return latencies

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=len(payloads)) as pool:
        latencies = [lat for lats in pool.map(client, payloads) for lat in lats]
    into.wall_s += time.perf_counter() - start
    into.texts += len(latencies) * texts_per_request
    into.latencies.extend(latencies)


def load_texts(path: Path, long_share: float, seed: int) -> list[str]:
    if not path.is_file():
        raise DataError(f"no texts at {path}; pass --texts-file with one text per line")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    rng = random.Random(seed)
    texts = []
    for line in lines:
        if rng.random() < long_share:  # a forum post / e-mail rather than a tweet: 8-20 lines, ~250-600 tokens
            line = " ".join(rng.sample(lines, rng.randint(8, 20)))
        texts.append(line)
    rng.shuffle(texts)
    return texts


def make_minilm_checkpoint(out: Path) -> Path:
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from cockatoo_ml.registry.labels import DEFAULT_LABELS
    from cockatoo_ml.registry.models import resolve_base_model

    base = resolve_base_model("minilm")
    model = AutoModelForSequenceClassification.from_pretrained(
        base, num_labels=len(DEFAULT_LABELS), id2label=dict(enumerate(DEFAULT_LABELS)),
        label2id={label: i for i, label in enumerate(DEFAULT_LABELS)}, problem_type="multi_label_classification",
    )
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return out


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def score_alone(classifier: TextClassifier, batches: list[list[str]], into: Measured) -> None:
    """Our model without any server: TextClassifier.score called in this process, one batch after another."""
    start = time.perf_counter()
    for texts in batches:
        began = time.perf_counter()
        classifier.score(texts)
        into.latencies.append(time.perf_counter() - began)
        into.texts += len(texts)
    into.wall_s += time.perf_counter() - start


def run_rounds(
    servers: dict[str, ServerProcess], classifier: TextClassifier, texts: list[str], args: BenchArgs
) -> dict[str, dict]:
    """Rounds alternate between the servers (and the model alone), so a change in the machine's load hits all
    alike; within a round all three get the same texts, so a round with more long posts is hard for all three."""
    cursor = iter(texts * 1000)
    results = {name: {"batch": Measured(), "predict": Measured()} for name in servers}
    results["model"] = {"batch": Measured()}
    for name, server in servers.items():  # warm-up, not measured
        drive(server.url, "/batch", [[{"texts": [next(cursor) for _ in range(args.batch_size)]}]], 1, Measured())
        drive(server.url, "/predict", [[{"text": next(cursor)}] * 2 for _ in range(4)], 1, Measured())
    classifier.score([next(cursor) for _ in range(args.batch_size)])
    for round_index in range(args.rounds):
        batches = [[next(cursor) for _ in range(args.batch_size)] for _ in range(args.batch_requests)]
        predict = [[{"text": next(cursor)} for _ in range(args.predict_requests)] for _ in range(args.clients)]
        for name, server in servers.items():
            print(f"round {round_index + 1}/{args.rounds} {name:5}: load {os.getloadavg()[0]:.2f}", flush=True)
            drive(server.url, "/batch", [[{"texts": texts} for texts in batches]], args.batch_size, results[name]["batch"])
            drive(server.url, "/predict", predict, 1, results[name]["predict"])
        print(f"round {round_index + 1}/{args.rounds} model alone: load {os.getloadavg()[0]:.2f}", flush=True)
        score_alone(classifier, batches, results["model"]["batch"])
    for name, server in servers.items():
        results[name]["rss"] = server.peak_rss_mb()
    return results


def load_model_alone(model_dir: str, dtype: str) -> TextClassifier:
    """The model as our server loads it (same precision, windows and thread plan), for the no-server line."""
    from cockatoo_ml.registry.api import ServingSettings
    from cockatoo_ml.serving.app import load_classifier

    return load_classifier(ServingSettings(model_dir=Path(model_dir), dtype=dtype))


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(BenchArgs).parse_args_into_dataclasses(args=argv)
    if args.serve_naive:
        serve_naive(args.model_dir, args.port)
        return 0
    texts = load_texts(Path(args.texts_file), args.long_share, args.seed)
    with tempfile.TemporaryDirectory(prefix="cockatoo_bench_") as tmp:
        model_dir = args.model_dir or str(make_minilm_checkpoint(Path(tmp) / "minilm_4labels"))
        env = {k: v for k, v in SERVER_ENVIRON.items() if not k.startswith("COCKATOO_")}
        env.update(COCKATOO_MODEL_DIR=model_dir, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
        ours_env = {**env, "COCKATOO_DTYPE": args.dtype}
        print(f"model {model_dir}; our dtype {args.dtype}; {len(texts)} texts; cpus {os.cpu_count()}; load {os.getloadavg()}", flush=True)
        ours_port, naive_port = free_port(), free_port()
        servers = {
            "ours": ServerProcess(
                ["bash", "start_api.sh", "127.0.0.1", str(ours_port), "1"], ours_env, ours_port, Path(tmp) / "ours.log"
            ),
            "naive": ServerProcess(
                [sys.executable, __file__, "--serve_naive", "--model_dir", model_dir, "--port", str(naive_port)],
                env, naive_port, Path(tmp) / "naive.log",
            ),
        }
        try:
            for server in servers.values():
                server.wait_ready()
            results = run_rounds(servers, load_model_alone(model_dir, args.dtype), texts, args)
        finally:
            for server in servers.values():
                server.stop()
    print_table(results, args)
    return 0


def print_table(results: dict[str, dict], args: BenchArgs) -> None:
    rows = (("batch", f"/batch ({args.batch_size} texts/request)"), ("predict", f"/predict ({args.clients} clients)"))
    print(f"\n{'server':7} {'endpoint':28} {'texts/s':>9} {'p50 ms':>9} {'p99 ms':>9} {'peak RSS MB':>12}")
    for name in ("ours", "naive"):
        for key, label in rows:
            m: Measured = results[name][key]
            print(
                f"{name:7} {label:28} {m.texts_per_s:9.1f} {m.percentile_ms(50):9.1f} {m.percentile_ms(99):9.1f} "
                f"{results[name]['rss']:12.0f}"
            )
    alone: Measured = results["model"]["batch"]
    print(
        f"{'model':7} {'score(), no server':28} {alone.texts_per_s:9.1f} {alone.percentile_ms(50):9.1f} "
        f"{alone.percentile_ms(99):9.1f} {'':>12}"
    )
    ours, naive = results["ours"], results["naive"]
    batch_x = ours["batch"].texts_per_s / naive["batch"].texts_per_s
    predict_x = ours["predict"].texts_per_s / naive["predict"].texts_per_s
    print(
        f"\nour model alone, with no server at all: {alone.texts_per_s / naive['batch'].texts_per_s:.1f}x the naive "
        f"/batch, {alone.texts_per_s / naive['predict'].texts_per_s:.1f}x the naive /predict (a ceiling for any server "
        f"running this model with PyTorch on this machine); our server reaches {ours['batch'].texts_per_s / alone.texts_per_s:.0%} "
        f"(/batch) and {ours['predict'].texts_per_s / alone.texts_per_s:.0%} (/predict) of it"
    )
    checks = [
        (f"/batch texts/s {batch_x:.1f}x naive (target >= {TARGETS['batch_speedup']}x)",
         batch_x >= TARGETS["batch_speedup"]),
        (f"/predict texts/s {predict_x:.1f}x naive (target >= {TARGETS['predict_speedup']}x)",
         predict_x >= TARGETS["predict_speedup"]),
        ("/batch p99 no worse than naive", ours["batch"].percentile_ms(99) <= naive["batch"].percentile_ms(99)),
        ("/predict p99 no worse than naive", ours["predict"].percentile_ms(99) <= naive["predict"].percentile_ms(99)),
        (f"our peak RSS {ours['rss']:.0f} MB (target < {TARGETS['peak_rss_mb']:.0f})",
         ours["rss"] < TARGETS["peak_rss_mb"]),
    ]
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print(f"load average at the end: {tuple(round(x, 2) for x in os.getloadavg())}")


if __name__ == "__main__":
    sys.exit(run_main(main))
