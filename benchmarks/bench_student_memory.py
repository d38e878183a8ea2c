"""What the cascade's student costs a server in resident memory (issue 11: < 50 MB), and that it stays bounded
whatever the input (issue 20).

    .venv/bin/python benchmarks/bench_student_memory.py --model-dir MODEL_DIR          # MODEL_DIR/student exists
    .venv/bin/python benchmarks/bench_student_memory.py --model-dir MODEL_DIR --requests 0   # the parts only

1. The parts: each measured in a fresh process that has first imported the server (``cockatoo_ml.serving.app``,
   which a server has anyway), as the growth of its RSS (psutil): the libraries a student might import, then
   loading the student and scoring one text. The line "student as served" is what a server pays.
2. Hostile words against a real server (``start_api.sh``, cascade on): ``--requests`` /predict requests, each one
   distinct word of ``--word-chars`` random letters (a BERT tokenizer makes it one [UNK] token, so every one is
   answered 200, while the student sees every letter). The server's RSS (with its workers) before and every fifth
   of the way: with the word cache bounded by entries, 200 such requests grew a server from 602 to 1,291 MB.
3. The cache at its budget, in this process (a TF-IDF student): distinct random words as long as the cache
   keeps (``TFIDF_CACHED_WORD_CHARS`` letters), 100 a call, until ``--fill`` times as many as first filled it:
   the entries, the bytes it counts against COCKATOO_STUDENT_WORD_CACHE_MB, and this process's RSS.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

PARTS = {
    "import scikit-learn (TfidfVectorizer)": "import sklearn.feature_extraction.text",
    "import scipy.special": "import scipy.special",
    "import model2vec": "import model2vec",
    "student as served (load + one text)": "from cockatoo_ml.inference.students import Student; "
                                           "Student.load(STUDENT).scores(['warm up'])",
}
PROBE = (
    "import gc, sys, psutil; from pathlib import Path; sys.path.insert(0, {root!r}); import cockatoo_ml.serving.app; "
    "STUDENT = Path({student!r}); gc.collect(); p = psutil.Process(); before = p.memory_info().rss; {code}; "
    "gc.collect(); print((p.memory_info().rss - before) / 2**20, 'sklearn' in sys.modules)"
)
# os.urandom bytes -> lower-case letters: fast enough to make 5,000 words of 60,000 letters
TO_LETTER = bytes.maketrans(bytes(range(256)), string.ascii_lowercase.encode() * 9 + b"abcdefghijklmnopqrstuv")


@dataclass
class MemoryArgs:
    model_dir: str = field(metadata={"help": "A model directory with a student/ (distill.py)."})
    requests: int = field(default=5000, metadata={"help": "Hostile /predict requests (0: skip part 2)."})
    word_chars: int = field(default=60_000, metadata={"help": "Letters in each request's one word."})
    clients: int = field(default=2, metadata={"help": "Concurrent clients sending them."})
    fill: int = field(default=4, metadata={"help": "Part 3: send this many times the words that fill the cache (0: skip)."})


def measure(code: str, student: str) -> tuple[float, bool]:
    probe = PROBE.format(root=str(REPO_ROOT), student=student, code=code)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), out[-1] == "True"


def random_word(chars: int) -> str:
    return os.urandom(chars).translate(TO_LETTER).decode("ascii")


def server_rss_mb(pid: int) -> tuple[float, float]:
    """(RSS now, peak RSS) of a server process and its children, in MB."""
    import psutil

    root = psutil.Process(pid)
    now = peak = 0.0
    for proc in [root, *root.children(recursive=True)]:
        now += proc.memory_info().rss / 2**20
        for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                peak += int(line.split()[1]) / 1024
    return now, peak


def hostile_words(args: MemoryArgs) -> None:
    import requests

    from cockatoo_ml.serving.launch import ServerProcess, free_port, server_environment

    env = server_environment(os.environ, COCKATOO_MODEL_DIR=args.model_dir, COCKATOO_CASCADE="on")
    print(f"\n{args.requests} /predict requests, each one distinct {args.word_chars:,}-letter word, "
          f"{args.clients} clients; server RSS (with its workers):")
    print(f"{'requests':>9} {'RSS MB':>8} {'peak MB':>8} {'seconds':>8}")
    with tempfile.TemporaryDirectory(prefix="cockatoo_bench_") as tmp:
        port = free_port()
        with ServerProcess.start_api(port, Path(tmp) / "server.log", env).wait_ready(timeout=600) as server:
            url = f"http://127.0.0.1:{port}/predict"
            with requests.Session() as session:  # warm-up: imports and first passes, not counted
                for _ in range(20):
                    session.post(url, json={"text": random_word(100)}, timeout=600).raise_for_status()
            started = time.perf_counter()
            sent = 0
            print(f"{sent:9d} {server_rss_mb(server.process.pid)[0]:8.0f} {'':>8} {0.0:8.0f}", flush=True)
            step = max(1, args.requests // 5)
            tiers: dict[str, int] = {}

            def client(count: int) -> None:
                with requests.Session() as session:
                    for _ in range(count):
                        response = session.post(url, json={"text": random_word(args.word_chars)}, timeout=600)
                        response.raise_for_status()  # every one answered 200, as in the report
                        tier = response.json()["tier"]
                        tiers[tier] = tiers.get(tier, 0) + 1

            while sent < args.requests:
                count = min(step, args.requests - sent)
                shares = [count // args.clients + (i < count % args.clients) for i in range(args.clients)]
                with ThreadPoolExecutor(args.clients) as pool:
                    list(pool.map(client, shares))
                sent += count
                now, peak = server_rss_mb(server.process.pid)
                print(f"{sent:9d} {now:8.0f} {peak:8.0f} {time.perf_counter() - started:8.0f}", flush=True)
            print(f"answered by: {tiers}")


def cache_at_budget(args: MemoryArgs) -> None:
    import gc

    import psutil

    from cockatoo_ml.inference.students import Student, TfidfFeatures
    from cockatoo_ml.registry.serving import serving_settings_from_env

    budget_mb = serving_settings_from_env(model_dir=Path(args.model_dir)).student_word_cache_mb
    student = Student.load(Path(args.model_dir) / "student", budget_mb * 2**20)
    if not isinstance(student.features, TfidfFeatures):
        print(f"\n(part 3 skipped: the student is {student.kind}, which has no word cache)")
        return
    cache = student.features._char_columns
    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss / 2**20
    print(f"\nthe word cache at its budget (COCKATOO_STUDENT_WORD_CACHE_MB={budget_mb}), this process:")
    print(f"{'words':>9} {'cached':>8} {'cache MB':>9} {'RSS MB':>8}")

    def row(words: int, note: str = "") -> None:
        gc.collect()
        rss = process.memory_info().rss / 2**20
        print(f"{words:9d} {len(cache):8d} {cache.bytes / 2**20:9.2f} {rss:8.0f}{note}", flush=True)

    words, full_at = 0, 0  # full_at: how many words it had taken when the cache first reached its budget
    while not full_at or words < args.fill * full_at:
        student.scores([" ".join(random_word(cache.max_word_chars) for _ in range(100))])
        words += 100
        if not full_at and cache.bytes > 0.99 * budget_mb * 2**20:
            full_at = words
            row(words, "  (full)")
        elif words % 5_000 == 0:
            row(words)
    row(words, f"  (RSS {process.memory_info().rss / 2**20 - before:+.0f} MB since the student was loaded)")


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(MemoryArgs).parse_args_into_dataclasses(args=argv)
    student = str(Path(args.model_dir) / "student")
    print(f"{'part':40} {'RSS MB':>8}  scikit-learn imported")
    for name, code in PARTS.items():
        mb, sklearn = measure(code, student)
        print(f"{name:40} {mb:8.1f}  {sklearn}", flush=True)
    if args.requests:
        hostile_words(args)
    if args.fill:
        cache_at_budget(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
