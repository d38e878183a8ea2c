"""Inference-server settings for ``hypercorn app:app`` (and ``start_api.sh``): environment variables only, read
once at start-up (docs/configuration.md). The API key is a secret: never logged, never in a file but ``.env``."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cockatoo_ml.errors import ConfigError
from cockatoo_ml.registry.distillation import TFIDF_CACHED_WORD_CHARS, TFIDF_WORD_CACHE_MB
from cockatoo_ml.registry.paths import MODEL_DIR_SETTING
from cockatoo_ml.settings import env_name, from_env, setting

# Scoring windows: also TextClassifier.load's defaults (tests, benchmarks, other stages load models directly).
MAX_WINDOW_TOKENS = 512
WINDOW_OVERLAP = 0.25
MICRO_BATCH_TOKENS = 512
# Padded lengths of the batch-invariant fast path (the model's window is always the last one): a window's pass
# has the same shape whoever its batch-mates are. Powers of two from 16: padding stays under half a window.
BUCKET_TOKENS = (16, 32, 64, 128, 256, 512)
FIXED_ROWS = False  # see ServingSettings.fixed_rows


def _token_list(raw: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in raw.replace(" ", "").split(",") if part)
    except ValueError:
        values = ()
    if not values or min(values) < 1:
        raise ValueError("expected positive whole numbers of tokens, comma-separated (16,32,64,128)")
    return tuple(sorted(set(values)))


# OpenAI's moderation categories and model names, spelled as its API and official SDK spell them
# (openai-python: types/moderation.py, types/moderation_model.py).
OPENAI_CATEGORIES = (
    "harassment", "harassment/threatening", "hate", "hate/threatening", "illicit", "illicit/violent", "self-harm",
    "self-harm/instructions", "self-harm/intent", "sexual", "sexual/minors", "violence", "violence/graphic",
)  # fmt: skip
OPENAI_MODERATION_MODELS = (
    "omni-moderation-latest", "omni-moderation-2024-09-26", "text-moderation-latest", "text-moderation-stable",
)  # fmt: skip
# Our labels' OpenAI counterparts. scam has none: OpenAI's `illicit` is advice on how to do wrong ("how to
# shoplift"), not a fraud aimed at the reader, so answering `illicit` from scam would flag phishing SMS as illicit
# and score "how do I make a weapon" near 0 there. unsafe has none either: it is what `flagged` means.
DEFAULT_OPENAI_CATEGORIES = ("nsfw=sexual", "harassment=harassment", "violence=violence")


@dataclass(frozen=True)
class ServingSettings:
    model_dir: Path = MODEL_DIR_SETTING.field()
    model_name: str = setting(
        "", env="COCKATOO_MODEL_NAME", flag=False, help="Name reported by /health (default: model dir's name)."
    )
    max_batch_texts: int = setting(
        256,
        env="COCKATOO_MAX_BATCH_TEXTS",
        flag=False,
        ge=1,
        help="Most texts in one /batch or /v1/moderations request (more -> 413).",
    )
    max_body_bytes: int = setting(
        1024 * 1024,
        env="COCKATOO_MAX_BODY_BYTES",
        flag=False,
        ge=1,
        help="Largest request body in bytes (more -> 413).",
    )
    max_text_tokens: int = setting(
        8192,
        env="COCKATOO_MAX_TEXT_TOKENS",
        flag=False,
        ge=1,
        help="Most tokens in one text (~16 windows of 512; about 2 CPU-seconds with MiniLM); a longer text is refused "
        "with 413 naming this setting, never cut. Counted on a prefix for very long texts.",
    )
    max_request_tokens: int = setting(
        32768,
        env="COCKATOO_MAX_REQUEST_TOKENS",
        flag=False,
        ge=1,
        help="Most tokens in one request's texts together (413 naming this setting): bounds the model time one "
        "request can take (like TEI's max-batch-tokens).",
    )
    max_queue_tokens: int = setting(
        65536,
        env="COCKATOO_MAX_QUEUE_TOKENS",
        flag=False,
        ge=1,
        help="Tokens allowed to wait for the model, beside COCKATOO_MAX_QUEUE's texts; more -> 429.",
    )
    body_timeout_s: float = setting(
        10.0,
        env="COCKATOO_BODY_TIMEOUT_S",
        flag=False,
        gt=0,
        help="Seconds a client has to send its whole request body; slower bodies get 408.",
    )
    micro_batch_size: int = setting(
        32,
        env="COCKATOO_MICRO_BATCH_SIZE",
        flag=False,
        ge=1,
        help="Concurrent requests are coalesced until this many texts are waiting.",
    )
    micro_batch_tokens: int = setting(
        MICRO_BATCH_TOKENS,
        env="COCKATOO_MICRO_BATCH_TOKENS",
        flag=False,
        ge=1,
        help="Most padded tokens in one forward pass: caps memory on long texts; on CPU, bigger passes are not "
        "faster (measured with MiniLM). On the bucketed path it also fixes each pass's shape: max(1, this // bucket) "
        "rows of one bucket's length, filled up with empty windows.",
    )
    micro_batch_wait_ms: float = setting(
        5.0,
        env="COCKATOO_MICRO_BATCH_WAIT_MS",
        flag=False,
        ge=0,
        help="How long the first waiting request waits for others to join its batch.",
    )
    max_queue_texts: int = setting(
        1024, env="COCKATOO_MAX_QUEUE", flag=False, ge=1, help="Texts allowed to wait for the model; more -> 429."
    )
    retry_after_s: int = setting(
        1, env="COCKATOO_RETRY_AFTER_S", flag=False, ge=0, help="Retry-After seconds sent with a 429."
    )
    max_window_tokens: int = setting(
        MAX_WINDOW_TOKENS,
        env="COCKATOO_MAX_WINDOW_TOKENS",
        flag=False,
        ge=8,
        help="Upper bound on the window; the model's own limit applies when smaller.",
    )
    window_overlap: float = setting(
        WINDOW_OVERLAP,
        env="COCKATOO_WINDOW_OVERLAP",
        flag=False,
        ge=0,
        le=0.9,
        help="Share of a window repeated in the next one when a long text is split (0 .. 0.9).",
    )
    dtype: Literal["auto", "float32", "bfloat16", "int8"] = setting(
        "auto",
        env="COCKATOO_DTYPE",
        flag=False,
        help="Precision. auto: the bucketed bfloat16 path where the CPU (AVX512-BF16/AMX) or GPU computes bfloat16 "
        "natively and the model directory's parity sample (parity.json) shows it agrees with float32, else float32 "
        "(the reason is logged and on /health). float32: scores exactly as in training. bfloat16: the bucketed path "
        "without the check. int8: CPU only, lossy, and a text's scores depend on its batch-mates. Every path but "
        "int8 gives a text the same scores whatever it is batched with.",
    )
    bucket_tokens: tuple[int, ...] = setting(
        BUCKET_TOKENS,
        env="COCKATOO_BUCKET_TOKENS",
        flag=False,
        convert=_token_list,
        help="Padded lengths of the bucketed path, comma-separated: each window is padded to the smallest that holds "
        "it (the model's window is always the last), so its pass never depends on other texts' lengths.",
    )
    fixed_rows: bool = setting(
        FIXED_ROWS,
        env="COCKATOO_FIXED_ROWS",
        flag=False,
        help="On the bucketed path, fill every pass up to its full row count with empty windows, so that its shape "
        "never depends on how many windows wait. Off by default: on a CPU the row count moved a score by at most "
        "6e-8 (the batch-invariance tests hold either way), and padding a lone /predict text to a full pass made "
        "16-client /predict 0.5-0.7x the naive server's texts/s. Turn it on for a GPU, which may pick other kernels "
        "for other row counts.",
    )
    worker_processes: int = setting(
        1,
        env="COCKATOO_WORKERS",
        flag=False,
        ge=1,
        help="Server processes sharing this machine's cores (start_api.sh sets it from its WORKERS argument); the "
        "automatic thread plan gives each an equal share.",
    )
    model_threads: int = setting(
        0,
        env="COCKATOO_MODEL_THREADS",
        flag=False,
        ge=0,
        help="Batches scored at once per worker, each on its own thread sharing the weights; 0 = 2 (one batch "
        "computes while the next forms), 1 on a one-core machine.",
    )
    torch_threads: int = setting(
        0,
        env="COCKATOO_TORCH_THREADS",
        flag=False,
        ge=0,
        help="CPU threads inside each batch's forward pass; 0 = the worker's cores divided by COCKATOO_MODEL_THREADS.",
    )
    cascade: Literal["on", "off"] = setting(
        "on",
        env="COCKATOO_CASCADE",
        flag=False,
        help="on: when the model directory has a student/ (distill.py), the student answers the windows of a text "
        "it is sure of and the transformer only the rest; off: the transformer answers every text.",
    )
    student_word_cache_mb: int = setting(
        TFIDF_WORD_CACHE_MB,
        env="COCKATOO_STUDENT_WORD_CACHE_MB",
        flag=False,
        ge=0,
        help="Memory (MiB) a TF-IDF student may keep for its cache of words' character n-grams (most words of a "
        f"stream recur; ~400 bytes a word); words over {TFIDF_CACHED_WORD_CHARS} characters "
        "are never cached. 0: no cache.",
    )
    api_key: str = setting(
        "",
        env="COCKATOO_API_KEY",
        flag=False,
        secret=True,
        help="When set, every route but /health, /openapi.json and /docs needs 'Authorization: Bearer <key>'.",
    )
    openai_categories: tuple[str, ...] = setting(
        DEFAULT_OPENAI_CATEGORIES,
        env="COCKATOO_OPENAI_CATEGORIES",
        flag=False,
        help="/v1/moderations: label=category pairs, comma-separated: the OpenAI moderation category (harassment, "
        "hate, illicit, self-harm, sexual, violence, ... with OpenAI's spelling) a label also answers as, beside its "
        "own name. A label may have several; several labels on one category: its score is their maximum. Pairs "
        "for labels the model lacks are left out; a label without a pair (scam, unsafe) keeps only its own name.",
    )
    openai_models: tuple[str, ...] = setting(
        OPENAI_MODERATION_MODELS,
        env="COCKATOO_OPENAI_MODELS",
        flag=False,
        help="/v1/moderations: `model` names the served model answers to besides its own name (COCKATOO_MODEL_NAME), "
        "so a client that names OpenAI's model moves unchanged; any other name is a 400. Set it to the served "
        "name alone to accept only that.",
    )
    log_texts: bool = setting(
        False, env="COCKATOO_LOG_TEXTS", flag=False, help="Write request texts into the access log (off: privacy)."
    )
    # Hypercorn's own default is 3 s; a /batch on a big model can take longer. start_api.sh passes it to Hypercorn.
    graceful_timeout_s: int = setting(
        30,
        env="COCKATOO_GRACEFUL_TIMEOUT",
        flag=False,
        ge=0,
        help="Whole seconds start_api.sh lets in-flight requests finish after SIGTERM.",
    )

    # Hypercorn enforces it (--keep-alive, which start_api.sh passes): its keep-alive timer runs from a connection's
    # start (or its previous answer) until a request's headers are complete, so it also ends trickled headers (408).
    header_timeout_s: int = setting(
        5,
        env="COCKATOO_HEADER_TIMEOUT_S",
        flag=False,
        ge=1,
        help="Whole seconds a client has to send its request line and headers (slower: 408), and an idle "
        "keep-alive connection stays open; start_api.sh passes it as Hypercorn's --keep-alive (with plain "
        "`hypercorn app:app`, pass --keep-alive yourself).",
    )

    def __post_init__(self) -> None:
        self.category_map()  # a malformed COCKATOO_OPENAI_CATEGORIES stops start-up with one line
        for queue, item in (("max_queue_tokens", "max_request_tokens"), ("max_queue_texts", "max_batch_texts")):
            if getattr(self, queue) < getattr(self, item):
                raise ConfigError(
                    f"{env_name(ServingSettings, queue)} ({getattr(self, queue)}) is below "
                    f"{env_name(ServingSettings, item)} ({getattr(self, item)}): a request within that limit could "
                    "never be queued; raise the first or lower the second"
                )

    def category_map(self) -> dict[str, tuple[str, ...]]:
        """COCKATOO_OPENAI_CATEGORIES as {label: its OpenAI categories}, or a ConfigError naming the bad pair."""
        variable = env_name(ServingSettings, "openai_categories")
        found: dict[str, tuple[str, ...]] = {}
        for pair in self.openai_categories:
            label, equals, category = (part.strip() for part in pair.partition("="))
            if not equals or not label:
                raise ConfigError(f"{variable}: {pair!r} is not label=category (e.g. nsfw=sexual); fix or unset it")
            if category not in OPENAI_CATEGORIES:
                raise ConfigError(
                    f"{variable}: {category!r} (for {label}) is not an OpenAI moderation category; use one of "
                    f"{', '.join(OPENAI_CATEGORIES)}"
                )
            if category not in found.get(label, ()):
                found[label] = (*found.get(label, ()), category)
        return found

    @property
    def display_name(self) -> str:
        return self.model_name or Path(self.model_dir).name

    def public_dict(self) -> dict[str, Any]:
        """The settings as printed at start-up: the API key is reduced to whether one is set."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "api_key"}
        values["api_key"] = "set" if self.api_key else "not set"
        return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


def serving_settings_from_env(**overrides: Any) -> ServingSettings:
    """Registry defaults, then ``COCKATOO_*`` environment variables, then ``overrides`` (tests, other stages)."""
    return from_env(ServingSettings, **overrides)
