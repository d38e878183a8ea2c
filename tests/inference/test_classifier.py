"""TextClassifier: loading, label names, thresholds, batched scoring, windows over long texts and the bucketed
bfloat16 path's fixed-shape passes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from cockatoo_ml.errors import ModelLoadError
from cockatoo_ml.inference.classifier import Pass, TextClassifier, UnknownLabelError, bucket_passes, fit_buckets
from tests.conftest import varied_texts

TEXTS = [
    "hi",
    "Send 0.5 BTC to this wallet and we will double it within one hour guaranteed",
    "What time does the library open on Saturday?",
    "you are a worthless idiot and everyone hates you, " * 3,
]


def reference_probs(classifier: TextClassifier, text: str) -> np.ndarray:
    """One window, no batching, no padding: what the scores must equal for a short text."""
    inputs = classifier.tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        logits = classifier.model(input_ids=inputs["input_ids"]).logits[0]
    return (torch.sigmoid(logits) if classifier.multi_label else torch.softmax(logits, -1)).numpy()


def test_labels_and_thresholds_come_from_the_checkpoint(tiny_classifier: TextClassifier, labels) -> None:
    assert tiny_classifier.labels == labels
    assert tiny_classifier.thresholds == {"scam": 0.4, "violence": 0.5, "nsfw": 0.6, "harassment": 0.5}
    assert tiny_classifier.multi_label
    assert tiny_classifier.window == 64  # the fixture's position limit, below the 512 default cap


def test_short_texts_score_as_sigmoid_of_one_unpadded_pass(tiny_classifier: TextClassifier) -> None:
    results = tiny_classifier.score(TEXTS[:3])
    for text, result in zip(TEXTS[:3], results):
        assert result.windows == 1
        np.testing.assert_allclose(result.scores, reference_probs(tiny_classifier, text), atol=1e-5)


def test_packing_under_a_small_token_budget_changes_nothing(tiny_model_dir: Path) -> None:
    roomy = TextClassifier.load(tiny_model_dir, max_batch_tokens=100_000, dtype="float32")
    tight = TextClassifier.load(tiny_model_dir, max_batch_tokens=64, dtype="float32")  # one window per forward pass
    texts = TEXTS * 5
    for a, b in zip(roomy.score(texts), tight.score(texts)):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        assert a.windows == b.windows


def test_long_text_is_scored_over_overlapping_windows_taking_the_max(tiny_classifier: TextClassifier) -> None:
    long_text = " ".join(f"word{i}" for i in range(150))  # several hundred tokens, window is 64
    [result] = tiny_classifier.score([long_text])
    encoded = tiny_classifier.tokenizer(
        long_text, truncation=True, max_length=64, stride=tiny_classifier.stride, return_overflowing_tokens=True
    )
    windows = encoded["input_ids"]
    assert result.windows == len(windows) > 3
    assert tiny_classifier.stride > 0
    # consecutive windows share `stride` tokens (between the special tokens)
    assert windows[0][-1 - tiny_classifier.stride : -1] == windows[1][1 : 1 + tiny_classifier.stride]
    per_window = []
    for ids in windows:
        with torch.no_grad():
            per_window.append(torch.sigmoid(tiny_classifier.model(input_ids=torch.tensor([ids])).logits[0]).numpy())
    np.testing.assert_allclose(result.scores, np.max(per_window, axis=0), atol=1e-5)


def test_window_overlap_zero_means_no_shared_tokens(tiny_model_dir: Path) -> None:
    classifier = TextClassifier.load(tiny_model_dir, window_overlap=0.0, max_window_tokens=32)
    assert classifier.window == 32 and classifier.stride == 0
    [result] = classifier.score([" ".join(["token"] * 90)])  # 90 content tokens, 30 per window
    assert result.windows == 3


def test_single_label_model_uses_softmax(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "single"
    shutil.copytree(tiny_model_dir, model_dir)
    config = json.loads((model_dir / "config.json").read_text())
    config["problem_type"] = "single_label_classification"
    (model_dir / "config.json").write_text(json.dumps(config))
    classifier = TextClassifier.load(model_dir, dtype="float32")
    assert not classifier.multi_label
    [result] = classifier.score(["hello there"])
    assert sum(result.scores) == pytest.approx(1.0, abs=1e-5)
    np.testing.assert_allclose(result.scores, reference_probs(classifier, "hello there"), atol=1e-5)


def test_window_follows_the_length_the_model_was_trained_on(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "trained"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "training_settings.json").write_text(json.dumps({"max_length": 40}))
    assert TextClassifier.load(model_dir).window == 40
    assert TextClassifier.load(model_dir, max_window_tokens=16).window == 16


def test_a_mean_models_window_is_capped_by_its_encoders_positions(tiny_mean_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "mean"
    shutil.copytree(tiny_mean_model_dir, model_dir)
    tokenizer_config = json.loads((model_dir / "tokenizer_config.json").read_text())
    (model_dir / "tokenizer_config.json").write_text(json.dumps({**tokenizer_config, "model_max_length": 512}))
    assert TextClassifier.load(model_dir).window == 64  # config.json's encoder.max_position_embeddings


def test_resolve_thresholds(tiny_classifier: TextClassifier) -> None:
    assert tiny_classifier.resolve_thresholds(None) == tiny_classifier.thresholds
    assert tiny_classifier.resolve_thresholds(0.9) == dict.fromkeys(tiny_classifier.labels, 0.9)
    assert tiny_classifier.resolve_thresholds({"nsfw": 0.1}) == {**tiny_classifier.thresholds, "nsfw": 0.1}
    with pytest.raises(UnknownLabelError, match="'toxic'.*scam, violence, nsfw, harassment"):
        tiny_classifier.resolve_thresholds({"toxic": 0.1})


def test_missing_thresholds_file_means_one_half(tiny_model_dir: Path, tmp_path: Path) -> None:
    model_dir = tmp_path / "m"
    shutil.copytree(tiny_model_dir, model_dir)
    (model_dir / "thresholds.json").unlink()
    assert set(TextClassifier.load(model_dir).thresholds.values()) == {0.5}


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("missing", "does not exist; expected config.json"),
        ("empty", "has no config.json"),
        ("bad_config", "cannot load the model in"),
        ("no_weights", "cannot load the model in"),
        ("bad_thresholds", "thresholds.json is not a {label: number} JSON object"),
    ],
)
def test_a_broken_model_dir_is_one_clear_error(tiny_model_dir: Path, tmp_path: Path, damage: str, message: str) -> None:
    model_dir = tmp_path / "model"
    if damage != "missing":
        shutil.copytree(tiny_model_dir, model_dir)
    if damage == "empty":
        shutil.rmtree(model_dir)
        model_dir.mkdir()
    elif damage == "bad_config":
        (model_dir / "config.json").write_text("{not json")
    elif damage == "no_weights":
        (model_dir / "model.safetensors").unlink()
    elif damage == "bad_thresholds":
        (model_dir / "thresholds.json").write_text("[0.5]")
    with pytest.raises(ModelLoadError) as caught:
        TextClassifier.load(model_dir)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_ready_reports_each_text_once_short_ones_before_long_ones(tiny_classifier: TextClassifier) -> None:
    texts = [" ".join(["word"] * 400), "short", "a little longer text"]
    reported: list[tuple[list[int], list]] = []
    results = tiny_classifier.score(texts, lambda indices, scores: reported.append((indices, scores)))
    order = [index for indices, _ in reported for index in indices]
    assert sorted(order) == [0, 1, 2] and order[-1] == 0  # the long text's windows come last
    for indices, scores in reported:
        for index, score in zip(indices, scores):
            assert score == results[index]
    assert results == tiny_classifier.score(texts)


def test_parallel_passes_give_the_same_scores(tiny_model_dir: Path, tiny_classifier: TextClassifier) -> None:
    parallel = TextClassifier.load(tiny_model_dir, dtype="float32", max_batch_tokens=16, parallel_passes=2)
    texts = [*TEXTS, " ".join(["word"] * 300)]
    reported: list[int] = []
    results = parallel.score(texts, lambda indices, scores: reported.extend(indices))
    assert sorted(reported) == list(range(len(texts)))
    for got, want in zip(results, tiny_classifier.score(texts)):
        assert got.windows == want.windows
        np.testing.assert_allclose(got.scores, want.scores, atol=1e-5)
    assert {t.name for t in parallel._pool._threads} <= {"cockatoo-forward_0", "cockatoo-forward_1"}


def test_cut_windows_and_texts_score_alike_in_one_call(tiny_classifier: TextClassifier) -> None:
    """The cascade sends windows already cut, other requests whole texts; one batch may hold both."""
    long = " ".join(f"word{i}" for i in range(150))  # several of the tiny model's 64-token windows
    cut = tiny_classifier.cut([long, "a short one"], spans=True)
    assert len(cut.ids) > 2 and cut.owner.tolist() == [0] * (len(cut.ids) - 1) + [1]
    assert cut.spans[0][0] == 0 and cut.spans[-2][1] == len(long) and cut.spans[-1] == (0, 11)  # covers it all
    assert cut.window_texts([long, "a short one"])[-1] == "a short one"  # a one-window text is itself
    mixed = tiny_classifier.score(["hello there", cut.ids[1], long, cut.ids[0]])
    alone = tiny_classifier.score(["hello there", long])
    windows = tiny_classifier.score(list(cut.ids))
    assert [r.windows for r in mixed] == [1, 1, len(cut.ids) - 1, 1]
    assert np.allclose(mixed[0].scores, alone[0].scores, atol=1e-6) and np.allclose(mixed[2].scores, alone[1].scores, atol=1e-6)
    assert np.allclose(mixed[1].scores, windows[1].scores, atol=1e-6) and np.allclose(mixed[3].scores, windows[0].scores, atol=1e-6)
    # A text's score is the maximum over its windows, scored one by one.
    assert np.allclose(alone[1].scores, np.max([w.scores for w in windows[:-1]], axis=0), atol=1e-6)


class Overlap:
    """Wraps a callable and records how many calls were inside it at once (each lingers a little, so calls that
    may overlap do)."""

    def __init__(self, inner, linger_s: float = 0.01) -> None:  # type: ignore[no-untyped-def]
        import threading

        self.inner, self.linger_s = inner, linger_s
        self.inside = self.most = self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        import time

        with self._lock:
            self.inside += 1
            self.calls += 1
            self.most = max(self.most, self.inside)
        try:
            time.sleep(self.linger_s)
            return self.inner(*args, **kwargs)
        finally:
            with self._lock:
                self.inside -= 1


def call_together(calls: list) -> list:  # type: ignore[type-arg]
    """Run each zero-argument call on its own thread, all at once; their results in order."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(calls)) as pool:
        return [future.result() for future in [pool.submit(call) for call in calls]]


def test_no_more_forward_passes_at_once_than_parallel_passes_whoever_calls(tiny_model_dir: Path) -> None:
    """Several threads calling score() (the batcher's workers) share the classifier's limit: calls of one pass run
    it on their own thread, calls of many on the pool, and together they never exceed ``parallel_passes``."""
    classifier = TextClassifier.load(tiny_model_dir, dtype="float32", max_batch_tokens=16, parallel_passes=2)
    spy = classifier._forward = Overlap(classifier._forward)  # type: ignore[method-assign]
    many = [*TEXTS, " ".join(["word"] * 100)]  # several passes under a 16-token budget
    results = call_together([lambda: classifier.score(many) for _ in range(3)] + [lambda: classifier.score(["hi"])] * 3)
    assert spy.most == 2 and spy.calls > 6
    expected = classifier.score(many)
    assert all(result == expected for result in results[:3])


def test_the_tokenizer_is_called_by_one_thread_at_a_time(tiny_model_dir: Path) -> None:
    """A fast tokenizer must not be entered by two threads at once (huggingface/tokenizers#537): cutting texts
    into windows and counting tokens, from many threads, take turns; the answers are those of one thread."""
    classifier = TextClassifier.load(tiny_model_dir, dtype="float32")
    spy = classifier.tokenizer = Overlap(classifier.tokenizer)  # type: ignore[assignment]
    long = " ".join(f"word{i}" for i in range(150))
    expected_cut, expected_count = classifier.cut([long, *TEXTS], spans=True), classifier.count_tokens(long)
    results = call_together([lambda: classifier.cut([long, *TEXTS], spans=True)] * 4
                            + [lambda: classifier.count_tokens(long)] * 4)
    assert spy.most == 1 and spy.calls == 10
    assert all(cut.ids == expected_cut.ids and cut.spans == expected_cut.spans for cut in results[:4])
    assert results[4:] == [expected_count] * 4


def test_buckets_fit_the_models_window() -> None:
    assert fit_buckets((16, 32, 64, 128, 256, 512), 128) == (16, 32, 64, 128)
    assert fit_buckets((64, 16, 32, 16), 100) == (16, 32, 64, 100)  # any order, repeats; the window always last
    assert fit_buckets((16, 32), 8) == (8,)


def test_bucket_passes_on_hand_made_lengths() -> None:
    lengths = [3, 16, 17, 100, 5, 40, 128, 2, 9, 12, 70]
    passes = bucket_passes(lengths, (16, 32, 64, 128), max_tokens=64)
    # 16: 4 rows a pass, 32: 2, 64: 1, 128: still 1 (a full window always fits); shortest buckets first
    assert passes == [
        Pass([0, 1, 4, 7], 4, 16),
        Pass([8, 9], 4, 16),
        Pass([2], 2, 32),
        Pass([5], 1, 64),
        Pass([3], 1, 128),
        Pass([6], 1, 128),
        Pass([10], 1, 128),
    ]
    with pytest.raises(ValueError, match="a window of 129 tokens is longer than the model's window"):
        bucket_passes([129], (16, 128), 64)


def test_bucketed_passes_have_fixed_shapes_filled_with_empty_windows(tiny_model_dir: Path) -> None:
    classifier = TextClassifier.load(
        tiny_model_dir, dtype="bfloat16", max_batch_tokens=64, bucket_tokens=(16, 32), fixed_rows=True
    )
    assert classifier.buckets == (16, 32, 64)
    shapes: list[tuple[int, ...]] = []
    rows_seen: list[torch.Tensor] = []
    forward = classifier.model.forward

    def spy(input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):  # type: ignore[no-untyped-def]
        shapes.append(tuple(input_ids.shape))
        rows_seen.append(attention_mask.sum(dim=1))
        return forward(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    classifier.model.forward = spy  # type: ignore[method-assign]
    long = " ".join(f"word{i}" for i in range(100))  # several 64-token windows
    results = classifier.score(["hi", "What time does the library open on Saturday?", long])
    assert set(shapes) <= {(4, 16), (2, 32), (1, 64)} and (4, 16) in shapes and (1, 64) in shapes
    empty = len(classifier._empty)
    assert rows_seen[0].tolist() == [3, 11, empty, empty]  # "hi" and the question share a 16-token pass
    assert [r.windows for r in results] == [1, 1, len(classifier.cut([long]).ids)]


@pytest.mark.slow
@pytest.mark.parametrize("fixed_rows", [True, False])
def test_the_bucketed_path_gives_a_text_the_same_scores_whatever_its_batch_mates(
    minilm_model_dir: Path, fixed_rows: bool
) -> None:
    """The real MiniLM in bfloat16: 40 texts scored alone and among 1 to 255 random others, in random places; with
    passes of fixed shape (the default) and with passes of as many rows as windows wait."""
    classifier = TextClassifier.load(minilm_model_dir, dtype="bfloat16", parallel_passes=2, fixed_rows=fixed_rows)
    pool = varied_texts(300, seed=5)
    probes = pool[:40]
    alone = np.asarray([classifier.score([text])[0].scores for text in probes])
    rng = np.random.default_rng(0)
    worst = 0.0
    for size in (1, 3, 16, 31, 64, 128, 255, 255):
        mates = [pool[i] for i in rng.choice(len(pool), size, replace=False)]
        batch = mates + probes
        order = rng.permutation(len(batch))
        scores = classifier.score([batch[i] for i in order])
        where = {int(i): position for position, i in enumerate(order)}
        got = np.asarray([scores[where[size + k]].scores for k in range(len(probes))])
        worst = max(worst, float(np.abs(got - alone).max()))
    assert worst <= 1e-6
    # and it still is the model: close to float32 (bfloat16 moves scores by ~1e-3)
    exact = TextClassifier.load(minilm_model_dir, dtype="float32").score(probes)
    assert np.abs(alone - np.asarray([s.scores for s in exact])).max() < 5e-2


def test_without_fixed_rows_a_pass_holds_only_the_windows_waiting(tiny_model_dir: Path) -> None:
    lengths = [3, 16, 17, 100, 5, 40, 128, 2, 9, 12, 70]
    passes = bucket_passes(lengths, (16, 32, 64, 128), max_tokens=64, fixed_rows=False)
    assert [(p.windows, p.rows, p.width) for p in passes[:3]] == [([0, 1, 4, 7], 4, 16), ([8, 9], 2, 16), ([2], 1, 32)]
    loose = TextClassifier.load(tiny_model_dir, dtype="bfloat16", max_batch_tokens=64, fixed_rows=False)
    fixed = TextClassifier.load(tiny_model_dir, dtype="bfloat16", max_batch_tokens=64, fixed_rows=True)
    for a, b in zip(loose.score(TEXTS), fixed.score(TEXTS), strict=True):
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)
