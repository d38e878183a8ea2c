"""Student features and heads (cockatoo_ml/inference/students.py): fit, score, save, load."""

from __future__ import annotations

import json
from array import array
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse

from cockatoo_ml.inference.students import (
    Student,
    TfidfFeatures,
    _tfidf_pair,
    char_wb_ngrams,
    logits,
    word_ngrams,
)
from tests.conftest import EXAMPLES

TEXTS = [text for texts in EXAMPLES.values() for text in texts] + ["Ünïcødé 😀 日本語 \u200b", "\x00\U0010ffff"]


def scikit_learns_own_pair() -> list:
    """scikit-learn's built-in analyzers with the student's other settings (ours replace them in the student)."""
    word, char = _tfidf_pair(None)
    word.set_params(analyzer="word", ngram_range=(1, 2), lowercase=True, norm=None)
    char.set_params(analyzer="char_wb", ngram_range=(2, 5), lowercase=True, norm=None)
    return [word, char]


def test_our_analyzers_are_scikit_learns() -> None:
    odd = ["  tabs\tand\n\nnew  lines ", "a b c I", "x", "", "ab", "abcd efghij", "Ünïcødé ÉCOLE straße",
           "don't stop-me now!!", "日本語のテキスト", "emoji 😀😀 here", "\u00a0nbsp\u2003em space", "ǅungla İstanbul"]
    word, char = scikit_learns_own_pair()
    for text in [*TEXTS, *odd]:
        assert word_ngrams(text) == word.build_analyzer()(text)
        assert char_wb_ngrams(text) == char.build_analyzer()(text)


def test_serving_a_student_never_imports_scikit_learn(tmp_path: Path) -> None:
    import subprocess
    import sys

    Student.fit(TfidfFeatures.fit(TEXTS), TEXTS, np.full((len(TEXTS), 1), 0.3), ["violence"]).save(tmp_path)
    code = ("import sys; from pathlib import Path; from cockatoo_ml.inference.students import Student; "
            f"Student.load(Path({str(tmp_path)!r})).scores(['a text']); print('sklearn' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"


def test_tfidf_features_equal_scikit_learns_normalised_over_both_parts() -> None:
    features = TfidfFeatures.fit(TEXTS)
    word, char = scikit_learns_own_pair()
    for vectorizer in (word, char):
        vectorizer.fit(TEXTS)
    probe = [*TEXTS, "never seen before zzzz", ""]
    reference = sparse.hstack([word.transform(probe), char.transform(probe)]).toarray()
    reference /= np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    assert np.abs(features.transform(probe).toarray() - reference).max() < 1e-6


def long_words(count: int, chars: int, seed: int = 0) -> list[str]:
    """Distinct made-up words of ``chars`` letters, from the letters (and so the n-grams) the vocabulary knows."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyzéü"))
    return ["".join(rng.choice(letters, chars)) for _ in range(count)]


def test_the_word_cache_is_bounded_in_bytes_and_changes_no_feature() -> None:
    roomy = TfidfFeatures.fit(TEXTS)
    tight = TfidfFeatures(roomy.vocabularies, np.split(roomy.idf, roomy.offsets[1:-1]), word_cache_bytes=8192)
    longest = TfidfFeatures.fit(TEXTS)._char_columns.max_word_chars
    words = [*long_words(30, longest), *long_words(30, 12, seed=1), "😀" * longest]
    probe = [*TEXTS, " ".join(words), *words, *TEXTS]  # the second pass over TEXTS hits the roomy cache
    assert np.abs(tight.transform(probe).toarray() - roomy.transform(probe).toarray()).max() == 0
    cache = tight._char_columns
    assert 0 < cache.bytes <= 8192 and 0 < len(cache) < len(roomy._char_columns)
    assert cache.bytes == sum(cache.entry_bytes(w, c) for w, c in cache._entries.items())  # evictions counted
    assert roomy._char_columns.hits > 0 and roomy._char_columns.bytes <= 8 * 2**20


def test_a_word_longer_than_any_word_is_scored_but_never_cached() -> None:
    features = TfidfFeatures.fit(TEXTS)
    cache = features._char_columns
    junk = long_words(2, 5_000)
    before = len(cache), cache.bytes
    features.transform(junk)
    assert (len(cache), cache.bytes) == before and cache.misses >= 2
    word, char = scikit_learns_own_pair()
    reference = sparse.hstack([word.fit(TEXTS).transform(junk), char.fit(TEXTS).transform(junk)]).toarray()
    reference /= np.maximum(np.linalg.norm(reference, axis=1, keepdims=True), 1e-12)
    assert np.abs(features.transform(junk).toarray() - reference).max() < 1e-6 and reference.any()


def test_the_cache_counts_at_least_the_memory_it_holds() -> None:
    """What the cache counts against its budget covers what Python allocates for it (tracemalloc: the words, made
    fresh as a request's are, their columns and the dictionary), from several threads at once; a cache with no
    budget keeps nothing."""
    import threading
    import tracemalloc

    from cockatoo_ml.inference.students import WordColumnsCache

    lengths = np.random.default_rng(0).integers(1, 12, 40_000).tolist()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        cache = WordColumnsCache(lambda w: array("i", range(len(w) // 4)), max_bytes=2**19)

        def feed(part: int) -> None:
            for i in range(part, len(lengths), 4):
                cache("😀" * (i % 2) + "x" * lengths[i] + str(i))

        threads = [threading.Thread(target=feed, args=(part,)) for part in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert cache.misses == len(lengths) and 0 < len(cache) < len(lengths)  # it had to evict
    assert held <= cache.bytes <= 2**19
    assert cache.bytes == sum(cache.entry_bytes(w, c) for w, c in cache._entries.items())
    none = WordColumnsCache(lambda w: array("i", [1]), max_bytes=0)
    assert list(none("word")) == [1] and len(none) == 0 and none.bytes == 0


def test_a_student_learns_the_teachers_order_and_survives_saving(tmp_path: Path) -> None:
    teacher = np.array([[0.99 if "kill" in t or "stab" in t or "shoot" in t else 0.01] for t in TEXTS])
    student = Student.fit(TfidfFeatures.fit(TEXTS), TEXTS, teacher, ["violence"], alpha=0.1)
    scores = student.scores(TEXTS)
    assert scores.shape == (len(TEXTS), 1) and ((scores >= 0) & (scores <= 1)).all()
    violent = teacher[:, 0] > 0.5
    assert scores[violent, 0].min() > scores[~violent, 0].max()
    student.save(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["head.npz", "student.json", "tfidf.json"]
    again = Student.load(tmp_path)
    assert again.kind == "tfidf" and again.labels == ("violence",)
    assert np.array_equal(again.scores(TEXTS), scores)
    assert student.scores([]).shape == (0, 1)


def test_logits_are_clipped() -> None:
    assert np.isfinite(logits(np.array([0.0, 0.5, 1.0]))).all() and logits(np.array([0.5]))[0] == 0.0


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        (lambda d: (d / "head.npz").unlink(), FileNotFoundError),
        (lambda d: (d / "student.json").write_text("{"), ValueError),
        (lambda d: (d / "student.json").write_text(json.dumps({"kind": "lstm", "labels": ["violence"]})), ValueError),
        (lambda d: (d / "student.json").write_text(json.dumps({"kind": "tfidf", "labels": ["a", "b"]})), ValueError),
        (lambda d: (d / "tfidf.json").write_text("[]"), ValueError),
    ],
)
def test_a_damaged_student_fails_to_load(tmp_path: Path, damage, error: type) -> None:
    Student.fit(TfidfFeatures.fit(TEXTS), TEXTS, np.full((len(TEXTS), 1), 0.3), ["violence"]).save(tmp_path)
    damage(tmp_path)
    with pytest.raises(error):
        Student.load(tmp_path)


def test_scores_are_the_sigmoid_of_the_head_even_at_the_extremes() -> None:
    import warnings

    from scipy.special import expit

    features = TfidfFeatures.fit(TEXTS)
    x = features.transform(TEXTS).toarray()
    coef = np.array([[1000.0] * x.shape[1], [-1000.0] * x.shape[1], [0.5] * x.shape[1]], dtype=np.float32)
    student = Student(features, coef, np.array([0.0, 0.0, -0.1]), ["a", "b", "c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow warning
        scores = student.scores(TEXTS)
    assert np.allclose(scores, expit(x @ coef.T.astype(np.float64) + np.array([0.0, 0.0, -0.1])), rtol=1e-6, atol=1e-12)
