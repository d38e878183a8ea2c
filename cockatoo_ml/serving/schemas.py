"""Request and response bodies of the inference API (pydantic; published as OpenAPI by quart-schema).

Shapes follow the seed project's API so existing clients keep working; ``windows`` is new. Numbers are strict:
``"0.5"`` or ``true`` is not a threshold.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

from cockatoo_ml.inference.texts import TEXT_RULES, VISIBLE_CHARACTER, text_problem

Probability = Annotated[float, Field(strict=True, ge=0.0, le=1.0, allow_inf_nan=False)]

# Tags name the two shapes of a threshold; they appear in pydantic error locations and are dropped when a
# field is named to the client (see ``THRESHOLD_TAGS``).
THRESHOLD_TAGS = ("number", "map")


def _threshold_shape(value: object) -> str:
    return "map" if isinstance(value, dict) else "number"


Threshold = Annotated[
    Annotated[Probability, Tag("number")] | Annotated[dict[str, Probability], Tag("map")],
    Discriminator(_threshold_shape),
]

THRESHOLD_HELP = (
    "A number in [0, 1] for every label, a {label: number} map (other labels keep their tuned threshold), "
    "or null/absent for the per-label thresholds saved with the model (0.5 where none was saved)."
)


def _require_content(text: str) -> str:
    """Runs at validation time (C-speed string operations), so a text that cannot be scored never reaches the
    micro-batch where it would fail its batch-mates."""
    problem = text_problem(text)
    if problem is not None:
        raise PydanticCustomError(problem.kind, problem.template, problem.context)
    return text


# Checked per item, so one bad text in a batch is named by its index (texts.3). The JSON schema states what the
# validator enforces: a character that is not whitespace, Cc or Cf (the lone-surrogate rule is in the description).
Text = Annotated[
    str,
    Field(strict=True, json_schema_extra={"minLength": 1, "pattern": VISIBLE_CHARACTER}),
    AfterValidator(_require_content),
]


class PredictRequest(BaseModel):
    text: Text = Field(
        description="Text to classify. Longer texts than the model's window are scored in windows. " + TEXT_RULES
    )
    threshold: Threshold | None = Field(default=None, description=THRESHOLD_HELP)


class BatchRequest(BaseModel):
    texts: list[Text] = Field(
        min_length=1, description="Texts to classify; results come back in this order. Each text: " + TEXT_RULES
    )
    threshold: Threshold | None = Field(default=None, description=THRESHOLD_HELP)


class Prediction(BaseModel):
    text: str
    predictions: dict[str, float] = Field(description="Every label's score (probability), rounded to 4 places.")
    positive_labels: list[str] = Field(description="Labels whose score reaches its threshold.")
    flagged: bool = Field(
        description="Whether a moderation system should flag the text: any label (unsafe included, where the model "
        "has it) reaches its threshold."
    )
    top_label: str | None
    max_score: float | None
    windows: int = Field(description="Overlapping windows the text was scored in (1 unless it was long).")
    tier: Literal["student", "model"] = Field(
        description="Who answered: the cascade's cheap student (sure of every label) or the transformer."
    )
    error: None = None


class BatchResponse(BaseModel):
    count: int
    results: list[Prediction]


class CascadeHealth(BaseModel):
    enabled: bool = Field(description="Whether a student answers the texts it is sure of (COCKATOO_CASCADE).")
    student: str | None = Field(default=None, description="The student's kind (static, tfidf).")
    held_out_agreement: float | None = Field(
        default=None,
        description="Share of held-out texts whose decisions equal the transformer's alone: texts neither taught "
        "to the student nor used to fit its bands (distill.py; null for a student that was not checked so).",
    )
    held_out_answered_share: float | None = Field(
        default=None, description="Share of those held-out texts the student answered alone."
    )
    held_out_texts: int | None = Field(default=None, description="How many held-out texts these shares are of.")


class PrecisionHealth(BaseModel):
    path: str = Field(
        description="How the transformer computes: bucketed-bfloat16 (fixed-shape passes in bfloat16), float32 or int8."
    )
    reason: str = Field(description="Why this path serves (COCKATOO_DTYPE, the hardware, the parity check).")


class HealthResponse(BaseModel):
    status: Literal["ok", "unavailable"] = Field(default="ok", description="unavailable (HTTP 503): cannot score.")
    reason: str | None = Field(default=None, description="Why the model cannot score, when it cannot.")
    model: str
    labels: list[str]
    problem_type: Literal["multi_label", "single_label"]
    window_tokens: int
    dtype: str
    precision: PrecisionHealth
    thresholds: dict[str, float]
    cascade: CascadeHealth
    openai_categories: dict[str, list[str]] = Field(
        description="/v1/moderations: the OpenAI categories each label also answers as (COCKATOO_OPENAI_CATEGORIES); "
        "a label not listed answers under its own name only."
    )
    version: str


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in one line.")
    detail: list[ErrorDetail] = Field(
        default_factory=list, description="Invalid fields, at most a few (error_count says how many in all)."
    )
    error_count: int = Field(default=0, description="How many fields were invalid in all.")
    request_id: str | None = Field(
        default=None, description="On a 500: the id under which the server logged the error (also X-Request-ID)."
    )


# --- POST /v1/moderations: OpenAI's moderation API, as its official SDK sends and parses it ----------------------

# Tags of the two unions below (see THRESHOLD_TAGS): dropped when a field is named to the client.
INPUT_TAGS = ("string", "list")
INPUT_ITEM_TAGS = ("string", "object")


def _input_shape(value: object) -> str:
    return "list" if isinstance(value, list) else "string"


def _item_shape(value: object) -> str:
    return "object" if isinstance(value, dict) else "string"


class TextInput(BaseModel):
    """An item of OpenAI's multi-modal input that holds text (image items are not supported: this model reads text)."""

    type: Literal["text"]
    text: Text


InputItem = Annotated[Annotated[Text, Tag("string")] | Annotated[TextInput, Tag("object")], Discriminator(_item_shape)]
ModerationInput = Annotated[
    Annotated[Text, Tag("string")] | Annotated[list[InputItem], Field(min_length=1), Tag("list")],
    Discriminator(_input_shape),
]


class ModerationRequest(BaseModel):
    input: ModerationInput = Field(
        description='A text, or a non-empty list of texts (or of OpenAI\'s {"type": "text", "text": ...} '
        "items); one result per text, in this order. Each text: " + TEXT_RULES
    )
    model: str | None = Field(
        default=None,
        description="Optional: the served model's name, or one of the names it answers to (COCKATOO_OPENAI_MODELS; "
        "OpenAI's by default). The answer always names the served model.",
    )

    def texts(self) -> list[str]:
        items = [self.input] if isinstance(self.input, str) else self.input
        return [item if isinstance(item, str) else item.text for item in items]


class Moderation(BaseModel):
    flagged: bool = Field(description="Any label (unsafe included, where the model has it) reaches its threshold.")
    categories: dict[str, bool] = Field(
        description="Per label, and per OpenAI category a label answers as: whether its score reaches the threshold."
    )
    category_scores: dict[str, float] = Field(
        description="The same keys' scores: a label's probability; an OpenAI category's, the highest of its labels'."
    )
    category_applied_input_types: dict[str, list[Literal["text"]]] = Field(
        description='The same keys, each ["text"]: the input types its score applies to.'
    )
    tier: Literal["student", "model"] = Field(
        description="Who answered: the cascade's cheap student (sure of every label) or the transformer."
    )


class ModerationResponse(BaseModel):
    id: str = Field(description='"modr-" and the request id (the X-Request-ID header).')
    model: str = Field(description="The served model's name, whatever name the request gave.")
    results: list[Moderation]


class OpenAIError(BaseModel):
    message: str = Field(description="What went wrong, in one line.")
    type: str = Field(description="invalid_request_error, requests (429) or server_error (500).")
    param: str | None = Field(default=None, description="The request field at fault (input, input.3, model).")
    code: str | None = Field(
        default=None, description="model_not_found, invalid_api_key, rate_limit_exceeded, ... or null."
    )


class OpenAIErrorResponse(BaseModel):
    """Errors of the /v1/ routes, in OpenAI's shape (the SDK raises its own exception per status)."""

    error: OpenAIError
