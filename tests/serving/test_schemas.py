"""The text rule of the request models: one regex that the validator runs and the OpenAPI schema states."""

from __future__ import annotations

import re
import sys
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from cockatoo_ml.serving.schemas import INVISIBLE_RANGES, VISIBLE_CHARACTER, PredictRequest, _has_visible


def _invisible(char: str) -> bool:
    return char.isspace() or unicodedata.category(char) in ("Cc", "Cf")


def test_invisible_ranges_are_this_pythons_whitespace_control_and_format_characters() -> None:
    ranges: list[list[int]] = []
    for code_point in range(sys.maxunicode + 1):
        if _invisible(chr(code_point)):
            if ranges and ranges[-1][1] == code_point - 1:
                ranges[-1][1] = code_point
            else:
                ranges.append([code_point, code_point])
    assert [tuple(r) for r in ranges] == list(INVISIBLE_RANGES), f"Unicode {unicodedata.unidata_version}"


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(codec=None, exclude_categories=["Cs"]), max_size=12))
def test_the_validator_and_the_schema_pattern_agree_with_the_rule(text: str) -> None:
    expected = any(not _invisible(char) for char in text)
    assert _has_visible(text) == expected
    assert (re.search(VISIBLE_CHARACTER, text) is not None) == expected


def test_the_openapi_pattern_is_the_validators_regex() -> None:
    schema = PredictRequest.model_json_schema()
    assert schema["properties"]["text"]["pattern"] == VISIBLE_CHARACTER
    assert not _has_visible("\u009c\u0084") and not _has_visible("\U000e0020 \u200b") and _has_visible("\u00e9")
