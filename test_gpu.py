"""Report torch, CUDA, GPUs and bf16 support (``python test_gpu.py [--require-gpu]``)."""

from __future__ import annotations

import sys

from cockatoo_ml.cli import run_main
from cockatoo_ml.training.devices import gpu_check_main

if __name__ == "__main__":
    sys.exit(run_main(gpu_check_main))
