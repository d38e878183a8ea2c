"""How the served model uses the machine: its precision (dtype), how the cores are shared between forward
passes, and handing freed heap memory back to the operating system.

``classifier.py`` decides *what* is computed (windows, packing, scores); this module decides *how*, and holds
the measurements behind each choice.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import torch
from transformers import PreTrainedModel

from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.modeling import MeanPoolingClassifier, load_classifier

ModelT = TypeVar("ModelT", bound=torch.nn.Module)

# --- precision ---------------------------------------------------------------------------------------------------

# CPU features that compute bfloat16 matrix products in hardware: AVX512-BF16 (AMD Zen 4+, Intel Cooper Lake) and
# AMX (Intel Sapphire Rapids+) on x86, BF16 on Arm (Neoverse V1+). Elsewhere oneDNN emulates bfloat16, more slowly
# than float32.
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16", "bf16"})
CPUINFO = Path("/proc/cpuinfo")
# The computation paths a classifier can take (Precision.path, /health's precision.path).
BUCKETED_BF16 = "bucketed-bfloat16"  # fixed-shape passes under bfloat16 autocast: fast and batch-invariant
FLOAT32 = "float32"  # length-sorted passes in float32: as in training, and batch-invariant
INT8 = "int8"  # dynamic int8 quantisation: activations quantised per pass, so it depends on batch-mates


@dataclass(frozen=True)
class Precision:
    """How a classifier computes (``path``) and why it was chosen (``reason``, for the log and /health)."""

    path: str
    reason: str


def load_in_precision(model_dir: Path, dtype: str, device: torch.device) -> PreTrainedModel | MeanPoolingClassifier:
    """The classifier in ``model_dir`` with the weights the serving precision ``dtype`` needs (auto, float32,
    bfloat16, float16 or int8), still on the CPU. Raises what ``from_pretrained`` raises for a broken directory."""
    if dtype == "int8" and device.type != "cpu":
        raise ModelLoadError("COCKATOO_DTYPE=int8 (dynamic quantisation) runs on the CPU only; use auto on a GPU")
    # Loaded straight in the weights' precision: no float32 copy on the way (peak memory).
    model = load_classifier(model_dir, dtype=resolve_dtype(dtype, device))
    return quantize_int8(model) if dtype == "int8" else model


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    """The weights' dtype for a serving precision: float32 but for float16. bfloat16 (and auto) compute under
    autocast from float32 weights: matrix products in bfloat16, normalisation and softmax in float32, which keeps
    decisions closer to float32 than casting the weights (measured: docs/benchmarks.md); int8 is quantised from
    float32 after loading."""
    return torch.float16 if name == "float16" else torch.float32


def native_bf16(device: torch.device, cpuinfo: Path = CPUINFO) -> tuple[bool, str]:
    """Whether ``device`` computes bfloat16 matrix products in hardware, and a line saying why (log, /health)."""
    if device.type == "cuda":
        native = torch.cuda.is_bf16_supported(including_emulation=False)
        name = torch.cuda.get_device_name(device)
        return native, f"{name} {'computes' if native else 'does not compute'} bfloat16 natively"
    found = sorted(cpu_flags(cpuinfo) & BF16_CPU_FLAGS)
    capability = torch.backends.cpu.get_cpu_capability()  # AVX2, AVX512, ...: says nothing of bfloat16 itself
    if found:
        return True, f"the CPU has {', '.join(found)} (ATen capability {capability})"
    return False, f"the CPU lacks AVX512-BF16/AMX (ATen capability {capability}): bfloat16 would be emulated"


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo (x86 ``flags``, Arm ``Features``); empty where unreadable."""
    try:
        lines = cpuinfo.read_text(errors="replace").splitlines()
    except OSError:  # not Linux: no flags, so float32
        return frozenset()
    for line in lines:
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def quantize_int8(model: ModelT) -> ModelT:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations quantised per batch): most of
    an encoder's time is in those matrix products, and int8 kernels use the CPU's VNNI instructions."""
    import warnings

    with warnings.catch_warnings():  # torch announces quantised tensors' move to torchao; the API still works
        warnings.simplefilter("ignore")
        # A copy of the same class with its linear layers swapped for quantised ones.
        return cast(ModelT, torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8))


def precision_of(model: torch.nn.Module) -> str:
    """The precision a model computes in, as ``dtype`` names it: int8 once quantised, else its weights' dtype."""
    if any(type(module).__module__.startswith("torch.ao.nn.quantized") for module in model.modules()):
        return "int8"
    return str(next(model.parameters()).dtype).removeprefix("torch.")


# --- threads -----------------------------------------------------------------------------------------------------


def thread_plan(model_threads: int = 0, torch_threads: int = 0, processes: int = 1) -> tuple[int, int]:
    """(forward passes run at once, torch threads inside each) for this process's share of the cores when
    ``processes`` server processes share them; 0 means automatic.

    Two passes at once by default: on a CPU one forward pass of a small encoder cannot keep two cores busy
    (MiniLM int8 on 2 cores: 2 passes x 1 thread scored 1.24x the texts/s of 1 pass x 2 threads)."""
    machine = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    cores = max(1, machine // max(1, processes))
    batches = model_threads or (2 if cores >= 2 else 1)
    return batches, torch_threads or max(1, cores // batches)


# --- memory ------------------------------------------------------------------------------------------------------


class HeapTrimmer:
    """Hands freed heap memory back to the operating system, at most once every ``interval_s`` seconds.

    Passes over texts of every length allocate and free activations of every size; glibc keeps the freed
    memory, fragmented, and the server's resident memory crept up by ~100 MB under /predict traffic (MiniLM,
    bfloat16: peak 734-746 MB). ``malloc_trim`` after a batch, at most every 0.1 s, kept the peak at 667-681 MB
    with no measurable loss of texts/s (one call takes 2-8 ms, on a model thread, not the event loop). A no-op
    where the C library has no ``malloc_trim``."""

    def __init__(self, interval_s: float = 0.1, trim: Callable[[int], int] | None = None) -> None:
        self.interval_s = interval_s
        self._trim = trim if trim is not None else _malloc_trim()
        self._last = float("-inf")
        self._lock = threading.Lock()

    @property
    def available(self) -> bool:
        return self._trim is not None

    def __call__(self) -> None:
        if self._trim is None:
            return
        with self._lock:  # two scoring threads finishing together need only one trim
            now = time.monotonic()
            if now - self._last < self.interval_s:
                return
            self._last = now
        self._trim(0)


def _malloc_trim() -> Callable[[int], int] | None:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None
