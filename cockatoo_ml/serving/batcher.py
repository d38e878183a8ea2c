"""Dynamic micro-batching: concurrent requests share forward passes.

Requests put their texts on a queue and await a future. When one of the ``workers`` scoring threads is free,
the collector takes the first waiting job, lets others join for up to ``max_wait_ms`` (or until
``max_batch_texts`` are collected) and scores them all in one call on that thread, so the event loop stays free
for I/O. A request is answered as soon as the scorer reports its texts ready, not when the whole batch is done
(a tweet need not wait for an e-mail scored beside it). With two workers, a second batch forms from the
requests that come back meanwhile; while all workers are busy, waiting requests pile up into bigger batches.
Past ``max_queue_texts`` waiting texts, or ``max_queue_cost`` waiting tokens, new work is refused with
``QueueFullError`` (HTTP 429) instead of letting latency grow unbounded.

One request's texts never fail another's: when a shared batch raises, each of its requests still unanswered is
scored again on its own, so the exception reaches only the request whose texts cause it. A request whose
client went away (its task cancelled) is taken off the queue before it is scored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from cockatoo_ml.errors import CockatooError

log = logging.getLogger(__name__)

T = TypeVar("T")


# score(texts, ready) -> results: may call ready(positions, results) on its thread for texts finished early. The
# items are the scorer's business (the server's are texts, or windows of texts already cut: ScoreItem).
Scorer = Callable[[list[Any], Callable[[list[int], list[T]], None]], list[T]]


class QueueFullError(CockatooError):
    """Too much work is already waiting; the client should retry later."""

    def __init__(self, waiting: int, limit: int, retry_after_s: int, unit: str = "texts") -> None:
        super().__init__(f"server busy: {waiting} {unit} already waiting (limit {limit}); retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


_MISSING: Any = object()


@dataclass
class _Job(Generic[T]):
    texts: Sequence[object]
    future: asyncio.Future[list[T]] = field(repr=False)
    cost: int = 0
    results: list[T] = field(init=False, repr=False)
    missing: int = field(init=False)
    collected: bool = field(default=False, init=False)  # taken off the queue into a batch
    dropped: bool = field(default=False, init=False)  # the client went away while it waited: never scored

    def __post_init__(self) -> None:
        self.results = [_MISSING] * len(self.texts)
        self.missing = len(self.texts)


def _fill(slots: list[tuple[_Job[T], int]], positions: Iterable[int], results: Iterable[T]) -> None:
    """Put results into their jobs; a job is answered as soon as its last text is in."""
    for position, result in zip(positions, results, strict=True):
        job, index = slots[position]
        if job.results[index] is _MISSING:
            job.results[index] = result
            job.missing -= 1
            if job.missing == 0 and not job.future.done():  # the client may have gone away meanwhile
                job.future.set_result(job.results)


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        score: Scorer[T],
        *,
        max_batch_texts: int,
        max_wait_ms: float,
        max_queue_texts: int,
        max_queue_cost: int = 0,
        workers: int = 1,
        retry_after_s: int = 1,
        on_batch: Callable[[int], None] | None = None,
        on_queue_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._score = score
        self.max_batch_texts = max_batch_texts
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.max_queue_cost = max_queue_cost  # 0: no limit
        self.workers = max(1, workers)
        self.retry_after_s = retry_after_s
        self._on_batch = on_batch or (lambda size: None)
        self._on_queue_depth = on_queue_depth or (lambda depth: None)
        self._queue: asyncio.Queue[_Job[T]] | None = None
        self._free_workers: asyncio.Semaphore | None = None
        self._waiting_texts = 0
        self._waiting_cost = 0
        self._collector: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting_texts(self) -> int:
        return self._waiting_texts

    @property
    def waiting_cost(self) -> int:
        return self._waiting_cost

    @property
    def problem(self) -> str | None:
        """Why no text can be scored now (for a readiness probe), or None when the batcher can score."""
        if self._collector is None or self._executor is None:
            return "the micro-batcher is not running (not started yet, or stopped)"
        if self._collector.done():
            cause = None if self._collector.cancelled() else self._collector.exception()
            return f"the micro-batcher's collector has stopped ({cause!r})" if cause else "the batcher has stopped"
        if getattr(self._executor, "_shutdown", False) or getattr(self._executor, "_broken", False):
            return "the model threads have been shut down"
        return None

    async def start(self) -> None:
        """Start the collector on the running loop (call from the app's start-up)."""
        self._queue = asyncio.Queue()
        self._free_workers = asyncio.Semaphore(self.workers)
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="cockatoo-model")
        self._collector = asyncio.create_task(self._collect_forever(), name="cockatoo-micro-batcher")

    async def stop(self) -> None:
        """Finish every queued and running batch, then stop the collector and the threads."""
        if self._queue is not None:
            await self._queue.join()
        if self._collector is not None:
            self._collector.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._collector
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._collector = self._executor = self._queue = self._free_workers = None

    async def submit(self, texts: Sequence[object], cost: int = 0) -> list[T]:
        """Score ``texts`` together with whatever else is waiting; results come back in input order. ``cost`` (the
        texts' tokens) counts against ``max_queue_cost``."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.submit called before start()")
        if not texts:
            return []
        if self._waiting_texts and self._waiting_texts + len(texts) > self.max_queue_texts:
            raise QueueFullError(self._waiting_texts, self.max_queue_texts, self.retry_after_s)
        if self.max_queue_cost and self._waiting_cost and self._waiting_cost + cost > self.max_queue_cost:
            raise QueueFullError(self._waiting_cost, self.max_queue_cost, self.retry_after_s, unit="tokens")
        job: _Job[T] = _Job(texts, asyncio.get_running_loop().create_future(), cost)
        self._add_waiting(len(texts), cost)
        self._queue.put_nowait(job)
        try:
            return await job.future
        except asyncio.CancelledError:  # the client disconnected: do not spend the model on its texts
            if not job.collected:
                job.dropped = True
                self._add_waiting(-len(texts), -cost)
            raise

    def _add_waiting(self, texts: int, cost: int) -> None:
        self._waiting_texts += texts
        self._waiting_cost += cost
        self._on_queue_depth(self._waiting_texts)

    async def _collect_forever(self) -> None:
        assert self._free_workers is not None
        while True:
            await self._free_workers.acquire()  # batches form only when a worker can take them
            try:
                jobs = await self._collect()
            except BaseException:
                self._free_workers.release()
                raise
            size = sum(len(job.texts) for job in jobs)
            self._add_waiting(-size, -sum(job.cost for job in jobs))
            self._on_batch(size)
            task = asyncio.create_task(self._run(jobs, size))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, jobs: list[_Job[T]], size: int) -> None:
        assert self._queue is not None and self._free_workers is not None
        try:
            try:
                await self._score_jobs(jobs)
            except Exception:
                if len(jobs) == 1:
                    raise
                # Some text in the batch fails: score each request again alone, so the failure reaches only the
                # request that sent it (the others' answers do not depend on their batch-mates: see model.py).
                log.warning(
                    "a batch of %d texts from %d requests failed; scoring them one request at a time", size, len(jobs)
                )
                for job in jobs:
                    if not job.future.done():
                        await self._score_jobs([job])
        except Exception as exc:  # kept for the request's own error handler, which logs it once
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
        finally:
            self._free_workers.release()
            for _ in jobs:
                self._queue.task_done()

    async def _score_jobs(self, jobs: list[_Job[T]]) -> None:
        """Score ``jobs`` in one call on a model thread; a failure of a single job is set on its future."""
        loop = asyncio.get_running_loop()
        texts = [text for job in jobs for text in job.texts]
        slots = [(job, index) for job in jobs for index in range(len(job.texts))]  # batch position -> job slot

        def ready(positions: list[int], results: list[T]) -> None:  # called on the model thread
            loop.call_soon_threadsafe(_fill, slots, positions, results)

        try:
            results = await loop.run_in_executor(self._executor, self._score, texts, ready)
        except Exception as exc:
            if len(jobs) > 1:
                raise
            if not jobs[0].future.done():
                jobs[0].future.set_exception(exc)
        else:
            _fill(slots, range(len(texts)), results)  # whatever was not reported as ready on the way

    async def _collect(self) -> list[_Job[T]]:
        """The first waiting job plus those that arrive within the wait window, up to the batch size; jobs whose
        client has gone are skipped."""
        assert self._queue is not None
        first = None
        while first is None:
            first = self._take(await self._queue.get())
        jobs = [first]
        size = len(first.texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while size < self.max_batch_texts:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = self._take(await asyncio.wait_for(self._queue.get(), timeout=remaining))
                except TimeoutError:
                    break
            else:
                job = self._take(self._queue.get_nowait())
            if job is not None:
                jobs.append(job)
                size += len(job.texts)
        return jobs

    def _take(self, job: _Job[T]) -> _Job[T] | None:
        """``job`` now belongs to a batch, or None when its client went away (it is done with here)."""
        assert self._queue is not None
        if job.dropped:
            self._queue.task_done()
            return None
        job.collected = True
        return job
