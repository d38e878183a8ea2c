"""What makes a text scorable: a string, valid Unicode, with something visible in it. One rule for every
consumer: the server refuses such a request item (422, ``serving/schemas.py``), bulk scoring writes the same reason
into the row's ``error`` column."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

# Whitespace, control (Cc) and format (Cf) characters: NUL, zero-width spaces, direction marks... A text made only
# of them says nothing to the model, so it is refused like a blank one. As code point ranges (Python's Unicode
# tables; tests/inference/test_texts.py recomputes them from unicodedata), so that one regex is both what the
# validator runs and the OpenAPI schema's `pattern`: a client's schema validator refuses what the server refuses.
INVISIBLE_RANGES = (
    (0x0000, 0x0020), (0x007F, 0x00A0), (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD),
    (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2), (0x1680, 0x1680), (0x180E, 0x180E), (0x2000, 0x200F),
    (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F), (0x3000, 0x3000), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip


def _class_member(code_point: int) -> str:
    # \uXXXX reads the same in Python's re and ECMA-262; characters beyond the BMP stay literal (ECMA's u mode).
    return f"\\u{code_point:04X}" if code_point <= 0xFFFF else chr(code_point)


VISIBLE_CHARACTER = (
    "[^" + "".join(_class_member(a) + (f"-{_class_member(b)}" if b > a else "") for a, b in INVISIBLE_RANGES) + "]"
)
_visible = re.compile(VISIBLE_CHARACTER)


def has_visible(text: str) -> bool:
    """Whether ``text`` has a character other than whitespace, Cc and Cf (one C-speed regex scan, so a megabyte
    of zero-width spaces costs milliseconds)."""
    return _visible.search(text) is not None


TEXT_RULES = (
    "Must be valid Unicode (no lone surrogates such as \\ud800: the tokenizer cannot encode them) and contain "
    "at least one character that is not whitespace, a control (Cc) or a format (Cf) character."
)


@dataclass(frozen=True)
class TextProblem:
    """Why a value cannot be scored: ``kind`` names the rule (pydantic's error type in the server), ``template``
    and ``context`` make the message (pydantic fills the one from the other as ``message`` does)."""

    kind: str
    template: str
    context: dict[str, Any] = field(default_factory=dict)

    @property
    def message(self) -> str:
        return self.template.format(**self.context)


def text_problem(value: object) -> TextProblem | None:
    """Why ``value`` cannot be scored, or None when it can. C-speed string operations only: cheap enough to run
    on every text before any of them is tokenized."""
    if not isinstance(value, str):
        what = "null" if value is None else type(value).__name__
        return TextProblem("not_a_string", "text is not a string but {what}", {"what": what})
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:  # only lone surrogates cannot be encoded
        return TextProblem(
            "unencodable_text",
            "text is not valid Unicode: lone surrogate {char} at position {position}; send UTF-8 text",
            {"char": f"U+{ord(value[exc.start]):04X}", "position": exc.start},
        )
    if not has_visible(value):
        return TextProblem("blank_text", "text must not be empty or only whitespace, control or format characters")
    return None
