"""Soak benchmark: many clients, a share of them hostile, against one real server; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_soak.py --model-dir data/demo_model
    .venv/bin/python benchmarks/bench_soak.py --model-dir DIR --requests 2000 --clients 16   # shorter

Starts the server with start_api.sh on a free loopback port (or drives --url), then ``--clients`` threads send
``--requests`` requests in all, mixed /predict and /batch, ``--hostile`` of them hostile or malformed (lone
surrogates, NUL-only and zero-width texts, bad JSON, wrong types, unknown labels, texts over the token budget,
a batch of 20,000 integers, forged log lines in the path). It prints the count of answers by status (a 5xx is
a bug), requests that got no response at all, p50/p99 latency of the valid requests, and whether every valid
request was answered in order. Each client keeps one HTTP/1.1 connection: a 429 is retried after its Retry-After,
a request that got no response byte on a reused connection is sent once more on a new one, both counted.

The server's resident memory is sampled every 2 s: printed at the start (after a warm-up with every hostile body
and the largest /batch on every client), after the first 10% of the requests, at its peak and at the end, and
at each 10% of the requests; also the figure earlier runs called the start (after one tiny request). A progress
line every 30 s; Ctrl-C stops sending and still prints the report.
"""

from __future__ import annotations

import http.client
import itertools
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import psutil  # noqa: E402
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


# A request body: raw bytes (not JSON, or JSON that json.dumps cannot write), or what to send as JSON.
Body = bytes | dict[str, Any] | list[Any]

HOSTILE_BODIES: list[tuple[str, Body]] = [
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
    status: int  # 0: no response at all (the error says why)
    latency_s: float
    valid: bool
    in_order: bool = True
    retries: int = 0  # after a 429
    resent: bool = False  # sent again after no response on a reused connection
    error: str = ""


# No response byte at all: the server closed the connection (or reset it) before answering.
NO_RESPONSE_ERRORS = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError, ConnectionAbortedError)


def plan(args: SoakArgs, texts: list[str]) -> list[tuple[str, Body, bool]]:
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


class Client:
    """One keep-alive HTTP/1.1 connection, used as browsers and ``requests`` use theirs: a request that got no
    response byte at all on a reused connection (the server may have closed it just then) is sent once more on
    a new one, and counted; a second failure, or one on a fresh connection, is a request without a response."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self.connection = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=600)

    def send(self, path: str, body: Body, valid: bool) -> Outcome:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        retries = 0
        resent = False
        start = time.perf_counter()
        while True:
            reused = self.connection.sock is not None  # http.client drops the socket after "connection: close"
            try:
                self.connection.request("POST", path, data, {"Content-Type": "application/json"})
                response = self.connection.getresponse()
                answer = response.read()
            except NO_RESPONSE_ERRORS as exc:
                self.connection.close()
                if reused and not resent:
                    resent = True
                    continue
                return Outcome(0, time.perf_counter() - start, valid, resent=resent, error=_describe(exc))
            except (OSError, http.client.HTTPException) as exc:  # a timeout, a garbled answer
                self.connection.close()
                return Outcome(0, time.perf_counter() - start, valid, resent=resent, error=_describe(exc))
            if response.status != 429:
                break
            retries += 1
            time.sleep(float(response.headers.get("Retry-After", "1")))
        outcome = Outcome(response.status, time.perf_counter() - start, valid, retries=retries, resent=resent)
        if valid and response.status == 200 and isinstance(body, dict):  # a valid body is always an object
            sent = [body["text"]] if path == "/predict" else body["texts"]
            try:
                parsed = json.loads(answer)
                got = [parsed["text"]] if path == "/predict" else [r["text"] for r in parsed["results"]]
            except (ValueError, KeyError, TypeError) as exc:
                got, outcome.error = [], f"unreadable answer: {_describe(exc)}"
            outcome.in_order = got == sent
        return outcome

    def close(self) -> None:
        self.connection.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:120]


def rss_mb(server: ServerProcess) -> tuple[float, float]:
    """Resident memory now of the server process and its children, and how much of it is file-backed (pages of
    torch's and the other libraries' code and data, read in as first used: not the heap)."""
    root = psutil.Process(server.process.pid)
    infos = [proc.memory_info() for proc in [root, *root.children(recursive=True)]]
    return sum(info.rss for info in infos) / 2**20, sum(info.shared for info in infos) / 2**20


class RssSampler(threading.Thread):
    """The server's resident memory every ``interval_s`` seconds, with how many requests were done by then (a
    plateau reached early is allocator warm-up, steady growth is a leak); a progress line every ``print_every``
    samples, so a long or interrupted run still shows where it was."""

    def __init__(
        self, server: ServerProcess, done: Callable[[], int], total: int, interval_s: float = 2.0, print_every: int = 15
    ) -> None:
        super().__init__(daemon=True)
        self.server, self.done, self.total = server, done, total
        self.interval_s, self.print_every = interval_s, print_every
        self.samples: list[tuple[int, float, float]] = []  # (requests done, resident MB, file-backed MB)
        self._halt = threading.Event()

    def sample(self) -> float:
        try:
            mb, file_mb = rss_mb(self.server)
        except psutil.Error:  # the server has gone (its exit shows in the answers)
            return float("nan")
        self.samples.append((self.done(), mb, file_mb))
        return mb

    def run(self) -> None:
        started = time.perf_counter()
        while not self._halt.wait(self.interval_s):
            mb = self.sample()
            if len(self.samples) % self.print_every == 0:
                print(
                    f"[{time.perf_counter() - started:.0f}s] {self.done()}/{self.total} requests, "
                    f"server RSS {mb:.0f} MB",
                    flush=True,
                )

    def stop(self) -> None:
        self._halt.set()
        self.join()


def warm_up(url: str, args: SoakArgs, texts: list[str]) -> None:
    """Each hostile body once, then ``--clients`` of the largest valid /batch at once (the longest texts, so the
    widest forward passes on every model thread): the memory the server needs for its biggest work is in place
    before the soak's start figure is taken."""
    client = Client(url)
    for path, body in HOSTILE_BODIES:
        client.send(path, body, valid=False)
    client.close()
    longest = sorted(texts, key=len, reverse=True)[: args.batch_texts]

    def largest_batch(_: int) -> None:
        batch_client = Client(url)
        batch_client.send("/batch", {"texts": longest}, valid=True)
        batch_client.close()

    with ThreadPoolExecutor(args.clients) as pool:
        list(pool.map(largest_batch, range(args.clients)))


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
        print(f"server log: {log}", flush=True)
    done = itertools.count()
    finished = [0]
    stop = threading.Event()
    sampler = None
    rss_tiny = float("nan")

    def client(mine: list[tuple[str, Body, bool]]) -> list[Outcome]:
        connection = Client(url)
        outcomes = []
        for path, body, valid in mine:
            if stop.is_set():
                break
            outcomes.append(connection.send(path, body, valid))
            finished[0] = next(done) + 1
        connection.close()
        return outcomes

    try:
        tiny = Client(url)
        tiny.send("/predict", {"text": "warm up"}, valid=True)
        tiny.close()
        if server:
            rss_tiny = rss_mb(server)[0]  # the "start" of runs before the warm-up below existed
        warm_up(url, args, texts)
        if server:
            sampler = RssSampler(server, lambda: finished[0], len(planned))
            sampler.sample()  # the start figure: after the warm-up
            sampler.start()
        started = time.perf_counter()
        pool = ThreadPoolExecutor(args.clients)
        futures = [pool.submit(client, planned[i :: args.clients]) for i in range(args.clients)]
        try:
            for future in futures:
                future.result()
        except KeyboardInterrupt:  # stop sending, let the requests in flight finish, and report what was done
            stop.set()
            print("interrupted: waiting for the requests in flight", flush=True)
        pool.shutdown(wait=True)
        outcomes = [outcome for future in futures for outcome in future.result()]
        wall = time.perf_counter() - started
        health = health_status(url)
        if sampler:
            sampler.stop()
            sampler.sample()  # the end figure
    finally:
        if server:
            server.terminate(timeout=60)
    report(args, outcomes, wall, health)
    if sampler and sampler.samples:
        print(rss_summary(rss_tiny, sampler.samples, len(outcomes)))
    return 0


def health_status(url: str) -> str:
    try:
        return str(requests.get(f"{url}/health", timeout=30).status_code)
    except requests.RequestException as exc:
        return f"no answer ({_describe(exc)})"


def report(args: SoakArgs, outcomes: list[Outcome], wall: float, health: str) -> None:
    statuses = Counter(outcome.status for outcome in outcomes if outcome.status)
    valid = [outcome for outcome in outcomes if outcome.valid]
    latencies = sorted(outcome.latency_s for outcome in valid if outcome.status == 200)
    lost = sum(1 for outcome in valid if outcome.status != 200 or not outcome.in_order)
    unanswered = [outcome for outcome in outcomes if outcome.status == 0]
    if len(outcomes) < args.requests:
        print(f"stopped early: {len(outcomes)} of {args.requests} requests sent")
    print(
        f"{len(outcomes)} requests from {args.clients} clients in {wall:.1f}s ({len(outcomes) / wall:.1f}/s), "
        f"{len(outcomes) - len(valid)} hostile or malformed"
    )
    print("answers by status: " + ", ".join(f"{status}: {count}" for status, count in sorted(statuses.items())))
    print(f"5xx: {sum(count for status, count in statuses.items() if status >= 500)}")
    print(
        f"no response: {len(unanswered)} ({len([o for o in unanswered if o.valid])} valid)"
        + "".join(f"; {count} x {error}" for error, count in Counter(o.error for o in unanswered).most_common(3))
    )
    print(
        f"sent again after no response on a reused connection: {sum(o.resent for o in outcomes)} "
        f"(then answered: {sum(o.resent and o.status != 0 for o in outcomes)})"
    )
    print(
        f"valid requests: {len(valid)}, answered 200 in order: {len(valid) - lost}, lost or out of order: {lost}, "
        f"429 retries: {sum(outcome.retries for outcome in outcomes)}"
    )
    if latencies:
        quantiles = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
        print(f"valid latency: p50 {1000 * quantiles[49]:.0f} ms, p99 {1000 * quantiles[98]:.0f} ms")
    print(f"/health after the soak: {health}")


def rss_summary(tiny: float, samples: list[tuple[int, float, float]], total: int) -> str:
    """Start (after the warm-up), after the first 10% of the requests, peak and end, and the growth to the end
    from each; also from the figure earlier runs called "start" (after one tiny request, before the warm-up)."""
    start, end = samples[0][1], samples[-1][1]
    tenth = next((mb for done, mb, _ in samples if done >= total / 10), end)
    peak = max(mb for _, mb, _ in samples)
    by_tenth = [next((mb for done, mb, _ in samples if done >= total * i / 10), end) for i in range(11)]
    return (
        f"server RSS: start (after the warm-up) {start:.0f} MB, after 10% {tenth:.0f} MB, peak {peak:.0f} MB, "
        f"end {end:.0f} MB ({len(samples)} samples)\n"
        f"server RSS growth to the end: from the start {end / start - 1:+.1%}, from 10% {end / tenth - 1:+.1%}; "
        f"from after one tiny request ({tiny:.0f} MB, the start figure before the warm-up) {end / tiny - 1:+.1%}\n"
        f"of which file-backed (library pages, not heap): start {samples[0][2]:.0f} MB, end {samples[-1][2]:.0f} MB\n"
        "server RSS at each 10% of the requests (MB): " + " ".join(f"{mb:.0f}" for mb in by_tenth)
    )


if __name__ == "__main__":
    sys.exit(run_main(main))
