"""Request and response bodies of the inference API (pydantic; published as OpenAPI by quart-schema).

Shapes follow the seed project's API so existing clients keep working; ``windows`` is new. Numbers are strict:
``"0.5"`` or ``true`` is not a threshold.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Discriminator, Field, Tag
from pydantic_core import PydanticCustomError

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
    if not text.strip():
        raise PydanticCustomError("blank_text", "text must not be empty or only whitespace")
    return text


# Checked per item, so one bad text in a batch is named by its index (texts.3).
Text = Annotated[str, Field(strict=True), AfterValidator(_require_content)]


class PredictRequest(BaseModel):
    text: Text = Field(description="Text to classify. Longer texts than the model's window are scored in windows.")
    threshold: Threshold | None = Field(default=None, description=THRESHOLD_HELP)


class BatchRequest(BaseModel):
    texts: list[Text] = Field(min_length=1, description="Texts to classify; results come back in this order.")
    threshold: Threshold | None = Field(default=None, description=THRESHOLD_HELP)


class Prediction(BaseModel):
    text: str
    predictions: dict[str, float] = Field(description="Every label's score (probability), rounded to 4 places.")
    positive_labels: list[str] = Field(description="Labels whose score reaches its threshold.")
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
    validation_agreement: float | None = Field(
        default=None, description="Share of validation texts whose decisions equal the transformer's alone."
    )
    validation_answered_share: float | None = Field(
        default=None, description="Share of validation texts the student answered."
    )


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"
    model: str
    labels: list[str]
    problem_type: Literal["multi_label", "single_label"]
    window_tokens: int
    dtype: str
    thresholds: dict[str, float]
    cascade: CascadeHealth
    version: str


class ErrorDetail(BaseModel):
    field: str
    message: str


class ErrorResponse(BaseModel):
    error: str = Field(description="What went wrong, in one line.")
    detail: list[ErrorDetail] = Field(default_factory=list, description="One entry per invalid field.")
