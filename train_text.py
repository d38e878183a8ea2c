"""Fine-tune a multi-label moderation classifier on a prepared dataset (``python train_text.py --help``).

Runs as one process or under ``torchrun --nproc_per_node N train_text.py ...`` / ``accelerate launch``."""

from __future__ import annotations

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.pipeline import train_main

if __name__ == "__main__":
    sys.exit(run_main(train_main))
