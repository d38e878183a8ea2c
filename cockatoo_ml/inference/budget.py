"""Cost limits in tokens: what one text and one request may cost the model (TEI's max-batch-tokens idea).

Texts and bytes say little about work: a megabyte of ``"a "`` is half a million tokens (minutes of model time).
``TokenBudget.count`` counts a request's tokens before anything is queued and refuses, with a 413 naming the
setting, a text over ``COCKATOO_MAX_TEXT_TOKENS`` or a request over ``COCKATOO_MAX_REQUEST_TOKENS``: one policy,
nothing is cut (bulk scoring holds each row to the same per-text limit and writes the refusal into the row). Counting is bounded too: a text or request of more than ``MAX_CHARS_PER_TOKEN`` characters per
allowed token is over budget without tokenizing it (real text has 3-6; only long unspaced junk has more, and
tokenizing a megabyte of it took 0.7 CPU-seconds), a long text is first counted on a prefix (a prefix cannot have
more tokens than the whole text), and counting stops at the first text over budget. In the server it runs on a
worker thread, never on the event loop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cockatoo_ml.errors import CockatooError

# A text longer than this many characters per allowed token is counted on a prefix of that length first: real
# text has 3-6 characters per token, so a prefix that long holds more tokens than the budget unless the text is
# unusual (long unspaced runs), which is then counted whole.
PREFIX_CHARS_PER_TOKEN = 8
MAX_CHARS_PER_TOKEN = 16
_LAST_SPACE = re.compile(r"\s\S*\Z")


class OverBudgetError(CockatooError):
    """A text or request would cost the model more tokens than a setting allows (HTTP 413)."""

    def __init__(self, field: str, limit: int, setting: str, what: str, found: str) -> None:
        super().__init__(
            f"{field}: {what} has more than {limit} tokens ({found}); the limit is {setting}: split the text or "
            "the request"
        )
        self.field = field


@dataclass(frozen=True)
class TokenBudget:
    count_tokens: Callable[[str], int]  # a text's tokens, special tokens not counted (TextClassifier.count_tokens)
    max_text_tokens: int
    max_request_tokens: int

    def count(self, texts: Sequence[str], field: str = "texts", single: bool = False) -> list[int]:
        """Each text's tokens (special tokens not counted), or ``OverBudgetError`` for the first text, or the
        request, over budget. ``field`` names the list (``texts.3``), or with ``single`` the one text sent alone
        (``text``; ``input`` when a string was sent)."""
        counts: list[int] = []
        total = chars = 0
        for index, text in enumerate(texts):
            name = field if single else f"{field}.{index}"
            chars += len(text)
            if len(text) > self.max_text_tokens * MAX_CHARS_PER_TOKEN:
                raise self._text_over(name, f"{len(text)} characters, over {MAX_CHARS_PER_TOKEN} per token")
            if chars > self.max_request_tokens * MAX_CHARS_PER_TOKEN:
                raise self._request_over(name, f"{chars} characters, over {MAX_CHARS_PER_TOKEN} per token")
            tokens = self._tokens(text, min(self.max_text_tokens, self.max_request_tokens - total))
            if tokens > self.max_text_tokens:
                raise self._text_over(name, f"at least {tokens}")
            total += tokens
            if total > self.max_request_tokens:
                raise self._request_over(name, f"at least {total}")
            counts.append(tokens)
        return counts

    def _text_over(self, field: str, found: str) -> OverBudgetError:
        return OverBudgetError(field, self.max_text_tokens, "COCKATOO_MAX_TEXT_TOKENS", "the text", found)

    def _request_over(self, field: str, found: str) -> OverBudgetError:
        return OverBudgetError(
            field, self.max_request_tokens, "COCKATOO_MAX_REQUEST_TOKENS", "the request up to here", found
        )

    def _tokens(self, text: str, limit: int) -> int:
        """The text's tokens; a number above ``limit`` may be a prefix's count (the text has at least that many)."""
        cut = max(limit, 1) * PREFIX_CHARS_PER_TOKEN
        if len(text) > cut:
            prefix = text[:cut]
            space = _LAST_SPACE.search(prefix)  # end at a word boundary: a cut word could split differently
            tokens = self.count_tokens(prefix[: space.start()] if space else prefix)
            if tokens > limit:
                return tokens
        return self.count_tokens(text)
