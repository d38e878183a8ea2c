"""The quickstart: ``./quickstart.sh`` prepares the embedded demo corpus, fine-tunes MiniLM on it and serves it.

One module-scoped run of the real script (prepare + train, 1.5 to 4 minutes on 2 cores) feeds the slow tests:
the demo model must get obvious cases right, a second run must reuse everything, and the serve step must
answer the curl examples it prints, which are the README's examples.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from cockatoo_ml.serving.launch import ServerProcess, free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
QUICKSTART = REPO_ROOT / "quickstart.sh"
CORPUS = REPO_ROOT / "demo" / "corpus.jsonl"
FOUR = ("scam", "violence", "nsfw", "harassment")
LABELS = (*FOUR, "unsafe")  # unsafe: 1 wherever another label is, and on dangerous requests none of them covers
TRAIN_TIMEOUT_S = 900  # the script's own target is < 5 min on 2 busy cores; this only stops a hung run
SERVE_TIMEOUT_S = 180

# (text, the labels it must get). None of these texts is in the corpus.
OBVIOUS_CASES: list[tuple[str, set[str]]] = [
    ("URGENT: your bank account has been suspended. Verify your card details at secure-bank-verify.com now", {"scam", "unsafe"}),
    ("Send 0.2 BTC to my wallet and I'll send back 0.4 BTC within the hour, guaranteed", {"scam", "unsafe"}),
    ("I know where you live and I will hurt you and your family tonight", {"violence", "unsafe"}),
    ("You are a pathetic idiot and nobody at school likes you", {"harassment", "unsafe"}),
    ("Send me naked pictures of yourself right now", {"nsfw", "unsafe"}),
    ("I could kill for a coffee", set()),
    ("Your monthly statement is now available in online banking. We will never ask for your password.", set()),
    ("Thanks for dinner last night, see you on Friday!", set()),
]


def quickstart_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"HOST", "PORT"} and not k.startswith("COCKATOO_")}
    env.update(extra)
    return env


def run_quickstart(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(QUICKSTART), *args], cwd=REPO_ROOT, env=quickstart_env(), capture_output=True, text=True, timeout=timeout
    )


@dataclass(frozen=True)
class DemoRun:
    data_dir: Path
    model_dir: Path
    output: str

    @property
    def dir_args(self) -> list[str]:
        return ["--data-dir", str(self.data_dir), "--model-dir", str(self.model_dir)]


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    """``./quickstart.sh --no-serve`` into a temporary folder: the real prepare and train steps."""
    out = tmp_path_factory.mktemp("quickstart")
    data_dir, model_dir = out / "demo_processed", out / "demo_model"
    done = run_quickstart("--no-serve", "--data-dir", str(data_dir), "--model-dir", str(model_dir),
                          timeout=TRAIN_TIMEOUT_S)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return DemoRun(data_dir, model_dir, done.stdout)


# --- the embedded corpus ------------------------------------------------------------------------------------


def read_corpus() -> list[dict]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines()]


def test_corpus_rows_have_text_and_five_binary_labels() -> None:
    rows = read_corpus()
    assert 400 <= len(rows) <= 600
    for row in rows:
        assert set(row) == {"text", *LABELS}, row
        assert isinstance(row["text"], str) and row["text"].strip() == row["text"] and row["text"]
        assert all(row[label] in (0, 1) for label in LABELS), row
        assert row["unsafe"] >= max(row[label] for label in FOUR), row  # a labelled row is unsafe
    texts = [row["text"] for row in rows]
    assert len(set(texts)) == len(texts), "duplicate texts in the demo corpus"


def test_corpus_readme_counts_match_the_file() -> None:
    rows = read_corpus()
    readme = (REPO_ROOT / "demo" / "README.md").read_text(encoding="utf-8")
    counted = {label: sum(row[label] for row in rows) for label in LABELS}
    counted["benign"] = sum(1 for row in rows if not any(row[label] for label in LABELS))
    counted["multi"] = sum(1 for row in rows if sum(row[label] for label in FOUR) > 1)
    counted["only"] = sum(1 for row in rows if row["unsafe"] and not any(row[label] for label in FOUR))
    assert f"{len(rows)} rows" in readme
    for label in LABELS:
        assert re.search(rf"\| {label} \| {counted[label]} \|", readme), label
    assert re.search(rf"\| no label \(benign, unsafe 0\) \| {counted['benign']} \|", readme)
    assert re.search(rf"\| more than one of the four labels \| {counted['multi']} ", readme)
    assert re.search(rf"\| unsafe only \| {counted['only']} ", readme)
    assert "not a production dataset" in readme


def test_corpus_holds_the_hard_negatives_the_issue_names() -> None:
    benign = {row["text"] for row in read_corpus() if not any(row[label] for label in LABELS)}
    assert any("could kill for a coffee" in text for text in benign)
    assert any("statement" in text and "never ask" in text for text in benign)  # a genuine bank notice
    assert any("Sex education" in text for text in benign)


# --- arguments that fail fast ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--port", "80a"], "port must be a number from 1 to 65535, got '80a'"),
        (["--port", "70000"], "port must be a number from 1 to 65535"),
        (["--host"], "--host needs a value"),
        (["--frobnicate"], "unknown option --frobnicate"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args: list[str], message: str) -> None:
    done = run_quickstart(*args, timeout=30)
    assert done.returncode == 2
    assert message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_without_python_311_it_says_which_interpreter_to_use(tmp_path: Path) -> None:
    # A copy of the scripts without .venv: quickstart.sh must create one and cannot with this interpreter.
    (tmp_path / "scripts").mkdir()
    for name in ("quickstart.sh", "requirements.txt", "scripts/venv.sh"):
        (tmp_path / name).write_bytes((REPO_ROOT / name).read_bytes())
    (tmp_path / "quickstart.sh").chmod(0o755)
    done = subprocess.run([str(tmp_path / "quickstart.sh")], env=quickstart_env(PYTHON=str(tmp_path / "python2")),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert "Python 3.11 or newer is needed" in done.stderr and "not found" in done.stderr
    assert "PYTHON=python3.11" in done.stderr
    assert not (tmp_path / ".venv").exists()


def test_a_busy_port_fails_before_any_work(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_quickstart("--port", str(port), "--data-dir", str(tmp_path / "d"), "--model-dir",
                              str(tmp_path / "m"))
    assert done.returncode != 0
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr and "--port" in done.stderr
    assert not (tmp_path / "d").exists(), "it prepared data although it could never serve"


# --- the demo model ---------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_demo_model_gets_obvious_cases_right(demo_run: DemoRun) -> None:
    import torch
    from transformers import AutoTokenizer

    from cockatoo_ml.artifacts import load_thresholds
    from cockatoo_ml.modeling import load_classifier

    tokenizer = AutoTokenizer.from_pretrained(demo_run.model_dir)
    model = load_classifier(demo_run.model_dir)
    labels = [model.config.id2label[i] for i in range(model.config.num_labels)]
    assert labels == list(LABELS)
    thresholds = load_thresholds(demo_run.model_dir, labels)  # what the server applies by default
    texts = [text for text, _ in OBVIOUS_CASES]
    with torch.no_grad():
        scores = torch.sigmoid(model(**tokenizer(texts, padding=True, return_tensors="pt")).logits).tolist()
    wrong = []
    for (text, expected), row in zip(OBVIOUS_CASES, scores):
        positive = {label for label, score in zip(labels, row) if score >= thresholds[label]}
        if positive != expected:
            wrong.append(f"{text!r}: expected {sorted(expected)}, got {sorted(positive)} ({[round(s, 2) for s in row]})")
    assert not wrong, "\n".join(wrong)


@pytest.mark.slow
def test_demo_training_reports_its_time_and_cleans_checkpoints(demo_run: DemoRun) -> None:
    assert re.search(r"trained the demo model in \d+ s", demo_run.output)
    assert (demo_run.model_dir / "thresholds.json").is_file()
    assert not Path(f"{demo_run.model_dir}.checkpoints").exists()


@pytest.mark.slow
def test_second_run_reuses_data_and_model(demo_run: DemoRun) -> None:
    config = demo_run.model_dir / "config.json"
    before = config.stat().st_mtime_ns
    done = run_quickstart("--no-serve", *demo_run.dir_args)
    assert done.returncode == 0, done.stderr
    assert "reusing the prepared demo dataset" in done.stdout
    assert "reusing the trained demo model" in done.stdout
    assert config.stat().st_mtime_ns == before


# --- serving: the printed curl examples against a real server ----------------------------------------------------


@pytest.fixture(scope="module")
def served_demo(demo_run: DemoRun, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, list[str]]]:
    """``./quickstart.sh --port P`` reusing the demo model; yields the port and the curl lines it printed."""
    port = free_port()
    command = [str(QUICKSTART), "--port", str(port), *demo_run.dir_args]
    log_path = tmp_path_factory.mktemp("serve") / "quickstart.log"
    # Its own process group: quickstart.sh starts the server as a child, and both are stopped at the end.
    with ServerProcess(command, port, log_path, quickstart_env(), own_group=True) as served:
        served.wait_ready(timeout=SERVE_TIMEOUT_S)
        yield port, [line.strip() for line in served.output().splitlines() if line.startswith("curl ")]


def run_curl(command: str) -> dict:
    done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.mark.slow
def test_served_demo_answers_the_printed_examples(served_demo: tuple[int, list[str]]) -> None:
    port, commands = served_demo
    assert [c.split()[2].split("/")[-1] for c in commands] == ["health", "predict", "batch"]
    health, predict, batch = (run_curl(c) for c in commands)
    assert health["status"] == "ok" and health["labels"] == list(LABELS)
    assert sorted(predict["positive_labels"]) == ["scam", "unsafe"] and predict["top_label"] in ("scam", "unsafe")
    assert [sorted(r["positive_labels"]) for r in batch["results"]] == [
        [], ["unsafe", "violence"], ["nsfw", "unsafe"], ["harassment", "unsafe"]
    ]


@pytest.mark.slow
def test_readme_shows_the_printed_examples(served_demo: tuple[int, list[str]]) -> None:
    port, commands = served_demo
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for command in commands:
        assert command.replace(f":{port}/", ":8000/") in readme, command


# --- README and .env.example ---------------------------------------------------------------------------------------


def readme_section(name: str) -> str:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(rf"<!-- section:{name} .*?-->(.*?)<!-- /section:{name} -->", readme, re.S)
    assert match, f"README has no section:{name}"
    return match.group(1)


def test_readme_setup_is_exactly_the_two_commands() -> None:
    first_block = re.search(r"```(?:bash|sh)\n(.*?)```", readme_section("setup"), re.S)
    assert first_block
    commands = [line.split("#")[0].strip() for line in first_block.group(1).splitlines() if line.strip()]
    assert commands == ["./quickstart.sh", "./test.sh"]


def project_files() -> Iterator[Path]:
    for pattern in ("*.py", "*.sh", "cockatoo_ml/**/*.py", "scripts/*"):
        yield from REPO_ROOT.glob(pattern)


def test_env_example_lists_every_variable_the_code_reads() -> None:
    wanted = set()
    for path in project_files():
        wanted |= set(re.findall(r"\b(?:COCKATOO|METRICS)_[A-Z0-9_]*[A-Z0-9]\b", path.read_text(encoding="utf-8")))
    wanted -= {"COCKATOO_ML"}  # the project's name in prose, not a variable
    wanted |= {"HF_TOKEN"}
    lines = (REPO_ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    listed = {}
    for i, line in enumerate(lines):
        match = re.match(r"#? ?([A-Z][A-Z0-9_]+)=", line)
        if match:
            listed[match.group(1)] = lines[i - 1] if i else ""
    assert sorted(wanted - set(listed)) == []
    uncommented = [name for name, above in listed.items()
                   if not above.startswith("# ") or re.match(r"#? ?[A-Z][A-Z0-9_]+=", above)]
    assert uncommented == [], "every variable needs a one-line comment above it"
