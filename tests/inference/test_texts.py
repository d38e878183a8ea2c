"""The text rule every consumer applies (cockatoo_ml/inference/texts.py): one regex that the server's validator
runs, its OpenAPI schema states and bulk scoring writes into a row's error."""

from __future__ import annotations

import re
import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cockatoo_ml.inference.texts import INVISIBLE_RANGES, VISIBLE_CHARACTER, has_visible, text_problem


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
    assert has_visible(text) == expected
    assert (re.search(VISIBLE_CHARACTER, text) is not None) == expected



@pytest.mark.parametrize(
    ("value", "kind", "message"),
    [
        (None, "not_a_string", "text is not a string but null"),
        (42, "not_a_string", "text is not a string but int"),
        ("ab\ud800", "unencodable_text", "text is not valid Unicode: lone surrogate U+D800 at position 2; send UTF-8 text"),
        ("", "blank_text", "text must not be empty or only whitespace, control or format characters"),
        (" \u200b\t", "blank_text", "text must not be empty or only whitespace, control or format characters"),
    ],
)
def test_a_value_that_cannot_be_scored_says_why(value: object, kind: str, message: str) -> None:
    problem = text_problem(value)
    assert problem is not None and (problem.kind, problem.message) == (kind, message)


def test_a_text_with_something_visible_can_be_scored() -> None:
    assert text_problem(" \u200b x") is None and text_problem("\u00e9") is None
