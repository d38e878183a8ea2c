"""TokenBudget: token counts, the per-text and per-request limits, and bounded counting of huge texts."""

from __future__ import annotations

import pytest

from cockatoo_ml.inference.budget import MAX_CHARS_PER_TOKEN, OverBudgetError, TokenBudget
from cockatoo_ml.inference.classifier import TextClassifier


@pytest.fixture
def budget(tiny_classifier: TextClassifier) -> TokenBudget:
    return TokenBudget(tiny_classifier.count_tokens, max_text_tokens=50, max_request_tokens=80)


def tokens(classifier: TextClassifier, text: str) -> int:
    return len(classifier.tokenizer(text, add_special_tokens=False)["input_ids"])


def test_counts_each_texts_tokens(budget: TokenBudget, tiny_classifier: TextClassifier) -> None:
    texts = ["hello world", "Send 0.5 BTC to this wallet", "\u05e9\u05dc\u05d5\u05dd \U0001f600"]
    assert budget.count(texts) == [tokens(tiny_classifier, t) for t in texts]


def test_a_text_over_its_budget_names_the_field_and_the_setting(budget: TokenBudget) -> None:
    with pytest.raises(OverBudgetError, match=r"^text: the text has more than 50 tokens.*COCKATOO_MAX_TEXT_TOKENS"):
        budget.count(["word " * 51], "text", single=True)
    with pytest.raises(OverBudgetError, match=r"^texts\.2: the text has more than 50"):
        budget.count(["a", "b", "word " * 51])
    assert budget.count(["word " * 50], "text", single=True) == [50]


def test_a_request_over_its_budget_names_the_text_that_crossed_it(budget: TokenBudget) -> None:
    with pytest.raises(OverBudgetError, match=r"^texts\.1: the request up to here.*COCKATOO_MAX_REQUEST_TOKENS"):
        budget.count(["word " * 40, "word " * 41])
    assert sum(budget.count(["word " * 40, "word " * 40])) == 80


def test_a_long_text_is_refused_on_a_prefix_count(budget: TokenBudget) -> None:
    text = "word " * 150  # 750 characters: under the length cap, over the 8-per-token prefix
    with pytest.raises(OverBudgetError, match=r"at least (\d+)") as caught:
        budget.count([text])
    assert 50 < int(caught.value.args[0].split("at least ")[1].split(")")[0]) < 150


def test_text_or_request_longer_than_any_real_text_of_its_budget_is_refused_untokenized(budget: TokenBudget) -> None:
    class NoTokenizer:
        def __call__(self, *args: object, **kwargs: object) -> None:
            raise AssertionError("tokenized")

    untokenized = TokenBudget(NoTokenizer(), budget.max_text_tokens, budget.max_request_tokens)
    with pytest.raises(OverBudgetError, match="characters, over 16 per token"):
        untokenized.count(["x" * (50 * MAX_CHARS_PER_TOKEN + 1)])
    with pytest.raises(OverBudgetError, match=r"^texts\.0: the request up to here"):
        TokenBudget(NoTokenizer(), 10_000, 80).count(["x" * (80 * MAX_CHARS_PER_TOKEN + 1)])
