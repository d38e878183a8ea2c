"""test_gpu.py reports the device and, with --require-gpu, fails without one."""

from __future__ import annotations

import subprocess
import sys

import torch

from cockatoo_ml.registry.paths import REPO_ROOT
from cockatoo_ml.training.devices import device_info, precision_flags


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(REPO_ROOT / "test_gpu.py"), *args], capture_output=True, text=True, timeout=120
    )


def test_reports_torch_cuda_devices_and_bf16() -> None:
    done = run_script()
    assert done.returncode == 0
    for needle in (f"torch {torch.__version__}", "CUDA available:", "devices:", "bf16 supported:"):
        assert needle in done.stdout


def test_require_gpu_fails_without_a_gpu() -> None:
    done = run_script("--require-gpu")
    if torch.cuda.is_available():
        assert done.returncode == 0
    else:
        assert done.returncode == 1 and "no CUDA GPU" in done.stderr


def test_device_info_and_precision_on_this_machine() -> None:
    info = device_info()
    assert info["device_count"] == len(info["devices"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    flags = precision_flags("auto")
    if torch.cuda.is_available():
        assert flags["bf16"] == torch.cuda.is_bf16_supported() and flags["fp16"] != flags["bf16"]
    else:
        assert flags == {"bf16": False, "fp16": False, "tf32": None}
