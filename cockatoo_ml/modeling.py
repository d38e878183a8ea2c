"""The classifier in a model directory: an encoder, a pooling of its token states and one logit per label.

Shared by training (builds and saves it) and serving / evaluation (load it). Two architectures:

- ``mean`` (the default): the encoder's token states averaged over the attention mask, then one linear layer.
  Sentence encoders such as all-MiniLM-L6-v2 were trained to be read this way; classifying from their [CLS]
  token through a pooler that sentence training never tuned throws that away (issue 9).
- ``cls``: the architecture's own ``AutoModelForSequenceClassification`` head (first token, pooler, linear).

A ``mean`` model directory holds the encoder's ``config.json`` (with ``id2label``, ``problem_type`` and
``cockatoo_pooling``) and one ``model.safetensors`` with the encoder and the head; ``load_classifier`` reads
both kinds, so the server never needs to be told which one it got.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoConfig, AutoModel, AutoModelForSequenceClassification, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

POOLING_KEY = "cockatoo_pooling"  # in config.json; absent in a plain Hugging Face checkpoint
WEIGHTS_FILE = "model.safetensors"
Pooling = Literal["mean", "cls"]
POOLINGS: tuple[str, ...] = ("mean", "cls")


class MeanPoolingClassifier(torch.nn.Module):
    """Encoder -> mean of the unmasked token states -> dropout -> linear layer (one logit per label)."""

    main_input_name = "input_ids"

    def __init__(self, encoder: torch.nn.Module, num_labels: int, dropout: float | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        config: PretrainedConfig = encoder.config
        config.num_labels = num_labels
        setattr(config, POOLING_KEY, "mean")
        self.config = config
        rate = dropout if dropout is not None else getattr(config, "hidden_dropout_prob", 0.1)
        self.dropout = torch.nn.Dropout(float(rate or 0.0))
        self.classifier = torch.nn.Linear(config.hidden_size, num_labels)

    @property
    def dtype(self) -> torch.dtype:
        return self.classifier.weight.dtype

    def pooled(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **inputs: Any) -> torch.Tensor:
        """The text's representation the head reads: mean of its token states (padding left out)."""
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return mean_pool(states, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        features = self.pooled(input_ids, attention_mask, **extra)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(features.to(self.classifier.weight.dtype))))

    def save_pretrained(self, folder: str | Path, **_: Any) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.config.save_pretrained(folder)
        # contiguous copies: safetensors refuses shared or strided storage
        save_file(
            {k: v.detach().contiguous() for k, v in self.state_dict().items()},
            str(folder / WEIGHTS_FILE),
            metadata={"format": "pt"},
        )


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def new_classifier(
    base: str, label_names: Sequence[str], pooling: Pooling, dtype: torch.dtype = torch.float32
) -> torch.nn.Module:
    """A pretrained encoder with a fresh head for ``label_names`` (the caller seeds the head's weights)."""
    label_info = {
        "id2label": dict(enumerate(label_names)),
        "label2id": {name: i for i, name in enumerate(label_names)},
        "problem_type": "multi_label_classification",
    }
    if pooling == "cls":
        return AutoModelForSequenceClassification.from_pretrained(
            base, num_labels=len(label_names), ignore_mismatched_sizes=True, dtype=dtype, **label_info
        )
    config = AutoConfig.from_pretrained(base, num_labels=len(label_names), **label_info)
    encoder = _without_pooler(AutoModel.from_pretrained(base, config=config, dtype=dtype))
    return MeanPoolingClassifier(encoder, len(label_names))


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
        encoder: torch.nn.Module = (
            model.encoder if isinstance(model, MeanPoolingClassifier) else getattr(model, "base_model", model)
        )
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


def _without_pooler(encoder: PreTrainedModel) -> PreTrainedModel:
    # BERT-like encoders carry a [CLS] pooler that mean pooling never reads: drop it (fewer weights, and no
    # parameters without gradients in distributed training). Their forward skips a pooler that is None.
    if getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None
    return encoder


def pooling_of(model_dir: Path) -> str:
    """``mean`` or ``cls``, read from ``config.json`` (a plain Hugging Face checkpoint is ``cls``)."""
    config = json.loads((Path(model_dir) / "config.json").read_text())
    return str(config.get(POOLING_KEY, "cls"))


def load_classifier(model_dir: Path, dtype: torch.dtype = torch.float32) -> PreTrainedModel | MeanPoolingClassifier:
    """The classifier saved in ``model_dir`` (either architecture), in ``dtype``, in eval mode.

    Raises what ``from_pretrained`` raises (OSError, ValueError, ...) for a broken directory; callers turn that
    into their own error."""
    model_dir = Path(model_dir)
    pooling = pooling_of(model_dir)
    if pooling == "cls":
        return AutoModelForSequenceClassification.from_pretrained(model_dir, dtype=dtype).eval()
    if pooling != "mean":
        raise ValueError(f"{POOLING_KEY}={pooling!r} in config.json; this version reads {', '.join(POOLINGS)}")
    config = AutoConfig.from_pretrained(model_dir)
    encoder = _without_pooler(AutoModel.from_config(config))
    model = MeanPoolingClassifier(encoder, config.num_labels)
    weights = model_dir / WEIGHTS_FILE
    if not weights.is_file():
        raise OSError(f"no {WEIGHTS_FILE} in {model_dir}")
    try:
        state = load_file(str(weights))
    except Exception as exc:  # safetensors raises its own error type for a truncated or foreign file
        raise OSError(f"cannot read {weights}: {exc}") from None
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise ValueError(
            f"{weights} does not match its config.json (missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    return model.to(dtype).eval()
