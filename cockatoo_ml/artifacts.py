"""Files in a model directory beyond what ``save_pretrained`` writes, shared by training (writer) and serving
(reader)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

THRESHOLDS_FILE = "thresholds.json"  # {label: threshold}, tuned on validation
EVAL_RESULTS_FILE = "eval_results.json"
SETTINGS_FILE = "training_settings.json"  # the resolved settings the model was trained with
MODEL_CARD = "README.md"
EVALUATION_DIR = "evaluation"  # the evaluation stage's report against the baselines, written after training
PARITY_FILE = "parity.json"  # validation texts, labels and float32 scores: the fast path's parity check
DEFAULT_THRESHOLD = 0.5


def save_thresholds(model_dir: Path, thresholds: Mapping[str, float]) -> None:
    (Path(model_dir) / THRESHOLDS_FILE).write_text(json.dumps(dict(thresholds), indent=2) + "\n")


def load_thresholds(model_dir: Path, labels: Sequence[str]) -> dict[str, float]:
    """Per-label thresholds from ``thresholds.json``; labels it does not name (or no file) get 0.5."""
    path = Path(model_dir) / THRESHOLDS_FILE
    saved: dict[str, float] = json.loads(path.read_text()) if path.is_file() else {}
    return {label: float(saved.get(label, DEFAULT_THRESHOLD)) for label in labels}
