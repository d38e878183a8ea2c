"""What the training machine offers: the GPU report behind ``test_gpu.py`` and the automatic precision choice."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import HfArgumentParser

from cockatoo_ml.errors import ConfigError


def device_info() -> dict[str, Any]:
    """torch/CUDA versions, visible GPUs (name, compute capability, memory) and bf16 support."""
    cuda = torch.cuda.is_available()
    devices = []
    for index in range(torch.cuda.device_count() if cuda else 0):
        props = torch.cuda.get_device_properties(index)
        devices.append(
            {
                "index": index,
                "name": props.name,
                "capability": f"{props.major}.{props.minor}",
                "memory_gib": round(props.total_memory / 2**30, 1),
            }
        )
    return {
        "torch": torch.__version__,
        "cuda_available": cuda,
        "cuda_version": torch.version.cuda,
        "device_count": len(devices),
        "devices": devices,
        "bf16_supported": bool(cuda and torch.cuda.is_bf16_supported()),
        "tf32_capable": bool(cuda and torch.cuda.get_device_capability()[0] >= 8),
    }


def precision_flags(precision: str) -> dict[str, Any]:
    """Trainer flags for ``--precision``: ``auto`` picks bf16 (fp16 on GPUs without bf16) and TF32 (Ampere or
    newer) on CUDA, and full fp32 on CPU, where mixed precision brings nothing."""
    if not torch.cuda.is_available():
        if precision in ("fp16", "bf16"):
            raise ConfigError(f"--precision {precision} needs a CUDA GPU; none is visible (use --precision auto)")
        return {"bf16": False, "fp16": False, "tf32": None}
    if precision == "auto":
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    ampere_or_newer = torch.cuda.get_device_capability()[0] >= 8
    return {"bf16": precision == "bf16", "fp16": precision == "fp16", "tf32": True if ampere_or_newer else None}


def precision_name(flags: dict[str, Any]) -> str:
    return "bf16" if flags["bf16"] else "fp16" if flags["fp16"] else "fp32"


@dataclass
class GpuCheckSettings:
    require_gpu: bool = field(default=False, metadata={"help": "Exit with status 1 when no CUDA GPU is visible."})


def gpu_check_main(argv: Sequence[str] | None = None) -> int:
    """``test_gpu.py``: print what torch sees; with ``--require-gpu`` fail when there is no GPU."""
    parser = HfArgumentParser(GpuCheckSettings, description="Report torch, CUDA, GPUs and bf16 support.")
    (settings,) = parser.parse_args_into_dataclasses(args=list(argv) if argv is not None else None)
    info = device_info()
    print(f"torch {info['torch']} (CUDA build {info['cuda_version'] or 'none'})")
    print(f"CUDA available: {info['cuda_available']}")
    print(f"devices: {info['device_count']}")
    for device in info["devices"]:
        print(
            f"  cuda:{device['index']}: {device['name']} (compute {device['capability']}, {device['memory_gib']} GiB)"
        )
    print(f"bf16 supported: {info['bf16_supported']}")
    print(f"TF32 capable: {info['tf32_capable']}")
    print(f"training precision with --precision auto: {precision_name(precision_flags('auto'))}")
    if settings.require_gpu and not info["cuda_available"]:
        print(
            "error: no CUDA GPU visible (--require-gpu); check the driver with nvidia-smi and that torch has a "
            "CUDA build",
            file=sys.stderr,
        )
        return 1
    return 0
