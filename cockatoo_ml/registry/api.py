"""Inference-server defaults for ``hypercorn app:app``. Every field can be overridden by the environment
variable named in its metadata (README, "Configuration"); ``serving_settings_from_env`` resolves them once at
start-up. The API key is a secret: it is only ever read from the environment (or ``.env``), never logged."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from cockatoo_ml.registry.paths import MODEL_DIR

ENV_PREFIX = "COCKATOO_"
# Hypercorn's own default is 3 s; a /batch on a big model can take longer, so start_api.sh passes this.
GRACEFUL_TIMEOUT_S = 30
# COCKATOO_HEADER_TIMEOUT_S: seconds to send a request line and headers (slower: 408), and to keep an idle
# connection; Hypercorn enforces it (--keep-alive, passed by start_api.sh; Hypercorn's own default is also 5).
HEADER_TIMEOUT_S = 5
DTYPES = ("auto", "float32", "bfloat16", "int8")


@dataclass(frozen=True)
class ServingSettings:
    model_dir: Path = field(
        default=MODEL_DIR,
        metadata={"env": "COCKATOO_MODEL_DIR", "help": "Model directory written by train_text.py."},
    )
    model_name: str = field(
        default="",
        metadata={"env": "COCKATOO_MODEL_NAME", "help": "Name reported by /health (default: model dir's name)."},
    )
    max_batch_texts: int = field(
        default=256,
        metadata={"env": "COCKATOO_MAX_BATCH_TEXTS", "help": "Most texts in one /batch request (more -> 413)."},
    )
    max_body_bytes: int = field(
        default=1024 * 1024,
        metadata={"env": "COCKATOO_MAX_BODY_BYTES", "help": "Largest request body in bytes (more -> 413)."},
    )
    max_text_tokens: int = field(
        default=8192,
        metadata={
            "env": "COCKATOO_MAX_TEXT_TOKENS",
            "help": "Most tokens in one text (~16 windows of 512; about 2 CPU-seconds with MiniLM); a longer "
            "text is refused with 413 naming this setting, never cut. Counted on a prefix for very long texts.",
        },
    )
    max_request_tokens: int = field(
        default=32768,
        metadata={
            "env": "COCKATOO_MAX_REQUEST_TOKENS",
            "help": "Most tokens in one request's texts together (413 naming this setting): bounds the model time "
            "one request can take (like TEI's max-batch-tokens).",
        },
    )
    max_queue_tokens: int = field(
        default=65536,
        metadata={
            "env": "COCKATOO_MAX_QUEUE_TOKENS",
            "help": "Tokens allowed to wait for the model, beside COCKATOO_MAX_QUEUE's texts; more -> 429.",
        },
    )
    body_timeout_s: float = field(
        default=10.0,
        metadata={
            "env": "COCKATOO_BODY_TIMEOUT_S",
            "help": "Seconds a client has to send its whole request body; slower bodies get 408.",
        },
    )
    micro_batch_size: int = field(
        default=32,
        metadata={
            "env": "COCKATOO_MICRO_BATCH_SIZE",
            "help": "Concurrent requests are coalesced until this many texts are waiting.",
        },
    )
    micro_batch_tokens: int = field(
        default=512,
        metadata={
            "env": "COCKATOO_MICRO_BATCH_TOKENS",
            "help": "Most padded tokens in one forward pass: caps memory on long texts; on CPU, bigger passes "
            "are not faster (measured with MiniLM).",
        },
    )
    micro_batch_wait_ms: float = field(
        default=5.0,
        metadata={
            "env": "COCKATOO_MICRO_BATCH_WAIT_MS",
            "help": "How long the first waiting request waits for others to join its batch.",
        },
    )
    max_queue_texts: int = field(
        default=1024,
        metadata={"env": "COCKATOO_MAX_QUEUE", "help": "Texts allowed to wait for the model; more -> 429."},
    )
    retry_after_s: int = field(
        default=1,
        metadata={"env": "COCKATOO_RETRY_AFTER_S", "help": "Retry-After seconds sent with a 429."},
    )
    max_window_tokens: int = field(
        default=512,
        metadata={
            "env": "COCKATOO_MAX_WINDOW_TOKENS",
            "help": "Upper bound on the window; the model's own limit applies when smaller.",
        },
    )
    window_overlap: float = field(
        default=0.25,
        metadata={
            "env": "COCKATOO_WINDOW_OVERLAP",
            "help": "Share of a window repeated in the next one when a long text is split (0 .. 0.9).",
        },
    )
    dtype: str = field(
        default="float32",
        metadata={
            "env": "COCKATOO_DTYPE",
            "help": "Weights' precision: float32 (scores as in training, and a text's scores do not depend on the "
            "texts batched with it), or opt-in faster but batch-dependent ones: bfloat16 (~2x faster on a bf16 "
            "CPU), auto (bfloat16 where the CPU/GPU computes it natively, else float32) or int8 (CPU only, "
            "lossy). Measured drift and flips: README, 'Precision'.",
        },
    )
    worker_processes: int = field(
        default=1,
        metadata={
            "env": "COCKATOO_WORKERS",
            "help": "Server processes sharing this machine's cores (start_api.sh sets it from its WORKERS argument); "
            "the automatic thread plan gives each an equal share.",
        },
    )
    model_threads: int = field(
        default=0,
        metadata={
            "env": "COCKATOO_MODEL_THREADS",
            "help": "Batches scored at once per worker, each on its own thread sharing the weights; "
            "0 = 2 (one batch computes while the next forms), 1 on a one-core machine.",
        },
    )
    torch_threads: int = field(
        default=0,
        metadata={
            "env": "COCKATOO_TORCH_THREADS",
            "help": "CPU threads inside each batch's forward pass; 0 = the worker's cores divided by "
            "COCKATOO_MODEL_THREADS.",
        },
    )
    cascade: Literal["on", "off"] = field(
        default="on",
        metadata={
            "env": "COCKATOO_CASCADE",
            "help": "on: when the model directory has a student/ (distill.py), the student answers the texts it is "
            "sure of and the transformer only the rest; off: the transformer answers every text.",
        },
    )
    api_key: str = field(
        default="",
        repr=False,
        metadata={
            "env": "COCKATOO_API_KEY",
            "help": "When set, every route but /health, /openapi.json and /docs needs 'Authorization: Bearer <key>'.",
        },
    )
    log_texts: bool = field(
        default=False,
        metadata={"env": "COCKATOO_LOG_TEXTS", "help": "Write request texts into the access log (off: privacy)."},
    )

    def __post_init__(self) -> None:
        from cockatoo_ml.errors import ConfigError

        positive = (
            "max_batch_texts", "max_body_bytes", "micro_batch_size", "micro_batch_tokens", "max_queue_texts",
            "worker_processes", "max_text_tokens", "max_request_tokens", "max_queue_tokens",
        )
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{_env_name(name)} must be at least 1, got {getattr(self, name)}")
        non_negative = ("micro_batch_wait_ms", "retry_after_s", "model_threads", "torch_threads")
        for name in non_negative:
            if getattr(self, name) < 0:
                raise ConfigError(f"{_env_name(name)} must not be negative, got {getattr(self, name)}")
        if self.body_timeout_s <= 0:
            raise ConfigError(f"COCKATOO_BODY_TIMEOUT_S must be positive, got {self.body_timeout_s}")
        if self.max_queue_tokens < self.max_request_tokens:
            raise ConfigError(
                f"COCKATOO_MAX_QUEUE_TOKENS ({self.max_queue_tokens}) is below COCKATOO_MAX_REQUEST_TOKENS "
                f"({self.max_request_tokens}): a request within budget could never be queued"
            )
        if not 0.0 <= self.window_overlap <= 0.9:
            raise ConfigError(f"COCKATOO_WINDOW_OVERLAP must be within 0 .. 0.9, got {self.window_overlap}")
        if self.dtype not in DTYPES:
            raise ConfigError(f"COCKATOO_DTYPE must be one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.max_window_tokens < 8:
            raise ConfigError(f"COCKATOO_MAX_WINDOW_TOKENS must be at least 8, got {self.max_window_tokens}")
        if self.max_queue_texts < self.max_batch_texts:
            raise ConfigError(
                f"COCKATOO_MAX_QUEUE ({self.max_queue_texts}) is below COCKATOO_MAX_BATCH_TEXTS "
                f"({self.max_batch_texts}): a full /batch could never be queued; raise the queue or lower the batch"
            )

    @property
    def display_name(self) -> str:
        return self.model_name or Path(self.model_dir).name

    def public_dict(self) -> dict[str, Any]:
        """The settings as printed at start-up: the API key is reduced to whether one is set."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_key"}
        values["api_key"] = "set" if self.api_key else "not set"
        return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def _env_name(field_name: str) -> str:
    return {f.name: f.metadata["env"] for f in dataclasses.fields(ServingSettings)}[field_name]


def serving_settings_from_env(**overrides: Any) -> ServingSettings:
    """Registry defaults, then ``COCKATOO_*`` environment variables, then ``overrides`` (tests, scripts)."""
    from pydantic import TypeAdapter, ValidationError

    from cockatoo_ml.errors import ConfigError

    values: dict[str, Any] = {}
    for spec in dataclasses.fields(ServingSettings):
        raw = os.environ.get(spec.metadata["env"], "").strip()
        if raw:
            values[spec.name] = raw
    values.update(overrides)
    try:
        # pydantic turns the environment's strings into the field types ("32" -> 32, "on" -> True).
        return TypeAdapter(ServingSettings).validate_python(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0])
        raise ConfigError(f"{_env_name(name)}={values.get(name)!r}: {first['msg']}") from None
