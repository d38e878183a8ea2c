"""Cockatoo's mean-pooling text classifier, written the way Hugging Face ships a custom architecture.

An encoder (any ``AutoModel``: BERT, DeBERTa, ...) reads the text; the head averages the encoder's token states
over the attention mask and applies one linear layer, one logit per label (scored with a sigmoid each).
Sentence encoders such as all-MiniLM-L6-v2 were trained to be read this way; the architectures' own
``*ForSequenceClassification`` heads read the first token through a pooler that sentence training never tuned.

``save_pretrained`` copies this file, unchanged, into the model directory and names its two classes in
``config.json`` (``auto_map``), so anyone can load the directory without the project that trained it::

    AutoModelForSequenceClassification.from_pretrained(DIR, trust_remote_code=True)
    pipeline("text-classification", model=DIR, trust_remote_code=True, top_k=None, function_to_apply="sigmoid")

So this module imports nothing but torch and transformers. Its ``model_type`` is one that transformers does not
know: without ``trust_remote_code`` loading stops with transformers' request for it, instead of building the
bare encoder under a randomly initialised head.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import AutoConfig, AutoModel, PretrainedConfig, PreTrainedModel
from transformers.modeling_outputs import SequenceClassifierOutput

POOLING_KEY = "cockatoo_pooling"  # also read from config.json by loaders that know no model_type "cockatoo"


class CockatooConfig(PretrainedConfig):
    """The labels and pooling of the head, with the encoder's own configuration nested under ``encoder``."""

    model_type = "cockatoo"
    sub_configs = {"encoder": AutoConfig}  # noqa: RUF012 (transformers reads it from the class)

    def __init__(
        self,
        encoder: PretrainedConfig | dict[str, Any] | None = None,
        cockatoo_pooling: str = "mean",
        classifier_dropout: float | None = None,
        **kwargs: Any,
    ) -> None:
        # First: the base class sets the attention implementation on every sub-config it finds, None unless asked.
        super().__init__(**kwargs)
        if isinstance(encoder, dict):  # as read back from config.json
            fields = dict(encoder)
            encoder = AutoConfig.for_model(fields.pop("model_type"), **fields)
        self.encoder: PretrainedConfig | None = encoder
        self.cockatoo_pooling = cockatoo_pooling
        self.classifier_dropout = classifier_dropout


class CockatooForSequenceClassification(PreTrainedModel):
    """Encoder -> mean of the unmasked token states -> dropout -> linear layer (one logit per label)."""

    config_class = CockatooConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"

    def __init__(self, config: CockatooConfig, encoder: PreTrainedModel | None = None) -> None:
        super().__init__(config)
        if config.encoder is None:
            raise ValueError("CockatooConfig has no encoder: pass the encoder's config as encoder=...")
        if config.cockatoo_pooling != "mean":
            raise ValueError(f"{POOLING_KEY}={config.cockatoo_pooling!r}: this class pools by the mean only")
        # `encoder`: an already loaded pretrained encoder (training starts from one); else built from the config and
        # filled by from_pretrained.
        if encoder is None:
            encoder = AutoModel.from_config(config.encoder)
        else:
            config.encoder = encoder.config  # one object: what is saved is what the encoder runs with
        self.encoder = encoder
        if getattr(self.encoder, "pooler", None) is not None:
            # BERT-likes carry a [CLS] pooler the mean never reads: fewer weights, and none without gradients in
            # distributed training. Their forward skips a pooler that is None.
            self.encoder.pooler = None
        rate = config.classifier_dropout
        if rate is None:
            rate = getattr(config.encoder, "hidden_dropout_prob", 0.1)
        self.dropout = torch.nn.Dropout(float(rate or 0.0))
        self.classifier = torch.nn.Linear(config.encoder.hidden_size, config.num_labels)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        # The encoder initialises its own modules; the head starts as torch's default Linear (training replaces it
        # with a fitted linear probe).
        if module is self.classifier:
            module.reset_parameters()

    def pooled(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None, **inputs: Any
    ) -> torch.Tensor:
        """The text's representation the head reads: the mean of its token states, padding left out."""
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **inputs).last_hidden_state
        return mean_pool(states, attention_mask)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        **_: Any,
    ) -> SequenceClassifierOutput:
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        features = self.pooled(input_ids, attention_mask, **extra)
        weight = getattr(self.classifier, "weight", None)  # a method once quantised to int8
        if isinstance(weight, torch.Tensor):
            features = features.to(weight.dtype)
        logits = self.classifier(self.dropout(features))
        loss = None
        if labels is not None:  # the usual multi-label loss, for whoever fine-tunes further with a plain Trainer
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
        return SequenceClassifierOutput(loss=loss, logits=logits)


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of ``states`` over the positions where ``attention_mask`` is 1."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


# save_pretrained then copies this file into the directory and writes auto_map into config.json.
CockatooConfig.register_for_auto_class()
CockatooForSequenceClassification.register_for_auto_class("AutoModelForSequenceClassification")
