"""What the cascade's student costs a server in resident memory, part by part (issue 11: < 50 MB).

    .venv/bin/python benchmarks/bench_student_memory.py --student MODEL_DIR/student

Each part is measured in a fresh process that has first imported the server (``cockatoo_ml.serving.app``, which a
server has anyway), as the growth of its RSS (psutil): the libraries a student might import, then loading the
student and scoring one text. The line "student as served" is what a server pays today.
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

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


@dataclass
class MemoryArgs:
    student: str = field(metadata={"help": "A student folder (MODEL_DIR/student, written by distill.py)."})


def measure(code: str, student: str) -> tuple[float, bool]:
    probe = PROBE.format(root=str(REPO_ROOT), student=student, code=code)
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    return float(out[-2]), out[-1] == "True"


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(MemoryArgs).parse_args_into_dataclasses(args=argv)
    print(f"{'part':40} {'RSS MB':>8}  scikit-learn imported")
    for name, code in PARTS.items():
        mb, sklearn = measure(code, args.student)
        print(f"{name:40} {mb:8.1f}  {sklearn}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
