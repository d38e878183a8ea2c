"""Train the cascade's student for a model directory: ``python distill.py --model DIR`` writes DIR/student/."""

from __future__ import annotations

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.distillation.run import main

if __name__ == "__main__":
    sys.exit(run_main(main))
