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

import itertools
import json
import re
import sys
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Sequence
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
    n-gram columns are cached (most words of a stream recur): 0.37 -> 0.12 ms per ToxicChat prompt, once warm;
    the cache is bounded in bytes (``WordColumnsCache``), whatever the words."""

    kind = "tfidf"

    def __init__(
        self,
        vocabularies: Sequence[dict[str, int]],
        idf: Sequence[np.ndarray],
        word_cache_bytes: int = defaults.TFIDF_WORD_CACHE_MB * 2**20,
    ) -> None:
        self.vocabularies = list(vocabularies)
        self._char_columns = WordColumnsCache(self._char_columns_of, word_cache_bytes)
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

    def _char_columns_of(self, word: str) -> array[int]:
        """The columns of one word's character n-grams (4 bytes each: a tuple of ints took 36 bytes per column)."""
        chars, offset = self.vocabularies[1], int(self.offsets[1])
        return array("i", [column + offset for column in map(chars.get, _word_char_ngrams(word)) if column is not None])

    def save(self, folder: Path) -> None:
        idf = np.split(self.idf, self.offsets[1:-1])
        payload = [{"vocabulary": v, "idf": w.tolist()} for v, w in zip(self.vocabularies, idf, strict=True)]
        (folder / TFIDF_FILE).write_text(json.dumps(payload))

    @classmethod
    def load(cls, folder: Path, word_cache_bytes: int = defaults.TFIDF_WORD_CACHE_MB * 2**20) -> TfidfFeatures:
        payload = json.loads((folder / TFIDF_FILE).read_text())
        vocabularies, idf = [part["vocabulary"] for part in payload], [np.asarray(part["idf"]) for part in payload]
        return cls(vocabularies, idf, word_cache_bytes)


class WordColumnsCache:
    """``compute(word)``, remembered for the most recently used words whose entries fit in ``max_bytes``.

    Bounded in bytes, not entries: with 16,384 entries allowed, one 60,000-letter word took ~3.4 MB, and 200
    requests of such words grew a server from 602 to 1,291 MB. Each entry counts its word, its columns and the
    dictionary's share (``ENTRY_OVERHEAD``), at least what Python allocates for it (tested with tracemalloc). A
    word longer than ``max_word_chars`` is no word of any language and is computed each time, never cached, so
    junk cannot push out the words that recur. ``functools.lru_cache`` counts entries only, and cachetools'
    ``getsizeof`` sees values but not keys (here the key can be the larger part). Safe to call from several
    threads (the student runs on the server's worker threads)."""

    ENTRY_OVERHEAD = 192  # bytes per entry for the ordered dictionary's slot and link (tracemalloc: 130-160)

    def __init__(
        self,
        compute: Callable[[str], array[int]],
        max_bytes: int,
        max_word_chars: int = defaults.TFIDF_CACHED_WORD_CHARS,
    ) -> None:
        self._compute = compute
        self.max_bytes = max(0, int(max_bytes))
        self.max_word_chars = max_word_chars
        self._entries: OrderedDict[str, array[int]] = OrderedDict()
        self._lock = threading.Lock()
        self.bytes = 0  # the entries' bytes as counted by ``entry_bytes``; never above ``max_bytes``
        self.hits = self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def entry_bytes(cls, word: str, columns: array[int]) -> int:
        return sys.getsizeof(word) + sys.getsizeof(columns) + cls.ENTRY_OVERHEAD

    def __call__(self, word: str) -> array[int]:
        with self._lock:
            columns = self._entries.get(word)
            if columns is not None:
                self._entries.move_to_end(word)
                self.hits += 1
                return columns
            self.misses += 1
        columns = self._compute(word)  # outside the lock: other threads' words need not wait for this one
        size = self.entry_bytes(word, columns)
        if len(word) > self.max_word_chars or size > self.max_bytes:
            return columns
        with self._lock:
            if word not in self._entries:  # another thread may have added it meanwhile
                self._entries[word] = columns
                self.bytes += size
                while self.bytes > self.max_bytes:
                    old_word, old_columns = self._entries.popitem(last=False)
                    self.bytes -= self.entry_bytes(old_word, old_columns)
        return columns


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
    def load(cls, folder: Path, word_cache_bytes: int = defaults.TFIDF_WORD_CACHE_MB * 2**20) -> Student:
        """Raises OSError / ValueError / KeyError when a file is missing or unreadable (the caller names the fix).
        ``word_cache_bytes`` bounds a TF-IDF student's word cache (``WordColumnsCache``)."""
        config = json.loads((folder / CONFIG_FILE).read_text())
        kind = config["kind"]
        if kind not in FEATURES:
            raise ValueError(f"unknown student kind {kind!r} (known: {', '.join(FEATURES)})")
        with np.load(folder / HEAD_FILE, allow_pickle=False) as head:
            coef, intercept = head["coef"], head["intercept"]
        features = TfidfFeatures.load(folder, word_cache_bytes) if kind == "tfidf" else FEATURES[kind].load(folder)
        return cls(features, coef, intercept, config["labels"])
