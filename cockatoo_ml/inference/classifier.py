"""The served model: loaded once, scores many texts per forward pass.

Texts longer than the model's window are split into overlapping windows
and each label keeps its maximum over the windows, so nothing is silently cut off. How windows become forward
passes depends on the precision path (``runtime.Precision``):

- float32: the windows of a call are sorted by length and packed into passes under a padded-token budget,
  padded to the longest in each: little padding, and float32 keeps a row's numbers within ~1e-6 whatever the
  pass's shape.
- bucketed bfloat16: bfloat16 does not (a text moved by up to 6e-3 with its batch-mates), so every window is
  padded to the smallest of a few bucket lengths that holds it, and each pass is exactly
  ``max(1, max_batch_tokens // bucket)`` rows of one bucket, filled up with empty windows (``fixed_rows``): the
  shapes a window's numbers go through depend on its own length alone.

Passes may run on several threads at once, never more than ``parallel_passes`` in all, however many threads call
``score``; and a caller can be told about each text as soon as its last window is scored. The tokenizer is called
by one thread at a time. How the model uses the machine (precision, threads, memory) is ``runtime.py``'s
business; whether the fast path may serve a model is ``parity.py``'s.

``score`` also takes windows already cut (``cut``), as tuples of token ids: the cascade sends the transformer
only the windows of a text its student is not sure of.
"""

from __future__ import annotations

import bisect
import itertools
import json
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from transformers import BatchEncoding, PreTrainedModel, PreTrainedTokenizerBase

from cockatoo_ml.artifacts import SETTINGS_FILE, load_thresholds
from cockatoo_ml.errors import CockatooError, ModelLoadError
from cockatoo_ml.inference.parity import choose_precision
from cockatoo_ml.inference.runtime import BUCKETED_BF16, INT8, Precision, load_in_precision, precision_of
from cockatoo_ml.modeling import MeanPoolingClassifier
from cockatoo_ml.registry.serving import (
    BUCKET_TOKENS,
    FIXED_ROWS,
    MAX_WINDOW_TOKENS,
    MICRO_BATCH_TOKENS,
    WINDOW_OVERLAP,
)

log = logging.getLogger(__name__)

SINGLE_LABEL = "single_label_classification"
EXPECTED_FILES = "config.json (with id2label), model weights and tokenizer files, as written by train_text.py"


class UnknownLabelError(CockatooError):
    """A request named a label the model does not have."""

    def __init__(self, label: str, known: Sequence[str]) -> None:
        super().__init__(f"unknown label {label!r}; this model's labels are {', '.join(known)}")
        self.label = label


@dataclass(frozen=True)
class TextScore:
    """Per-label probabilities for one text (label order of the model) and how many windows it took."""

    scores: tuple[float, ...]
    windows: int


ReadyCallback = Callable[[list[int], list[TextScore]], None]

# What ``TextClassifier.score`` takes: a text (cut into windows there), or one window already cut by ``cut``
# (its token ids, special tokens included), scored as it is.
ScoreItem = str | tuple[int, ...]


@dataclass(frozen=True)
class WindowCut:
    """Texts cut into the transformer's windows: each window's token ids (special tokens included), the text it
    belongs to (a text's windows are consecutive) and, when asked for, the characters it covers."""

    ids: list[tuple[int, ...]]
    owner: np.ndarray  # per window: the index of its text
    spans: list[tuple[int, int]] | None = None  # per window: [start, end) in its text

    def window_texts(self, texts: Sequence[str]) -> list[str]:
        """Each window's own text: the whole text when it is the text's only window, else its characters."""
        if self.spans is None:
            raise ValueError("this cut was made without spans (cut(texts, spans=True))")
        counts = np.bincount(self.owner, minlength=len(texts))
        return [
            texts[owner] if counts[owner] == 1 else texts[owner][start:end]
            for owner, (start, end) in zip(self.owner.tolist(), self.spans, strict=True)
        ]


class Pass(NamedTuple):
    """One forward pass: the windows it scores (indices), and the shape they are padded to."""

    windows: list[int]
    rows: int
    width: int


def fit_buckets(buckets: Sequence[int], window: int) -> tuple[int, ...]:
    """The bucket lengths for a model's ``window``: the configured ones below it, and the window itself."""
    return (*sorted({bucket for bucket in buckets if 0 < bucket < window}), window)


def bucket_passes(
    lengths: Sequence[int], buckets: Sequence[int], max_tokens: int, fixed_rows: bool = True
) -> list[Pass]:
    """Fixed-shape passes: each window (by its length) goes to the smallest bucket that holds it, and a bucket's
    windows, in the order given, fill passes of ``max(1, max_tokens // bucket)`` rows (``fixed_rows``; else a pass
    has as many rows as windows); shortest buckets first. ``buckets`` ascending, the last one at least the longest
    window."""
    members: dict[int, list[int]] = {}
    for index, length in enumerate(lengths):
        slot = bisect.bisect_left(buckets, length)
        if slot == len(buckets):
            raise ValueError(f"a window of {length} tokens is longer than the model's window ({buckets[-1]})")
        members.setdefault(buckets[slot], []).append(index)
    passes: list[Pass] = []
    for width in sorted(members):
        rows = max(1, max_tokens // width)
        chosen = members[width]
        for start in range(0, len(chosen), rows):
            windows = chosen[start : start + rows]
            passes.append(Pass(windows, rows if fixed_rows else len(windows), width))
    return passes


class TextClassifier:
    """A sequence-classification checkpoint with its tokenizer, label names and tuned thresholds."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: PreTrainedTokenizerBase,
        *,
        labels: Sequence[str],
        thresholds: Mapping[str, float],
        multi_label: bool,
        window: int,
        window_overlap: float,
        max_batch_tokens: int,
        parallel_passes: int = 1,
        bucket_tokens: Sequence[int] = BUCKET_TOKENS,
        fixed_rows: bool = FIXED_ROWS,
        precision: Precision | None = None,
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.labels = tuple(labels)
        self.thresholds = dict(thresholds)
        self.multi_label = multi_label
        self.window = window
        self._prefix, self._suffix = _special_tokens_around(tokenizer)
        self.content = window - len(self._prefix) - len(self._suffix)  # text tokens per window
        self.stride = min(int(self.content * window_overlap), self.content - 1)  # tokens shared by neighbours
        self.max_batch_tokens = max(max_batch_tokens, window)  # one full window must always fit
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        self.buckets = fit_buckets(bucket_tokens, window)
        self.fixed_rows = fixed_rows
        self._empty = (*self._prefix, *self._suffix)  # a window of no text: fills a bucketed pass's spare rows
        self.precision = precision or Precision(precision_of(model), "as loaded")
        self.device = next(model.parameters()).device
        # Forward passes of one call run on this many threads at once (the weights are shared, torch releases
        # the GIL): on a CPU one pass of a small encoder does not keep several cores busy. The same number bounds
        # the passes of all calls together: the server's batcher calls score() from several threads, and each
        # call would otherwise add its own passes to the pool's (the thread plan's cores would be oversubscribed).
        self.parallel_passes = max(1, parallel_passes)
        self._passes = threading.BoundedSemaphore(self.parallel_passes)
        # A Hugging Face fast tokenizer is not safe to call from two threads at once (its Rust state is borrowed
        # mutably when padding or truncation changes: "RuntimeError: Already borrowed"); the server tokenizes on
        # the batcher's threads and on request threads (token budget, cascade).
        self._tokenizer_lock = threading.Lock()
        self._pool = (
            ThreadPoolExecutor(self.parallel_passes, thread_name_prefix="cockatoo-forward")
            if self.parallel_passes > 1
            else None
        )

    @property
    def bucketed(self) -> bool:
        """Whether passes have fixed shapes under bfloat16 autocast (else: length-sorted, in the weights' dtype)."""
        return self.precision.path == BUCKETED_BF16

    @property
    def dtype(self) -> str:
        """The precision of the matrix products."""
        return "bfloat16" if self.bucketed else precision_of(self.model)

    @classmethod
    def load(
        cls,
        model_dir: Path,
        *,
        max_window_tokens: int = MAX_WINDOW_TOKENS,
        window_overlap: float = WINDOW_OVERLAP,
        max_batch_tokens: int = MICRO_BATCH_TOKENS,
        torch_threads: int = 0,
        parallel_passes: int = 1,
        dtype: str = "auto",
        bucket_tokens: Sequence[int] = BUCKET_TOKENS,
        fixed_rows: bool = FIXED_ROWS,
    ) -> TextClassifier:
        """Load a model directory, or raise ``ModelLoadError`` saying what was expected where.

        ``dtype``: auto (the bucketed bfloat16 path when ``parity.choose_precision`` allows it, else float32),
        float32, bfloat16 (the bucketed path unchecked) or int8 (CPU only)."""
        from transformers import AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a server's log is no place for progress bars

        model_dir = Path(model_dir)
        if not (model_dir / "config.json").is_file():
            what = "does not exist" if not model_dir.exists() else "has no config.json"
            raise ModelLoadError(
                f"model directory {model_dir.resolve()} {what}; expected {EXPECTED_FILES}. "
                "Train one (python train_text.py) or point COCKATOO_MODEL_DIR at one"
            )
        if torch_threads:
            torch.set_num_threads(torch_threads)
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            tokenizer = AutoTokenizer.from_pretrained(model_dir)
            model = load_in_precision(model_dir, dtype, device)
        except (OSError, ValueError, KeyError, RuntimeError, json.JSONDecodeError) as exc:
            raise ModelLoadError(
                f"cannot load the model in {model_dir.resolve()} ({first_line(exc)}); expected {EXPECTED_FILES}"
            ) from None
        if not getattr(tokenizer, "is_fast", False):
            raise ModelLoadError(f"{model_dir} has no fast tokenizer (tokenizer.json), needed to split long texts")
        config = model.config
        labels = [config.id2label[i] for i in range(config.num_labels)]
        try:
            thresholds = load_thresholds(model_dir, labels)
        except (ValueError, TypeError, AttributeError) as exc:
            raise ModelLoadError(
                f"{model_dir / 'thresholds.json'} is not a {{label: number}} JSON object ({exc})"
            ) from None
        window = min(max_window_tokens, _model_window(model, tokenizer, model_dir))
        multi_label = config.problem_type != SINGLE_LABEL
        model = model.to(device)
        log.info(
            "loaded %s: labels %s, %s, window %d tokens, weights in %s on %s",
            model_dir,
            labels,
            "sigmoid per label" if multi_label else "softmax",
            window,
            model.dtype,
            device,
        )
        asked = {
            "bfloat16": Precision(BUCKETED_BF16, "dtype bfloat16 asked for: the bucketed path, without parity check"),
            "int8": Precision(INT8, "dtype int8 asked for: lossy, and scores depend on batch-mates"),
        }
        classifier = cls(
            model,
            tokenizer,
            labels=labels,
            thresholds=thresholds,
            multi_label=multi_label,
            window=window,
            window_overlap=window_overlap,
            max_batch_tokens=max_batch_tokens,
            parallel_passes=parallel_passes,
            bucket_tokens=bucket_tokens,
            fixed_rows=fixed_rows,
            precision=asked.get(dtype, Precision(precision_of(model), f"dtype {dtype} asked for")),
        )
        if dtype == "auto":
            classifier.precision = choose_precision(classifier, model_dir)
        return classifier

    def resolve_thresholds(self, override: float | Mapping[str, float] | None) -> dict[str, float]:
        """A request's ``threshold``: one number for every label, a partial map over the tuned ones, or None."""
        if override is None:
            return dict(self.thresholds)
        if isinstance(override, Mapping):
            for label in override:
                if label not in self.thresholds:
                    raise UnknownLabelError(label, self.labels)
            return {**self.thresholds, **override}
        return {label: float(override) for label in self.labels}

    def score(self, texts: Sequence[ScoreItem], ready: ReadyCallback | None = None) -> list[TextScore]:
        """Score texts (or windows already cut, see ``ScoreItem``) in as few, tightly packed forward passes as the
        token budget allows.

        ``ready(indices, scores)``, when given, is called (on this thread) as soon as some texts are fully scored,
        before the rest: a short text need not wait for a long one scored in the same call."""
        if not texts:
            return []
        windows, owner = self._windows(texts)
        counts = np.bincount(owner, minlength=len(texts))
        first_window = np.concatenate(([0], np.cumsum(counts)[:-1]))  # a text's windows are consecutive
        missing = counts.copy()
        window_probs: np.ndarray = np.empty((len(windows), len(self.labels)), dtype=np.float32)
        results: list[TextScore | None] = [None] * len(texts)

        def record(chunk: list[int], probs: np.ndarray) -> None:
            window_probs[chunk] = probs
            done: list[int] = []
            done_scores: list[TextScore] = []
            for text in owner[chunk]:
                missing[text] -= 1
                if missing[text] == 0:  # a label fires if any window shows it
                    row = window_probs[first_window[text] : first_window[text] + counts[text]].max(axis=0)
                    score = TextScore(tuple(map(float, row)), int(counts[text]))
                    results[text] = score
                    done.append(int(text))
                    done_scores.append(score)
            if ready is not None and done:
                ready(done, done_scores)

        passes = self._layout(windows)
        if self._pool is None or len(passes) == 1:
            for one in passes:  # shortest first: most texts are ready early
                record(one.windows, self._pass([windows[i] for i in one.windows], one.rows, one.width))
        else:  # longest first, so that the threads finish together
            running = {
                self._pool.submit(self._pass, [windows[i] for i in one.windows], one.rows, one.width): one.windows
                for one in reversed(passes)
            }
            for finished in as_completed(running):
                record(running[finished], finished.result())
        return results  # type: ignore[return-value]  # every text has been recorded

    def cut(self, texts: Sequence[str], spans: bool = False) -> WindowCut:
        """Every text's token ids cut into overlapping windows (special tokens added to each); with ``spans``, the
        characters each window covers (a fast tokenizer's offsets). Done here rather than with the tokenizer's
        ``return_overflowing_tokens``, which returned fewer windows in some transformers releases (5.17): a text
        must never be silently cut."""
        content, step = self.content, self.content - self.stride
        encoded = self.encode(texts, offsets=spans)
        ids_of: list[tuple[int, ...]] = []
        owner: list[int] = []
        covered: list[tuple[int, int]] = []
        for index, ids in enumerate(encoded["input_ids"]):
            offsets = encoded["offset_mapping"][index] if spans else None
            start = 0
            while True:
                ids_of.append((*self._prefix, *ids[start : start + content], *self._suffix))
                owner.append(index)
                if offsets is not None:
                    last = min(start + content, len(ids)) - 1
                    # A text of no tokens (only characters the tokenizer drops) is one empty window: all of it.
                    covered.append((offsets[start][0], offsets[last][1]) if last >= start else (0, len(texts[index])))
                if start + content >= len(ids):
                    break
                start += step
        return WindowCut(ids_of, np.asarray(owner, dtype=np.int64), covered if spans else None)

    def encode(self, texts: Sequence[str], offsets: bool = False) -> BatchEncoding:
        """The tokenizer's ids (no special tokens) and, with ``offsets``, character offsets of ``texts``; one
        thread at a time (see ``__init__``)."""
        with self._tokenizer_lock:
            return self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=offsets, verbose=False)

    def count_tokens(self, text: str) -> int:
        """A text's tokens, special tokens not counted (the token budget's measure)."""
        return len(self.encode([text])["input_ids"][0])

    def _pass(self, batch: Sequence[Sequence[int]], rows: int, width: int) -> np.ndarray:
        """``_forward`` once one of the ``parallel_passes`` slots is free, whichever thread asks."""
        with self._passes:
            return self._forward(batch, rows, width)

    def _windows(self, items: Sequence[ScoreItem]) -> tuple[list[tuple[int, ...]], np.ndarray]:
        """The windows to score and the item each belongs to: texts are cut here, windows cut before kept whole."""
        texts = [item for item in items if isinstance(item, str)]
        cut = self.cut(texts) if texts else WindowCut([], np.zeros(0, dtype=np.int64))
        if len(texts) == len(items):
            return cut.ids, cut.owner
        # Every text has at least one window and a text's windows are consecutive: one group per text, in order.
        per_text = (
            [ids for ids, _ in group]
            for _, group in itertools.groupby(zip(cut.ids, cut.owner.tolist(), strict=True), key=lambda w: w[1])
        )
        windows: list[tuple[int, ...]] = []
        owner: list[int] = []
        for index, item in enumerate(items):
            of_item = next(per_text) if isinstance(item, str) else [tuple(item)]
            windows.extend(of_item)
            owner.extend([index] * len(of_item))
        return windows, np.asarray(owner, dtype=np.int64)

    def _layout(self, windows: Sequence[Sequence[int]]) -> list[Pass]:
        lengths = [len(ids) for ids in windows]
        if self.bucketed:
            return bucket_passes(lengths, self.buckets, self.max_batch_tokens, self.fixed_rows)
        chunks = self._pack(sorted(range(len(windows)), key=lengths.__getitem__), windows)
        return [Pass(chunk, len(chunk), max(lengths[i] for i in chunk)) for chunk in chunks]

    def _pack(self, order: list[int], windows: Sequence[Sequence[int]]) -> list[list[int]]:
        """Consecutive runs of the length-sorted windows whose padded size stays within the token budget."""
        chunks: list[list[int]] = []
        current: list[int] = []
        for index in order:
            longest = len(windows[index])  # sorted ascending: the newcomer is the longest
            if current and (len(current) + 1) * longest > self.max_batch_tokens:
                chunks.append(current)
                current = []
            current.append(index)
        if current:
            chunks.append(current)
        return chunks

    @torch.inference_mode()  # here, not on score(): the mode is per thread, and passes may run on pool threads
    def _forward(self, batch: Sequence[Sequence[int]], rows: int, width: int) -> np.ndarray:
        """Probabilities of ``batch``'s windows, padded to ``rows`` x ``width`` (spare rows: empty windows, so that
        no row is all padding)."""
        input_ids = torch.full((rows, width), self.pad_id, dtype=torch.long)
        attention_mask = torch.zeros((rows, width), dtype=torch.long)
        for row, ids in enumerate(itertools.chain(batch, itertools.repeat(self._empty, rows - len(batch)))):
            input_ids[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            attention_mask[row, : len(ids)] = 1
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bucketed):
            logits = self.model(
                input_ids=input_ids.to(self.device), attention_mask=attention_mask.to(self.device)
            ).logits
        logits = logits[: len(batch)].float()
        probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
        return probs.cpu().numpy()


def _special_tokens_around(tokenizer: PreTrainedTokenizerBase) -> tuple[list[int], list[int]]:
    """The special tokens the tokenizer puts before and after one sequence ([CLS] / [SEP], <s> / </s>, ...),
    read off a probe text so it works for any single-sequence template."""
    bare = tokenizer("a", add_special_tokens=False)["input_ids"]
    full = tokenizer("a", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start : start + len(bare)] == bare:
            return full[:start], full[start + len(bare) :]
    raise ModelLoadError("the tokenizer's special-token template could not be read; it cannot split long texts")


def first_line(exc: BaseException) -> str:
    """An exception as one short line, for messages that must stay one line."""
    text = str(exc).strip()
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _model_window(model: PreTrainedModel | MeanPoolingClassifier, tokenizer: object, model_dir: Path) -> int:
    """Longest input to score at once: the length the model was trained on (training_settings.json), else the
    tokenizer's limit, capped by the position embeddings."""
    trained = _trained_max_length(model_dir)
    config = getattr(model.config, "encoder", None) or model.config  # a mean-pooling model nests its encoder's
    limit = int(getattr(config, "max_position_embeddings", 0) or 0)
    if limit and getattr(config, "model_type", "").endswith("roberta"):
        limit -= (config.pad_token_id or 0) + 1  # RoBERTa positions start after the padding index
    tokenizer_limit = int(getattr(tokenizer, "model_max_length", 0) or 0)
    candidates = [n for n in (limit, tokenizer_limit, trained) if 0 < n < 1_000_000]  # "no limit" is ~1e30
    return min(candidates) if candidates else MAX_WINDOW_TOKENS


def _trained_max_length(model_dir: Path) -> int:
    path = model_dir / SETTINGS_FILE
    try:
        return int(json.loads(path.read_text()).get("max_length") or 0) if path.is_file() else 0
    except (ValueError, TypeError, AttributeError):
        log.warning("ignoring unreadable %s", path)
        return 0
