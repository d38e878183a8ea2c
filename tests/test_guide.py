"""The README and docs/ against the code: a short README, the API table's routes, and every flag of every command
shown (in code blocks and inline code) accepted by the script it is given to."""

from __future__ import annotations

import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# Each script whose flags the docs show; --help prints every flag it accepts.
SCRIPTS = {
    "download_data.py": [sys.executable, "download_data.py"],
    "prepare_data.py": [sys.executable, "prepare_data.py"],
    "train_text.py": [sys.executable, "train_text.py"],
    "evaluate.py": [sys.executable, "evaluate.py"],
    "distill.py": [sys.executable, "distill.py"],
    "score.py": [sys.executable, "score.py"],
    "test_gpu.py": [sys.executable, "test_gpu.py"],
    "bench_serve.py": [sys.executable, "benchmarks/bench_serve.py"],
    "bench_precision.py": [sys.executable, "benchmarks/bench_precision.py"],
    "bench_fast_path.py": [sys.executable, "benchmarks/bench_fast_path.py"],
    "bench_train.py": [sys.executable, "benchmarks/bench_train.py"],
    "bench_hf_parity.py": [sys.executable, "benchmarks/bench_hf_parity.py"],
    "bench_openai.py": [sys.executable, "benchmarks/bench_openai.py"],
    "bench_score.py": [sys.executable, "benchmarks/bench_score.py"],
    "quickstart.sh": ["bash", "quickstart.sh"],
}
_SCRIPT = re.compile(r"(?:^|[\s/])(" + "|".join(re.escape(name) for name in SCRIPTS) + r")\b(.*)")


def test_readme_is_a_short_guide() -> None:
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= 250, f"README.md has {len(lines)} lines; move detail to docs/"


def test_readme_api_table_lists_exactly_the_served_routes() -> None:
    source = (REPO_ROOT / "cockatoo_ml" / "serving" / "app.py").read_text(encoding="utf-8")
    routes = {f"{method.upper()} {path}" for method, path in re.findall(r'@app\.(get|post)\("([^"]+)"\)', source)}
    routes.add("GET /docs")  # quart-schema's Swagger page (swagger_ui_path), not an @app route
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    table = re.search(r"\| method and path \|.*?\n\n", readme, re.S)
    assert table, "README has no API table starting with '| method and path |'"
    listed = set(re.findall(r"^\| `((?:GET|POST) /[a-z0-9/._]*)`", table.group(0), re.M))
    assert listed == routes


def shown_commands() -> list[tuple[str, str, str]]:
    """(doc, script, the text after the script name) for every command in a code block or inline code span."""
    found = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        blocks = re.findall(r"```[a-z]*\n(.*?)```", text, re.S)
        pieces = [line for block in blocks for line in block.replace("\\\n", " ").splitlines()]
        prose = re.sub(r"```.*?```", "", text, flags=re.S)
        pieces += re.findall(r"`([^`\n]+)`", prose)
        for piece in pieces:
            match = _SCRIPT.search(piece.split(" #")[0])
            if match:
                found.append((doc.name, match.group(1), match.group(2)))
    return found


@cache
def help_text(script: str) -> str:
    done = subprocess.run(
        [*SCRIPTS[script], "--help"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_docs_show_commands_of_every_script() -> None:
    assert {script for _, script, _ in shown_commands()} >= {
        "download_data.py", "prepare_data.py", "train_text.py", "evaluate.py", "distill.py", "quickstart.sh"
    }


@pytest.mark.slow  # one interpreter start (torch, transformers) per script
@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_every_flag_shown_is_accepted(script: str) -> None:
    accepted = set(re.findall(r"--[a-z][a-z0-9_-]*", help_text(script))) | {"--help"}  # every script has it
    wrong = []
    for doc, name, rest in shown_commands():
        if name != script:
            continue
        for flag in re.findall(r"(?<![\w-])--[a-z][a-z0-9_-]*", rest):
            if flag not in accepted:
                wrong.append(f"{doc}: {script} {flag}")
    assert wrong == []
