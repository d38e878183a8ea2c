"""The same training script under torchrun: two CPU processes (gloo) with the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from cockatoo_ml.artifacts import EVAL_RESULTS_FILE
from cockatoo_ml.registry.paths import REPO_ROOT
from cockatoo_ml.serving.launch import free_port


def test_torchrun_two_cpu_processes(tmp_path: Path, tiny_processed_dir: Path, tiny_model_dir: Path) -> None:
    out = tmp_path / "model"
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
        str(REPO_ROOT / "train_text.py"),
        "--data", str(tiny_processed_dir), "--base-model", str(tiny_model_dir), "--output-dir", str(out),
        "--batch-size", "8", "--max-steps", "4", "--logging-steps", "2",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "COCKATOO_TELEMETRY": "", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((out / EVAL_RESULTS_FILE).read_text())
    assert results["world_size"] == 2 and results["global_step"] == 4
    assert results["validation"]["rows"] == 36  # gathered from both processes, no duplicates
    assert (out / "model.safetensors").is_file() and (out / "thresholds.json").is_file()
