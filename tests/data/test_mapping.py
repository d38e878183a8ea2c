import numpy as np
import pandas as pd
import pytest

from cockatoo_ml.data.mapping import column_scores, map_labels, merge_scores
from cockatoo_ml.data.sources import AnyOfRule, CleanRule, LabelRule
from cockatoo_ml.errors import ConfigError, DataError

from .helpers import LABELS, WITH_UNSAFE, as_lists, spec

NAN = np.nan


def test_value_map_is_case_insensitive_allows_unknown_and_counts_unmapped() -> None:
    rule = LabelRule(columns=("LABEL",), values={"ham": 0, "smishing": 1, "spam": "unknown"})
    series = pd.Series(["ham", "Smishing", " smishing ", "Spam", None, "", "phish"], name="LABEL")
    scores, bad = column_scores(series, rule)
    assert as_lists(scores[:, None]) == [[0.0], [1.0], [1.0], [None], [None], [None], [None]]
    assert bad == 1  # "phish" is present but not in the map


def test_value_map_on_integer_and_float_columns() -> None:
    rule = LabelRule(columns=("class",), values={"0": 1, "1": "unknown", "2": 0})
    assert as_lists(column_scores(pd.Series([0, 1, 2]), rule)[0][:, None]) == [[1.0], [None], [0.0]]
    assert as_lists(column_scores(pd.Series([0.0, NAN, 2.0]), rule)[0][:, None]) == [[1.0], [None], [0.0]]


def test_numbers_booleans_and_unreadable_cells() -> None:
    rule = LabelRule(columns=("x",))
    scores, bad = column_scores(pd.Series(["1", " 0 ", "true", "FALSE", "0.7", "", None, "n/a"]), rule)
    assert as_lists(scores[:, None]) == [[1.0], [0.0], [1.0], [0.0], [0.7], [None], [None], [None]]
    assert bad == 1
    assert column_scores(pd.Series([True, False]), rule)[0].tolist() == [1.0, 0.0]


# Rows: (a, b) column scores; threshold 0.5. Expected labels per merge, strict and with missing="ignore".
ROWS = np.array([[1, 0], [0, 0], [1, NAN], [0, NAN], [NAN, NAN], [1, 1], [0.4, 0.8]], dtype=float)


@pytest.mark.parametrize(
    ("merge", "missing", "expected"),
    [
        ("any", "unknown", [1, 0, 1, None, None, 1, 1]),
        ("max", "unknown", [1, 0, 1, None, None, 1, 1]),
        ("all", "unknown", [0, 0, None, 0, None, 1, 0]),
        ("mean", "unknown", [1, 0, None, None, None, 1, 1]),
        ("any", "ignore", [1, 0, 1, 0, None, 1, 1]),
        ("all", "ignore", [0, 0, 1, 0, None, 1, 0]),
        ("mean", "ignore", [1, 0, 1, 0, None, 1, 1]),
    ],
)
def test_merge_with_unknown_values(merge: str, missing: str, expected: list) -> None:
    rule = LabelRule(columns=("a", "b"), merge=merge, missing=missing)
    result = merge_scores(ROWS, rule)
    assert [None if np.isnan(v) else int(v) for v in result] == expected


def test_threshold_is_inclusive() -> None:
    rule = LabelRule(columns=("s",), threshold=0.5)
    assert merge_scores(np.array([[0.5], [0.49]]), rule).tolist() == [1.0, 0.0]


def test_map_labels_marks_unannotated_labels_unknown_and_ignores_foreign_rules() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "label": [1, 0], "other": [1, 1]})
    source = spec(labels={"harassment": LabelRule(columns=("label",)), "spam": LabelRule(columns=("other",))})
    mapped = map_labels(frame, source, LABELS)
    assert as_lists(mapped.labels) == [[None, None, None, 1.0], [None, None, None, 0.0]]
    assert mapped.text.tolist() == ["a", "b"]


def test_two_labels_may_read_one_column_with_different_value_maps() -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "kind": ["threat", "insult"]})
    source = spec(labels={
        "violence": LabelRule(columns=("kind",), values={"threat": 1, "insult": 0}),
        "harassment": LabelRule(columns=("kind",), values={"threat": 1, "insult": 1}),
    })
    assert as_lists(map_labels(frame, source, LABELS).labels) == [[None, 1.0, None, 1.0], [None, 0.0, None, 1.0]]


def test_group_by_averages_annotators_before_the_threshold() -> None:
    frame = pd.DataFrame({
        "comment_id": [7, 7, 7, 8, 8],
        "text": ["x", "x", "x", "y", "y"],
        "violence": [4, 3, NAN, 0, 4],  # 7 -> 3.5 (NaN annotator skipped), 8 -> 2.0
    })
    source = spec(group_by="comment_id", labels={"violence": LabelRule(columns=("violence",), threshold=3)})
    mapped = map_labels(frame, source, LABELS)
    assert mapped.text.tolist() == ["x", "y"]
    assert as_lists(mapped.labels)[0][1] == 1.0 and as_lists(mapped.labels)[1][1] == 0.0


def test_missing_column_names_source_column_and_columns_found() -> None:
    frame = pd.DataFrame({"text": ["a"], "lable": [1]})
    with pytest.raises(DataError, match=r"source src: column 'label' not found in .*columns found: \['text', 'lable'\]"):
        map_labels(frame, spec(), LABELS)


def test_any_of_flags_the_unknown_member_labels_of_flagged_rows_only() -> None:
    # rows: flagged with every member unknown; flagged but violence already known positive (satisfied);
    # flagged with violence known negative (only harassment stays a candidate); not flagged; flag unknown.
    frame = pd.DataFrame(
        {"text": list("abcde"), "unsafe": [1, 1, 1, 0, None], "violence": [None, 1, 0, None, None]}
    )
    source = spec(
        labels={"violence": LabelRule(columns=("violence",))},
        any_of=AnyOfRule(columns=("unsafe",), labels=("violence", "harassment")),
    )
    mapped = map_labels(frame, source, LABELS)
    assert mapped.any_of.tolist() == [
        [False, True, False, True],
        [False, False, False, False],
        [False, False, False, True],
        [False, False, False, False],
        [False, False, False, False],
    ]
    assert as_lists(mapped.labels)[0] == [None, None, None, None]  # the flag itself decides no single label


def test_any_of_members_outside_the_active_labels_are_left_out() -> None:
    frame = pd.DataFrame({"text": ["a"], "unsafe": [1]})
    source = spec(labels={}, any_of=AnyOfRule(columns=("unsafe",), labels=("violence", "self_harm")))
    assert map_labels(frame, source, LABELS).any_of.tolist() == [[False, True, False, False]]


# --- the umbrella label `unsafe` (sources.py, rules 6 and 7) ------------------------------------------------------


def test_unsafe_is_positive_where_a_label_is_and_unknown_elsewhere_without_a_rule_of_its_own() -> None:
    frame = pd.DataFrame({"text": list("abc"), "label": [1, 0, None]})  # a TweetEval-like hate flag
    mapped = map_labels(frame, spec(), WITH_UNSAFE)
    assert as_lists(mapped.labels) == [
        [None, None, None, 1.0, 1.0],
        [None, None, None, 0.0, None],  # not hate is not known to be safe
        [None, None, None, None, None],
    ]


def test_unsafe_from_a_broad_flag_gives_positives_and_negatives_and_a_label_positive_wins() -> None:
    # A ToxicChat-like source: the broad flag, plus a label whose positive makes the row unsafe whatever the flag.
    frame = pd.DataFrame({"text": list("abcd"), "toxicity": [1, 0, 0, None], "threat": [None, 0, 1, None]})
    source = spec(
        labels={"unsafe": LabelRule(columns=("toxicity",)), "violence": LabelRule(columns=("threat",))}
    )
    assert [row[1:] for row in as_lists(map_labels(frame, source, WITH_UNSAFE).labels)] == [
        [None, None, None, 1.0],
        [0.0, None, None, 0.0],
        [1.0, None, None, 1.0],
        [None, None, None, None],
    ]


def test_unsafe_from_any_category_of_a_moderation_set_even_one_we_do_not_map() -> None:
    # OpenAI-like: SH (self-harm) maps to none of our labels but makes the row unsafe; a missing key is unknown.
    frame = pd.DataFrame({"text": list("abcd"), "S": [0, 0, 1, 0], "SH": [1, 0, 0, None]})
    source = spec(labels={"nsfw": LabelRule(columns=("S",)), "unsafe": LabelRule(columns=("S", "SH"))})
    assert [row[2::2] for row in as_lists(map_labels(frame, source, WITH_UNSAFE).labels)] == [
        [0.0, 1.0],
        [0.0, 0.0],
        [1.0, 1.0],
        [0.0, None],
    ]


def test_clean_flag_clears_the_labels_it_names_where_they_are_unknown() -> None:
    # ConvAbuse-like: abusive by a majority is harassment (below the threshold unknown); "not abusive" by a
    # majority is clean for every label; a row that is neither (a tie) stays unknown.
    frame = pd.DataFrame({"text": list("abc"), "abusive": [1.0, 0.0, 0.5], "fine": [0.0, 1.0, 0.5]})
    source = spec(
        labels={"harassment": LabelRule(columns=("abusive",), threshold=0.51, below="unknown")},
        clean=CleanRule(columns=("fine",), threshold=0.51, labels=("violence", "harassment", "unsafe")),
    )
    assert as_lists(map_labels(frame, source, WITH_UNSAFE).labels) == [
        [None, None, None, 1.0, 1.0],
        [None, 0.0, None, 0.0, 0.0],  # scam is not named by `clean`: unknown
        [None, None, None, None, None],
    ]


def test_clean_never_overrides_a_positive() -> None:
    frame = pd.DataFrame({"text": ["a"], "sexual": [1], "fine": [1]})
    source = spec(
        labels={"nsfw": LabelRule(columns=("sexual",))},
        clean=CleanRule(columns=("fine",), labels=("nsfw", "harassment", "unsafe")),
    )
    assert as_lists(map_labels(frame, source, WITH_UNSAFE).labels) == [[None, None, 1.0, 0.0, 1.0]]


def test_below_unknown_turns_negatives_into_unknown_for_every_merge() -> None:
    rows = np.array([[1.0, 0.0], [0.0, 0.0], [NAN, NAN]])
    # (1, 0) is positive for any/max/mean (0.5 >= 0.5) and negative for all: with below="unknown", unknown.
    expected = {"any": 1.0, "max": 1.0, "mean": 1.0, "all": None}
    for merge, first in expected.items():
        rule = LabelRule(columns=("a", "b"), merge=merge, below="unknown", missing="ignore")
        assert as_lists(merge_scores(rows, rule)[:, None]) == [[first], [None], [None]], merge
    with pytest.raises(ConfigError, match="below 'maybe' is not one of"):
        LabelRule(columns=("a",), below="maybe")


def test_a_label_set_without_unsafe_has_no_umbrella() -> None:
    frame = pd.DataFrame({"text": ["a"], "label": [1]})
    assert as_lists(map_labels(frame, spec(), LABELS).labels) == [[None, None, None, 1.0]]
