"""The request models state the text rule (cockatoo_ml/inference/texts.py) in their OpenAPI schema."""

from __future__ import annotations

from cockatoo_ml.inference.texts import VISIBLE_CHARACTER, has_visible
from cockatoo_ml.serving.schemas import PredictRequest


def test_the_openapi_pattern_is_the_validators_regex() -> None:
    schema = PredictRequest.model_json_schema()
    assert schema["properties"]["text"]["pattern"] == VISIBLE_CHARACTER
    assert not has_visible("\u009c\u0084") and not has_visible("\U000e0020 \u200b") and has_visible("\u00e9")
