"""Student models: cheap text features and a linear head fitted to the teacher's logits.

Two kinds of features:

* ``static``: model2vec static embeddings distilled from the fine-tuned encoder itself (every token of its
  vocabulary passed through it once; a text is the mean of its tokens' vectors), so the student starts from what
  the teacher learned;
* ``tfidf``: TF-IDF over word 1-2-grams and character 2-5-grams (scikit-learn), which also sees spelling tricks.

The head is a ridge regression onto the teacher's clipped logits: regressing logits rather than probabilities
keeps the order of the extreme scores, which is where the sure bands lie. Everything is saved without pickles
(JSON, numpy ``.npz``, model2vec's safetensors), so loading a student runs no code from the files.
"""

from __future__ import annotations

import functools
import itertools
import json
import re
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from scipy import sparse

from cockatoo_ml.registry import distillation as defaults

if TYPE_CHECKING:  # imported where used: serving a student loads only the one it needs
    from model2vec import StaticModel
    from sklearn.feature_extraction.text import TfidfVectorizer

CONFIG_FILE = "student.json"
HEAD_FILE = "head.npz"
STATIC_DIR = "static_model"
TFIDF_FILE = "tfidf.json"


class Features(Protocol):
    kind: str

    def transform(self, texts: Sequence[str]) -> np.ndarray | sparse.spmatrix: ...

    def save(self, folder: Path) -> None: ...


class TfidfFeatures:
    """Word 1-2-gram and character 2-5-gram TF-IDF, side by side, l2-normalised per text.

    scikit-learn fits the vocabularies and IDF weights, with our analyzers (how a text becomes n-grams: the same
    as its own ``word`` and ``char_wb`` ones); the transform is ours: ``TfidfVectorizer.transform`` spent ~15 ms
    per call validating its input, more than the transformer spends on a short text, while the n-gram counting
    itself takes microseconds. So a server loading the student never imports scikit-learn. Each word's character
    n-gram columns are cached (most words of a stream recur): 0.37 -> 0.12 ms per ToxicChat prompt, once warm."""

    kind = "tfidf"

    def __init__(self, vocabularies: Sequence[dict[str, int]], idf: Sequence[np.ndarray]) -> None:
        self.vocabularies = list(vocabularies)
        # Bounded: a stream of ever-new words (hostile input) costs what it would without a cache, no more memory.
        self._char_columns = functools.lru_cache(maxsize=defaults.TFIDF_WORD_CACHE)(self._char_columns_of)
        self.offsets = np.cumsum([0, *(len(v) for v in self.vocabularies)])  # word columns, then char columns
        self.idf = np.concatenate([np.asarray(weights, dtype=np.float32) for weights in idf])
        if len(self.idf) != self.offsets[-1]:
            raise ValueError(f"{len(self.idf)} IDF weights for {self.offsets[-1]} n-grams")

    @classmethod
    def fit(cls, texts: Sequence[str], max_features: int = defaults.TFIDF_MAX_FEATURES) -> TfidfFeatures:
        fitted = [vec.fit(texts) for vec in _tfidf_pair(max_features)]
        return cls([{t: int(i) for t, i in vec.vocabulary_.items()} for vec in fitted], [vec.idf_ for vec in fitted])

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        word_columns = self.vocabularies[0]
        indptr: list[int] = [0]
        columns: list[int] = []
        values: list[int] = []
        for text in texts:
            found = [column for column in map(word_columns.get, word_ngrams(text)) if column is not None]
            for word in _char_words(text):
                found.extend(self._char_columns(word))
            counts = Counter(found)
            columns.extend(counts)
            values.extend(counts.values())
            indptr.append(len(columns))
        cols, rows_end = np.asarray(columns, dtype=np.int64), np.asarray(indptr, dtype=np.int64)
        vals = (1.0 + np.log(np.asarray(values, dtype=np.float32))) * self.idf[cols]  # sublinear tf x idf
        row: np.ndarray = np.repeat(np.arange(len(texts)), np.diff(rows_end))
        norms = np.sqrt(np.bincount(row, weights=vals * vals, minlength=len(texts)))
        vals = (vals / np.maximum(norms, 1e-12)[row]).astype(np.float32)  # unit length over both parts together
        return sparse.csr_matrix((vals, cols, rows_end), shape=(len(texts), int(self.offsets[-1])))

    def _char_columns_of(self, word: str) -> tuple[int, ...]:
        """The columns of one word's character n-grams: most words of a stream recur, so this is cached."""
        chars, offset = self.vocabularies[1], int(self.offsets[1])
        return tuple(column + offset for column in map(chars.get, _word_char_ngrams(word)) if column is not None)

    def save(self, folder: Path) -> None:
        idf = np.split(self.idf, self.offsets[1:-1])
        payload = [{"vocabulary": v, "idf": w.tolist()} for v, w in zip(self.vocabularies, idf, strict=True)]
        (folder / TFIDF_FILE).write_text(json.dumps(payload))

    @classmethod
    def load(cls, folder: Path) -> TfidfFeatures:
        payload = json.loads((folder / TFIDF_FILE).read_text())
        return cls([part["vocabulary"] for part in payload], [np.asarray(part["idf"]) for part in payload])


_WORD = re.compile(r"(?u)\b\w\w+\b")  # scikit-learn's default token_pattern
_WHITE_SPACES = re.compile(r"\s\s+")


def word_ngrams(text: str) -> list[str]:
    """Lower-cased words of two or more characters and their pairs: scikit-learn's ``word`` analyzer, (1, 2)."""
    words = _WORD.findall(text.lower())
    return words + [" ".join(pair) for pair in itertools.pairwise(words)]


def char_wb_ngrams(text: str) -> list[str]:
    """Character 2-5-grams inside space-padded words: scikit-learn's ``char_wb`` analyzer, (2, 5)."""
    return [gram for word in _char_words(text) for gram in _word_char_ngrams(word)]


def _char_words(text: str) -> list[str]:
    return _WHITE_SPACES.sub(" ", text.lower()).split()


def _word_char_ngrams(word: str, low: int = 2, high: int = 5) -> list[str]:
    grams: list[str] = []
    word = f" {word} "
    for n in range(low, high + 1):
        grams.extend(word[i : i + n] for i in range(max(len(word) - n + 1, 1)))
        if len(word) <= n:  # a short word counts once, whole
            break
    return grams


def _tfidf_pair(max_features: int | None) -> tuple[TfidfVectorizer, TfidfVectorizer]:
    from sklearn.feature_extraction.text import TfidfVectorizer

    # Half the feature budget each; sublinear tf so one repeated word cannot dominate a text.
    share = max_features // 2 if max_features else None
    common = {"sublinear_tf": True, "max_features": share, "dtype": np.float32}
    return (
        TfidfVectorizer(analyzer=word_ngrams, min_df=1, **common),
        TfidfVectorizer(analyzer=char_wb_ngrams, min_df=2, **common),
    )


class StaticFeatures:
    """model2vec static embeddings (mean of token vectors, unit length)."""

    kind = "static"

    def __init__(self, model: StaticModel) -> None:
        self.model = model

    @classmethod
    def distill(
        cls, model_dir: Path, pca_dims: int = defaults.STATIC_PCA_DIMS, token_pattern: str | None = None
    ) -> StaticFeatures:
        from model2vec.distill import distill

        extra: dict[str, Any] = {"token_remove_pattern": token_pattern} if token_pattern else {}
        # A classification checkpoint loads as its bare encoder (the head is left out): the vectors are the
        # fine-tuned encoder's.
        return cls(distill(model_name=str(model_dir), pca_dims=pca_dims, **extra))

    def transform(self, texts: Sequence[str]) -> np.ndarray:
        # No worker processes: a server scores a few texts at a time, and forking there would copy the model.
        return self.model.encode(list(texts), use_multiprocessing=False).astype(np.float32)

    def save(self, folder: Path) -> None:
        self.model.save_pretrained(str(folder / STATIC_DIR))

    @classmethod
    def load(cls, folder: Path) -> StaticFeatures:
        from model2vec import StaticModel

        if not (folder / STATIC_DIR / "config.json").is_file():
            raise FileNotFoundError(f"{folder / STATIC_DIR} has no config.json")
        return cls(StaticModel.from_pretrained(folder / STATIC_DIR))


FEATURES: dict[str, type[StaticFeatures] | type[TfidfFeatures]] = {"static": StaticFeatures, "tfidf": TfidfFeatures}


def logits(probs: np.ndarray) -> np.ndarray:
    clipped = np.clip(probs, defaults.LOGIT_CLIP, 1 - defaults.LOGIT_CLIP)
    return np.log(clipped / (1 - clipped))


class Student:
    """Features plus one linear head per label: ``sigmoid(features @ coef.T + intercept)``."""

    def __init__(self, features: Features, coef: np.ndarray, intercept: np.ndarray, labels: Sequence[str]) -> None:
        self.features = features
        self.coef = np.asarray(coef, dtype=np.float32)
        self.intercept = np.asarray(intercept, dtype=np.float32)
        self.labels = tuple(labels)
        if self.coef.shape[0] != len(self.labels) or self.intercept.shape != (len(self.labels),):
            raise ValueError(f"head has shape {self.coef.shape} for {len(self.labels)} labels")

    @property
    def kind(self) -> str:
        return self.features.kind

    @classmethod
    def fit(
        cls,
        features: Features,
        texts: Sequence[str],
        teacher: np.ndarray,
        labels: Sequence[str],
        alpha: float = defaults.RIDGE_ALPHA,
    ) -> Student:
        from sklearn.linear_model import Ridge

        head = Ridge(alpha=alpha).fit(features.transform(texts), logits(teacher))
        return cls(features, np.atleast_2d(head.coef_), np.atleast_1d(head.intercept_), labels)

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Per text and label, the student's probability (label order of the teacher)."""
        if not texts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        logit = np.asarray(self.features.transform(texts) @ self.coef.T + self.intercept, dtype=np.float64)
        with np.errstate(over="ignore"):  # exp(710+) is inf, and 1 / (1 + inf) the right 0
            return 1.0 / (1.0 + np.exp(-logit))  # the sigmoid, without importing scipy.special (~8 MB) to serve

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.features.save(folder)
        np.savez(folder / HEAD_FILE, coef=self.coef, intercept=self.intercept)
        (folder / CONFIG_FILE).write_text(json.dumps({"kind": self.kind, "labels": list(self.labels)}, indent=2) + "\n")

    @classmethod
    def load(cls, folder: Path) -> Student:
        """Raises OSError / ValueError / KeyError when a file is missing or unreadable (the caller names the fix)."""
        config = json.loads((folder / CONFIG_FILE).read_text())
        kind = config["kind"]
        if kind not in FEATURES:
            raise ValueError(f"unknown student kind {kind!r} (known: {', '.join(FEATURES)})")
        with np.load(folder / HEAD_FILE, allow_pickle=False) as head:
            coef, intercept = head["coef"], head["intercept"]
        return cls(FEATURES[kind].load(folder), coef, intercept, config["labels"])
