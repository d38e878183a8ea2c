"""The transformer's fast paths against float32 on one model: texts/s of the model alone, whether a window's scores
depend on its batch-mates, and how many decisions differ from float32's.

    .venv/bin/python benchmarks/bench_fast_path.py --model-dir DIR                      # the classifier's own paths
    PYTHONPATH=SCRATCH .venv/bin/python benchmarks/bench_fast_path.py --model-dir DIR \\
        --engines float32 bucketed any-rows bf16-weights compiled ort-float32 ort-int8 openvino-bf16

Texts: the first --texts ToxicChat prompts, cut into windows once (the tokenizer's time is left out: every engine
pays it alike), scored in calls of --call-texts texts, each engine in turn for --rounds rounds (the machine is
shared: interleaved, median). Engines:

- ``float32``, ``bucketed``: ``TextClassifier`` itself, in float32 (length-sorted passes) and on the bucketed
  bfloat16 path (fixed-shape passes, bfloat16 autocast): what the server runs.
- ``any-rows``: the bucketed path without filler rows (``COCKATOO_FIXED_ROWS=off``: a pass has as many rows as
  windows wait).
- ``bf16-weights``: bucketed, with the weights cast to bfloat16 instead of autocast.
- ``compiled``: ``torch.compile`` of the bucketed path (one compilation per bucket).
- ``ort-float32``, ``ort-int8`` (dynamic quantisation, per channel), ``openvino-bf16``: the model exported to ONNX
  (torch.onnx, dynamo) on the bucketed path's shapes. ONNX Runtime, onnx, onnxscript and OpenVINO are not this
  project's dependencies: install them into a folder on PYTHONPATH to measure them.

Batch invariance: --probe windows scored alone, then among random batch-mates (batches of 4 and 32 around each,
and one of 256 holding all of them); the largest change of any score. Decisions: each text's scores (maximum over
its windows) at the model's thresholds against float32's, and the largest change of a label's PR-AUC when the
texts' ToxicChat labels name the model's labels (toxicity, jailbreaking).
"""

from __future__ import annotations

import copy
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from benchmarks.bench_serve import TOXICCHAT  # noqa: E402
from cockatoo_ml.cli import run_main  # noqa: E402
from cockatoo_ml.inference.classifier import Pass, TextClassifier, bucket_passes  # noqa: E402
from cockatoo_ml.inference.runtime import BUCKETED_BF16, FLOAT32, Precision  # noqa: E402

Windows = Sequence[tuple[int, ...]]
Scorer = Callable[[Windows], np.ndarray]  # windows -> probabilities, one row per window
Runner = Callable[[torch.Tensor, torch.Tensor], np.ndarray]  # input_ids, attention_mask -> probabilities


@dataclass
class FastPathArgs:
    model_dir: str = field(default="data/demo_model", metadata={"help": "Trained model directory."})
    texts: int = field(default=500, metadata={"help": "First N ToxicChat prompts."})
    max_window_tokens: int = field(default=128, metadata={"help": "Window cap (COCKATOO_MAX_WINDOW_TOKENS)."})
    call_texts: int = field(default=64, metadata={"help": "Texts per scoring call."})
    rounds: int = field(default=3, metadata={"help": "Timed rounds per engine, interleaved."})
    threads: int = field(default=1, metadata={"help": "Threads per forward pass (the server's plan: 1 on 2 cores)."})
    probe: int = field(default=8, metadata={"help": "Windows checked for batch invariance."})
    engines: list[str] = field(default_factory=lambda: ["float32", "bucketed"], metadata={"help": "Engines."})


def main(argv: list[str] | None = None) -> int:
    from transformers import HfArgumentParser

    (args,) = HfArgumentParser(FastPathArgs).parse_args_into_dataclasses(args=argv)
    torch.set_num_threads(args.threads)
    instances = json.loads(TOXICCHAT.read_text(encoding="utf-8"))["instances"][: args.texts]
    texts = [row["instance"] for row in instances]
    classifier = TextClassifier.load(Path(args.model_dir), dtype="float32", max_window_tokens=args.max_window_tokens)
    cut = classifier.cut(texts)
    print(f"{args.model_dir}: {len(texts)} texts, {len(cut.ids)} windows, {sum(map(len, cut.ids))} tokens")
    engines = {name: build(name, classifier) for name in args.engines}
    calls = [np.flatnonzero((cut.owner >= s) & (cut.owner < s + args.call_texts)) for s in range(0, len(texts), args.call_texts)]
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    text_scores: dict[str, np.ndarray] = {}
    for round_ in range(args.rounds):
        for name, score in engines.items():
            probs = np.empty((len(cut.ids), len(classifier.labels)))
            start = time.perf_counter()
            for call in calls:
                probs[call] = score([cut.ids[i] for i in call])
            seconds[name].append(time.perf_counter() - start)
            if round_ == 0:
                text_scores[name] = np.full((len(texts), len(classifier.labels)), -np.inf)
                np.maximum.at(text_scores[name], cut.owner, probs)
    thresholds = np.array([classifier.thresholds[label] for label in classifier.labels])
    truth = _truth(instances, classifier.labels)
    reference = text_scores.get("float32")
    print(f"\n{'engine':15} {'texts/s':>8} {'runs':>18} {'batch drift':>12} {'decisions = float32':>20} {'PR-AUC change':>14}")
    for name, score in engines.items():
        rates = [len(texts) / s for s in seconds[name]]
        agree = pr_auc = "-"
        if reference is not None:
            same = (text_scores[name] >= thresholds) == (reference >= thresholds)
            agree = f"{same.mean():.2%} ({int((~same).sum())} of {same.size})"
            if truth is not None:
                pr_auc = f"{_pr_auc_change(text_scores[name], reference, truth):.4f}"
        runs = ", ".join(f"{rate:.1f}" for rate in rates)
        drift = batch_drift(score, cut.ids, args.probe)
        print(f"{name:15} {np.median(rates):8.1f} {runs:>18} {drift:12.1e} {agree:>20} {pr_auc:>14}")
    return 0


def build(name: str, classifier: TextClassifier) -> Scorer:
    """The scorer of one engine (see the module's docstring)."""
    if name in ("float32", "bucketed", "any-rows"):
        own = copy.copy(classifier)  # shares the model; its own precision and rows
        own.precision = Precision(FLOAT32 if name == "float32" else BUCKETED_BF16, "benchmark")
        own.fixed_rows = name != "any-rows"
        return lambda windows: np.asarray([score.scores for score in own.score(list(windows))])
    if name == "bf16-weights":
        return _on_buckets(classifier, _torch_runner(copy.deepcopy(classifier.model).to(torch.bfloat16), autocast=False))
    if name == "compiled":
        scorer = _on_buckets(classifier, _torch_runner(torch.compile(classifier.model, dynamic=False), autocast=True))
        start = time.perf_counter()
        for bucket in classifier.buckets:
            scorer([tuple([classifier.pad_id] * bucket)])
        print(f"compiled: {len(classifier.buckets)} buckets in {time.perf_counter() - start:.0f} s")
        return scorer
    if name.startswith("ort-"):
        return _on_buckets(classifier, _onnx_runner(classifier, quantize=name == "ort-int8"))
    if name == "openvino-bf16":
        return _on_buckets(classifier, _openvino_runner(classifier))
    raise SystemExit(f"unknown engine {name!r}; see --help")


def _on_buckets(classifier: TextClassifier, run: Runner) -> Scorer:
    """The bucketed path's layout (``bucket_passes``) with another engine computing each pass."""

    def score(windows: Windows) -> np.ndarray:
        out = np.empty((len(windows), len(classifier.labels)))
        for one in bucket_passes([len(w) for w in windows], classifier.buckets, classifier.max_batch_tokens):
            out[one.windows] = run(*_padded(classifier, [windows[i] for i in one.windows], one))[: len(one.windows)]
        return out

    return score


def _padded(classifier: TextClassifier, batch: Windows, shape: Pass) -> tuple[torch.Tensor, torch.Tensor]:
    ids = torch.full((shape.rows, shape.width), classifier.pad_id, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for row, window in enumerate([*batch, *[classifier._empty] * (shape.rows - len(batch))]):
        ids[row, : len(window)] = torch.tensor(window)
        mask[row, : len(window)] = 1
    return ids, mask


def _torch_runner(model: torch.nn.Module, autocast: bool) -> Runner:
    @torch.inference_mode()
    def run(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            logits = model(input_ids=ids, attention_mask=mask).logits
        return torch.sigmoid(logits.float()).numpy()

    return run


class _Logits(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits


def _example(classifier: TextClassifier) -> tuple[torch.Tensor, torch.Tensor]:
    windows = [tuple(range(1000, 1000 + n)) for n in (12, 20, 32, 7)]
    return _padded(classifier, windows, Pass([], 4, 32))


def _onnx_runner(classifier: TextClassifier, quantize: bool) -> Runner:
    import onnxruntime  # not a dependency: see the module's docstring

    folder = Path(tempfile.mkdtemp(prefix="bench_fast_path_"))
    path = folder / "model.onnx"
    batch, length = torch.export.Dim("batch", max=1024), torch.export.Dim("length", min=2, max=classifier.window)
    torch.onnx.export(
        _Logits(classifier.model), _example(classifier), str(path), input_names=["input_ids", "attention_mask"],
        output_names=["logits"], dynamic_shapes=({0: batch, 1: length}, {0: batch, 1: length}), dynamo=True,
    )
    if quantize:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(str(path), str(folder / "int8.onnx"), weight_type=QuantType.QInt8, per_channel=True)
        path = folder / "int8.onnx"
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = torch.get_num_threads(), 1
    session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        logits = session.run(None, {"input_ids": ids.numpy(), "attention_mask": mask.numpy()})[0]
        return 1 / (1 + np.exp(-logits))

    return run


def _openvino_runner(classifier: TextClassifier) -> Runner:
    import openvino  # not a dependency: see the module's docstring

    converted = openvino.convert_model(_Logits(classifier.model), example_input=_example(classifier))
    compiled = openvino.Core().compile_model(
        converted, "CPU",
        {"INFERENCE_PRECISION_HINT": "bf16", "INFERENCE_NUM_THREADS": torch.get_num_threads(), "PERFORMANCE_HINT": "LATENCY"},
    )
    request = compiled.create_infer_request()

    def run(ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
        logits = np.asarray(request.infer({0: ids.numpy(), 1: mask.numpy()})[compiled.output(0)], dtype=np.float64)
        return 1 / (1 + np.exp(-logits))

    return run


def batch_drift(score: Scorer, windows: Windows, probes: int) -> float:
    """Largest change of a probe window's scores between alone and among random batch-mates."""
    rng = random.Random(0)
    chosen = rng.sample(range(len(windows)), probes)
    alone = {i: score([windows[i]])[0] for i in chosen}
    mates = range(len(windows))  # drawn with replacement: a batch of 256 from fewer windows
    batches = [[i, *rng.choices(mates, k=size - 1)] for size in (4, 32) for i in chosen]
    batches.append([*chosen, *rng.choices(mates, k=256 - probes)])
    worst = 0.0
    for batch in batches:
        rng.shuffle(batch)
        out = score([windows[i] for i in batch])
        for position, index in enumerate(batch):
            if index in alone:
                worst = max(worst, float(np.abs(out[position] - alone[index]).max()))
    return worst


def _truth(instances: list[dict], labels: Sequence[str]) -> np.ndarray | None:
    try:
        return np.array([[int(row["annotations"][label]["majority_human"]) for label in labels] for row in instances])
    except KeyError:  # the model's labels are not ToxicChat's
        return None


def _pr_auc_change(scores: np.ndarray, reference: np.ndarray, truth: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return max(
        abs(average_precision_score(truth[:, j], scores[:, j]) - average_precision_score(truth[:, j], reference[:, j]))
        for j in range(truth.shape[1])
        if 0 < truth[:, j].sum() < len(truth)
    )


if __name__ == "__main__":
    sys.exit(run_main(main))
