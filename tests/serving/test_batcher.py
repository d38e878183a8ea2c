"""MicroBatcher: coalescing, limits, back-pressure, errors, shutdown, and the event loop staying free."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable

import pytest

from cockatoo_ml.serving.batcher import MicroBatcher, QueueFullError


class RecordingScorer:
    """Scores a text as its length and remembers every batch; can be held by closing ``gate``."""

    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.gate = threading.Event()
        self.gate.set()
        self.entered = threading.Event()
        self.thread_names: set[str] = set()
        self.inside = 0  # calls running right now
        self.most_inside = 0
        self._lock = threading.Lock()

    def __call__(self, texts: list[str], ready: Callable[[list[int], list[int]], None]) -> list[int]:
        with self._lock:
            self.thread_names.add(threading.current_thread().name)
            self.batches.append(list(texts))
            self.inside += 1
            self.most_inside = max(self.most_inside, self.inside)
        self.entered.set()
        try:
            assert self.gate.wait(timeout=10)
        finally:
            with self._lock:
                self.inside -= 1
        if "boom" in texts:
            raise RuntimeError("scoring bug")
        return [len(text) for text in texts]


@pytest.fixture
def scorer() -> RecordingScorer:
    return RecordingScorer()


async def started(scorer: RecordingScorer, **limits: float) -> MicroBatcher[int]:
    options = {"max_batch_texts": 32, "max_wait_ms": 20.0, "max_queue_texts": 100, **limits}
    batcher: MicroBatcher[int] = MicroBatcher(scorer, **options)  # type: ignore[arg-type]
    await batcher.start()
    return batcher


@pytest.fixture
async def batcher(scorer: RecordingScorer) -> AsyncIterator[MicroBatcher[int]]:
    batcher = await started(scorer)
    yield batcher
    await batcher.stop()


async def test_concurrent_requests_share_one_call_and_get_their_own_results(batcher, scorer) -> None:
    texts = [["a"], ["bb", "ccc"], ["dddd"], ["eeeee", "f"]]
    results = await asyncio.gather(*(batcher.submit(t) for t in texts))
    assert results == [[1], [2, 3], [4], [5, 1]]
    assert len(scorer.batches) == 1 and sorted(scorer.batches[0]) == sorted(sum(texts, []))


async def test_model_runs_on_its_own_thread(batcher, scorer) -> None:
    await batcher.submit(["x"])
    assert scorer.thread_names == {"cockatoo-model_0"}


async def test_batch_size_caps_how_many_texts_join(scorer) -> None:
    batcher = await started(scorer, max_batch_texts=3, max_wait_ms=50)
    try:
        results = await asyncio.gather(*(batcher.submit([str(i)]) for i in range(7)))
    finally:
        await batcher.stop()
    assert results == [[1]] * 7
    assert [len(b) for b in scorer.batches] == [3, 3, 1]


async def test_a_lone_request_waits_at_most_max_wait(scorer) -> None:
    batcher = await started(scorer, max_wait_ms=30)
    try:
        loop = asyncio.get_running_loop()
        start = loop.time()
        assert await batcher.submit(["solo"]) == [4]
        assert loop.time() - start < 1.0
    finally:
        await batcher.stop()


async def test_event_loop_stays_free_while_the_model_works(batcher, scorer) -> None:
    scorer.gate.clear()
    pending = asyncio.create_task(batcher.submit(["slow"]))
    await asyncio.to_thread(scorer.entered.wait, 5)
    ticks = 0
    for _ in range(5):  # the loop keeps running other work while the model thread is busy
        await asyncio.sleep(0.01)
        ticks += 1
    assert ticks == 5 and not pending.done()
    scorer.gate.set()
    assert await pending == [4]


async def test_queue_full_refuses_new_work_until_it_drains(scorer) -> None:
    batcher = await started(scorer, max_queue_texts=3, max_wait_ms=0)
    scorer.gate.clear()
    try:
        running = asyncio.create_task(batcher.submit(["busy"]))
        await asyncio.to_thread(scorer.entered.wait, 5)  # taken off the queue: nothing is waiting
        waiting = asyncio.create_task(batcher.submit(["a", "b"]))
        await asyncio.sleep(0)
        assert batcher.waiting_texts == 2
        with pytest.raises(QueueFullError, match="2 texts already waiting"):
            await batcher.submit(["c", "d"])
        scorer.gate.set()
        assert await running == [4] and await waiting == [1, 1]
        assert await batcher.submit(["c", "d"]) == [1, 1]
    finally:
        scorer.gate.set()
        await batcher.stop()


async def test_a_scoring_error_fails_its_batch_only(batcher, scorer) -> None:
    with pytest.raises(RuntimeError, match="scoring bug"):
        await batcher.submit(["boom"])
    assert await batcher.submit(["fine"]) == [4]


async def test_stop_finishes_queued_work(scorer) -> None:
    batcher = await started(scorer, max_batch_texts=1, max_wait_ms=0)
    jobs = [asyncio.create_task(batcher.submit([str(i) * i])) for i in range(1, 5)]
    await asyncio.sleep(0)
    await batcher.stop()
    assert [job.result() for job in jobs] == [[1], [2], [3], [4]]


async def test_submit_before_start_is_a_bug(scorer) -> None:
    with pytest.raises(RuntimeError, match="before start"):
        await MicroBatcher(scorer, max_batch_texts=1, max_wait_ms=0, max_queue_texts=1).submit(["x"])


async def test_with_two_workers_a_second_batch_runs_while_the_first_is_busy(scorer) -> None:
    batcher = await started(scorer, max_wait_ms=0, workers=2)
    scorer.gate.clear()
    try:
        first = asyncio.create_task(batcher.submit(["held"]))
        await asyncio.to_thread(scorer.entered.wait, 5)
        second = asyncio.create_task(batcher.submit(["also"]))
        for _ in range(200):  # the second batch reaches the model although the first has not finished
            await asyncio.sleep(0.01)
            if scorer.inside == 2:
                break
        assert scorer.inside == 2 and not first.done()
        scorer.gate.set()
        assert await first == [4] and await second == [4]
        assert scorer.thread_names == {"cockatoo-model_0", "cockatoo-model_1"}
    finally:
        scorer.gate.set()
        await batcher.stop()


async def test_one_worker_never_runs_two_batches_at_once(scorer) -> None:
    batcher = await started(scorer, max_batch_texts=1, max_wait_ms=0, workers=1)
    try:
        await asyncio.gather(*(batcher.submit([str(i)]) for i in range(6)))
    finally:
        await batcher.stop()
    assert scorer.most_inside == 1 and len(scorer.batches) == 6


async def test_a_failing_batch_does_not_stop_the_other_worker(scorer) -> None:
    batcher = await started(scorer, max_batch_texts=1, max_wait_ms=0, workers=2)
    try:
        results = await asyncio.gather(
            batcher.submit(["boom"]), batcher.submit(["fine"]), batcher.submit(["ok"]), return_exceptions=True
        )
        assert isinstance(results[0], RuntimeError) and results[1:] == [[4], [2]]
    finally:
        await batcher.stop()


async def test_an_empty_request_needs_no_model_call(batcher, scorer) -> None:
    assert await batcher.submit([]) == []
    assert scorer.batches == []


async def test_stop_waits_for_every_running_batch(scorer) -> None:
    batcher = await started(scorer, max_batch_texts=1, max_wait_ms=0, workers=2)
    scorer.gate.clear()
    jobs = [asyncio.create_task(batcher.submit([str(i) * i])) for i in range(1, 4)]
    await asyncio.to_thread(scorer.entered.wait, 5)
    stopping = asyncio.create_task(batcher.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()
    scorer.gate.set()
    await stopping
    assert [job.result() for job in jobs] == [[1], [2], [3]]


class EarlyScorer:
    """Reports the shortest text of a batch ready at once, then waits for ``gate`` before returning the rest."""

    def __init__(self) -> None:
        self.gate = threading.Event()

    def __call__(self, texts: list[str], ready: Callable[[list[int], list[int]], None]) -> list[int]:
        shortest = min(range(len(texts)), key=lambda i: len(texts[i]))
        ready([shortest], [len(texts[shortest])])
        assert self.gate.wait(timeout=10)
        return [len(text) for text in texts]


async def test_a_request_is_answered_when_its_texts_are_ready_not_when_the_batch_ends() -> None:
    scorer = EarlyScorer()
    batcher: MicroBatcher[int] = MicroBatcher(scorer, max_batch_texts=8, max_wait_ms=50, max_queue_texts=100)
    await batcher.start()
    try:
        short = asyncio.create_task(batcher.submit(["hi"]))
        long = asyncio.create_task(batcher.submit(["a much longer text"]))
        assert await asyncio.wait_for(short, timeout=5) == [2]  # while the batch is still held
        assert not long.done()
        scorer.gate.set()
        assert await long == [18]
    finally:
        scorer.gate.set()
        await batcher.stop()


async def test_a_failing_text_fails_only_its_own_request_in_a_shared_batch(batcher, scorer) -> None:
    results = await asyncio.gather(
        batcher.submit(["fine"]), batcher.submit(["ok", "boom"]), batcher.submit(["also"]), return_exceptions=True
    )
    assert results[0] == [4] and results[2] == [4]
    assert isinstance(results[1], RuntimeError)
    assert sorted(scorer.batches[0]) == ["also", "boom", "fine", "ok"]  # they did share the batch


async def test_a_cancelled_request_is_dropped_before_it_is_scored(scorer) -> None:
    batcher = await started(scorer, max_wait_ms=0, workers=1)
    scorer.gate.clear()
    try:
        running = asyncio.create_task(batcher.submit(["busy"]))
        await asyncio.to_thread(scorer.entered.wait, 5)
        gone = asyncio.create_task(batcher.submit(["client went away"], cost=7))
        await asyncio.sleep(0)
        assert batcher.waiting_texts == 1 and batcher.waiting_cost == 7
        gone.cancel()
        await asyncio.sleep(0)
        assert batcher.waiting_texts == 0 and batcher.waiting_cost == 0
        scorer.gate.set()
        assert await running == [4] and await batcher.submit(["next"]) == [4]
    finally:
        scorer.gate.set()
        await batcher.stop()
    assert all("client went away" not in batch for batch in scorer.batches)


async def test_the_queue_is_bounded_in_tokens_too(scorer) -> None:
    batcher = await started(scorer, max_wait_ms=0, max_queue_cost=100, workers=1)
    scorer.gate.clear()
    try:
        running = asyncio.create_task(batcher.submit(["busy"], cost=90))
        await asyncio.to_thread(scorer.entered.wait, 5)  # being scored: no longer waiting
        waiting = asyncio.create_task(batcher.submit(["a"], cost=60))
        await asyncio.sleep(0)
        with pytest.raises(QueueFullError, match="60 tokens already waiting"):
            await batcher.submit(["b"], cost=41)
        small = asyncio.create_task(batcher.submit(["c"], cost=40))  # fits exactly
        scorer.gate.set()
        assert await running == [4] and await waiting == [1] and await small == [1]
    finally:
        scorer.gate.set()
        await batcher.stop()


async def test_problem_says_why_nothing_can_be_scored(scorer) -> None:
    batcher: MicroBatcher[int] = MicroBatcher(scorer, max_batch_texts=1, max_wait_ms=0, max_queue_texts=1)
    assert "not running" in batcher.problem
    await batcher.start()
    assert batcher.problem is None
    batcher._collector.cancel()  # as if it had died
    await asyncio.sleep(0)
    assert "stopped" in batcher.problem
    await batcher.stop()
    assert "not running" in batcher.problem
