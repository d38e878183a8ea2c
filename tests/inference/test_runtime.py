"""How the served model uses the machine: precision (native bfloat16, weights, int8), the thread plan and the heap
trimmer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.inference.classifier import TextClassifier
from cockatoo_ml.inference.runtime import (
    BUCKETED_BF16,
    FLOAT32,
    INT8,
    HeapTrimmer,
    cpu_flags,
    load_in_precision,
    native_bf16,
    precision_of,
    resolve_dtype,
    thread_plan,
)

TEXTS = [
    "hi",
    "Send 0.5 BTC to this wallet and we will double it within one hour guaranteed",
    "What time does the library open on Saturday?",
    "you are a worthless idiot and everyone hates you, " * 3,
]
CPU = torch.device("cpu")


@pytest.mark.parametrize(
    ("cpuinfo", "native", "named"),
    [
        ("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_bf16 avx512_vnni\n", True, "avx512_bf16"),
        ("processor : 0\nflags : fpu sse2 avx2 avx512f amx_bf16 amx_tile\n", True, "amx_bf16"),
        ("processor : 0\nFeatures : fp asimd sve bf16 i8mm\n", True, "bf16"),  # Arm (Neoverse V1+)
        ("processor : 0\nflags : fpu sse2 avx2 avx512f avx512_vnni\n", False, "lacks AVX512-BF16/AMX"),
        ("", False, "lacks AVX512-BF16/AMX"),
    ],
)
def test_native_bfloat16_is_read_off_the_cpu_flags(tmp_path: Path, cpuinfo: str, native: bool, named: str) -> None:
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo)
    found, why = native_bf16(CPU, path)
    assert found is native and named in why
    assert torch.backends.cpu.get_cpu_capability() in why  # the reason names what ATen sees too


def test_a_machine_without_proc_cpuinfo_has_no_native_bfloat16(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "absent") == frozenset()
    assert native_bf16(CPU, tmp_path / "absent")[0] is False


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("float32", torch.float32),
        ("auto", torch.float32),  # autocast computes in bfloat16 from float32 weights
        ("bfloat16", torch.float32),
        ("float16", torch.float16),
        ("int8", torch.float32),  # quantised after loading
    ],
)
def test_the_weights_load_in_float32_but_for_float16(name: str, expected: torch.dtype) -> None:
    assert resolve_dtype(name, CPU) == expected


def test_bfloat16_is_the_bucketed_path_and_float32_the_length_sorted_one(
    tiny_model_dir: Path, tiny_classifier: TextClassifier
) -> None:
    fast = TextClassifier.load(tiny_model_dir, dtype="bfloat16")
    assert (fast.precision.path, fast.dtype, fast.bucketed) == (BUCKETED_BF16, "bfloat16", True)
    assert precision_of(fast.model) == "float32"  # weights stay float32: autocast casts per matrix product
    assert (tiny_classifier.precision.path, tiny_classifier.dtype, tiny_classifier.bucketed) == (FLOAT32, "float32", False)
    for got, exact in zip(fast.score(TEXTS), tiny_classifier.score(TEXTS)):
        np.testing.assert_allclose(got.scores, exact.scores, atol=2e-2)


def test_load_in_precision_gives_the_named_precision(tiny_model_dir: Path) -> None:
    for name, weights in (("float32", "float32"), ("bfloat16", "float32"), ("float16", "float16"), ("int8", "int8")):
        assert precision_of(load_in_precision(tiny_model_dir, name, CPU)) == weights


def test_int8_off_the_cpu_is_one_clear_error_before_any_loading(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="int8 .* runs on the CPU only; use auto on a GPU"):
        load_in_precision(tmp_path / "never_read", "int8", torch.device("cuda"))


@pytest.mark.parametrize("head", ["cls", "mean"])
def test_int8_quantises_linear_layers_and_keeps_scores_close(
    tiny_model_dir: Path, tiny_mean_model_dir: Path, head: str
) -> None:
    model_dir = tiny_mean_model_dir if head == "mean" else tiny_model_dir
    quantized = TextClassifier.load(model_dir, dtype="int8")
    assert quantized.dtype == "int8" and quantized.precision.path == INT8 and not quantized.bucketed
    assert not any(isinstance(module, torch.nn.Linear) for module in quantized.model.modules())
    for fast, exact in zip(quantized.score(TEXTS), TextClassifier.load(model_dir, dtype="float32").score(TEXTS)):
        np.testing.assert_allclose(fast.scores, exact.scores, atol=2e-2)


@pytest.mark.parametrize(
    ("cores", "model_threads", "torch_threads", "processes", "expected"),
    [
        (2, 0, 0, 1, (2, 1)),  # two batches at once, one core each
        (16, 0, 0, 1, (2, 8)),
        (1, 0, 0, 1, (1, 1)),
        (8, 4, 0, 1, (4, 2)),
        (8, 0, 3, 1, (2, 3)),  # explicit settings win
        (2, 3, 0, 1, (3, 1)),  # never below one thread per batch
        (8, 0, 0, 2, (2, 2)),  # two worker processes: four cores each
        (2, 0, 0, 2, (1, 1)),  # one core each: one pass
        (4, 0, 0, 8, (1, 1)),  # more processes than cores
    ],
)
def test_thread_plan_shares_the_cores_between_batches(
    monkeypatch: pytest.MonkeyPatch, cores: int, model_threads: int, torch_threads: int, processes: int,
    expected: tuple[int, int],
) -> None:
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(cores)))
    assert thread_plan(model_threads, torch_threads, processes) == expected


def test_heap_trimmer_trims_at_most_once_per_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    clock = iter([100.0, 100.2, 100.6, 100.7, 101.2])
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    trimmer = HeapTrimmer(interval_s=0.5, trim=lambda pad: calls.append(pad) or 1)
    for _ in range(5):
        trimmer()
    assert calls == [0, 0, 0]  # at 100.0, 100.6 and 101.2


def test_heap_trimmer_finds_malloc_trim_on_glibc() -> None:
    trimmer = HeapTrimmer(interval_s=0.0)
    assert trimmer.available  # Linux with glibc, as this project's machines
    trimmer()  # and calling it is harmless
