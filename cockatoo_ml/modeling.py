"""The classifier in a model directory: an encoder, a pooling of its token states and one logit per label.

Shared by training (builds and saves it) and serving / evaluation (load it). Two architectures:

- ``mean`` (the default): the encoder's token states averaged over the attention mask, then one linear layer.
  Sentence encoders such as all-MiniLM-L6-v2 were trained to be read this way; classifying from their [CLS]
  token through a pooler that sentence training never tuned throws that away (issue 9).
- ``cls``: the architecture's own ``AutoModelForSequenceClassification`` head (first token, pooler, linear).

The ``mean`` model is defined in ``hf_modeling/modeling_cockatoo.py``, the file ``save_pretrained`` copies into
every such directory (with ``auto_map`` in ``config.json``) so that transformers loads it with
``trust_remote_code=True``; this module only builds and loads it. ``load_classifier`` reads every kind of
directory, so the server never needs to be told which one it got: a ``cls`` checkpoint, a ``mean`` one with
``model_type: cockatoo``, and a ``mean`` one written before that file existed (the encoder's own
``config.json`` with ``cockatoo_pooling: mean``, the same weight names).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PreTrainedModel

from cockatoo_ml.hf_modeling.modeling_cockatoo import POOLING_KEY, CockatooConfig, CockatooForSequenceClassification

# The package's name for the mean-pooling classifier (a PreTrainedModel since issue 21).
MeanPoolingClassifier = CockatooForSequenceClassification
# In this process the mean model is local code, as BERT is: the Auto classes, and AutoTokenizer (which reads
# config.json first), load such a directory without trust_remote_code, and never stop to ask for it (transformers
# prompts on a terminal for 15 s) nor run the copy of the code inside it.
AutoConfig.register(CockatooConfig.model_type, CockatooConfig, exist_ok=True)
AutoModelForSequenceClassification.register(CockatooConfig, CockatooForSequenceClassification, exist_ok=True)
WEIGHTS_FILE = "model.safetensors"
Pooling = Literal["mean", "cls"]
POOLINGS: tuple[str, ...] = ("mean", "cls")


def new_classifier(
    base: str, label_names: Sequence[str], pooling: Pooling, dtype: torch.dtype = torch.float32
) -> torch.nn.Module:
    """A pretrained encoder with a fresh head for ``label_names`` (the caller seeds the head's weights)."""
    label_info: dict[str, Any] = {
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
        "problem_type": "multi_label_classification",
    }
    if pooling == "cls":
        return AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(label_names), ignore_mismatched_sizes=True, dtype=dtype, **label_info
        )
    encoder = AutoModel.from_pretrained(base, dtype=dtype)
    return MeanPoolingClassifier(CockatooConfig(encoder=encoder.config, **label_info), encoder=encoder)


def set_dropout(model: torch.nn.Module, rate: float) -> int:
    """Set every dropout layer of ``model`` (encoder, attention and head) to ``rate``; returns how many.

    The model's config keeps its own rates: only training reads these, and a served model runs in eval mode. On a
    CPU, MiniLM's dropout masks cost a third of a training step's forward pass."""
    layers = [module for module in model.modules() if isinstance(module, torch.nn.Dropout)]
    for layer in layers:
        layer.p = rate
    return len(layers)


def freeze_bottom_layers(model: torch.nn.Module, layers: int) -> tuple[int, int]:
    """Stop training the embeddings and the first ``layers`` transformer layers of ``model``'s encoder.

    Fine-tuning on a few hundred positives per label mostly needs the top layers to change; the bottom ones keep
    what pretraining taught and their backward pass and optimizer state are no longer paid for (on a CPU, three
    of MiniLM's six frozen made a public-corpus step 22% shorter, but cost validation PR-AUC: no recipe uses it).
    ``0`` freezes nothing. Returns ``(trainable, total)`` parameter counts. Raises ``ValueError`` for an encoder
    without a recognisable layer stack or with too few layers."""
    if layers < 0:
        raise ValueError(f"cannot freeze {layers} layers")
    total = sum(p.numel() for p in model.parameters())
    if layers:
        encoder: torch.nn.Module = getattr(model, "base_model", model)
        stack = _layer_stack(encoder)
        if layers > len(stack):
            raise ValueError(f"cannot freeze {layers} layers: the encoder has {len(stack)}")
        # `embeddings` holds the word, position and type embeddings (and their LayerNorm) in BERT-likes
        embeddings = getattr(encoder, "embeddings", None)
        for module in (embeddings, *stack[:layers]):
            if isinstance(module, torch.nn.Module):
                module.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad), total


def _layer_stack(encoder: torch.nn.Module) -> torch.nn.ModuleList:
    """The encoder's list of transformer layers, in order (BERT/DeBERTa ``encoder.layer``, DistilBERT
    ``transformer.layer``, ...): the ModuleList as long as ``config.num_hidden_layers``."""
    count = getattr(getattr(encoder, "config", None), "num_hidden_layers", None)
    for module in encoder.modules():
        if isinstance(module, torch.nn.ModuleList) and len(module) == count:
            return module
    raise ValueError(f"cannot find the {count} transformer layers of {type(encoder).__name__}")


def pooling_of(model_dir: Path) -> str:
    """``mean`` or ``cls``, read from ``config.json`` (a plain Hugging Face checkpoint is ``cls``)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return str(config.get(POOLING_KEY, "cls"))


def load_classifier(model_dir: Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel:
    """The classifier saved in ``model_dir`` (either architecture), in ``dtype``, in eval mode.

    Raises what ``from_pretrained`` raises (OSError, ValueError, ...) for a broken directory, OSError for an
    unreadable weights file and ValueError for weights that do not fit the config; callers turn that into their
    own error."""
    model_dir = Path(model_dir)
    pooling = pooling_of(model_dir)
    if pooling not in POOLINGS:
        raise ValueError(f"{POOLING_KEY}={pooling!r} in config.json; this version reads {', '.join(POOLINGS)}")
    try:
        if pooling == "cls":
            return AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype).eval()
        return _load_mean(model_dir, dtype)
    except SafetensorError as exc:  # safetensors' own error type, for a truncated or foreign file
        raise OSError(f"cannot read the weights in {model_dir}: {exc}") from None


def _load_mean(model_dir: Path, dtype: torch.dtype) -> PreTrainedModel:
    if not (model_dir / WEIGHTS_FILE).is_file():
        raise OSError(f"no {WEIGHTS_FILE} in {model_dir}")
    # The package's own class, not the copy in the directory: the server runs no code that a directory brings.
    model, info = MeanPoolingClassifier.from_pretrained(
        model_dir, config=_mean_config(model_dir), dtype=dtype, output_loading_info=True
    )
    wrong = {
        key: sorted(map(str, info[key]))[:3]
        for key in ("missing_keys", "unexpected_keys", "mismatched_keys")
        if info.get(key)
    }
    if wrong:  # from_pretrained only warns, and would serve a randomly initialised head or encoder
        raise ValueError(f"{model_dir / WEIGHTS_FILE} does not match its config.json ({wrong})")
    return model.eval()


def _mean_config(model_dir: Path) -> CockatooConfig:
    """The config of a mean-pooling directory, whichever version wrote it."""
    if json.loads((model_dir / "config.json").read_text()).get("model_type") == CockatooConfig.model_type:
        return CockatooConfig.from_pretrained(model_dir)
    # Written before modeling_cockatoo.py: the encoder's own config, carrying the labels.
    encoder = AutoConfig.from_pretrained(model_dir)
    return CockatooConfig(
        encoder=encoder, id2label=encoder.id2label, label2id=encoder.label2id, problem_type=encoder.problem_type
    )
