"""Dynamic micro-batching: concurrent requests share forward passes.

Requests put their texts on a queue and await a future. One worker task takes the first waiting job, lets
others join for up to ``max_wait_ms`` (or until ``max_batch_texts`` are collected), and scores them all in one
call on a single worker thread, so the event loop stays free for I/O while the model runs and the model never
runs twice at once (two concurrent passes would only fight over the same CPU cores). Past ``max_queue_texts``
waiting texts new work is refused with ``QueueFullError`` (HTTP 429) instead of letting latency grow unbounded.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from cockatoo_ml.errors import CockatooError

log = logging.getLogger(__name__)

T = TypeVar("T")


class QueueFullError(CockatooError):
    """Too much work is already waiting; the client should retry later."""

    def __init__(self, waiting: int, limit: int, retry_after_s: int) -> None:
        super().__init__(f"server busy: {waiting} texts already waiting (limit {limit}); retry in {retry_after_s}s")
        self.retry_after_s = retry_after_s


@dataclass
class _Job(Generic[T]):
    texts: Sequence[str]
    future: asyncio.Future[list[T]] = field(repr=False)


class MicroBatcher(Generic[T]):
    def __init__(
        self,
        score: Callable[[list[str]], list[T]],
        *,
        max_batch_texts: int,
        max_wait_ms: float,
        max_queue_texts: int,
        retry_after_s: int = 1,
        on_batch: Callable[[int], None] | None = None,
        on_queue_depth: Callable[[int], None] | None = None,
    ) -> None:
        self._score = score
        self.max_batch_texts = max_batch_texts
        self.max_wait_s = max_wait_ms / 1000.0
        self.max_queue_texts = max_queue_texts
        self.retry_after_s = retry_after_s
        self._on_batch = on_batch or (lambda size: None)
        self._on_queue_depth = on_queue_depth or (lambda depth: None)
        self._queue: asyncio.Queue[_Job[T]] | None = None
        self._waiting_texts = 0
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    @property
    def waiting_texts(self) -> int:
        return self._waiting_texts

    async def start(self) -> None:
        """Start the worker on the running loop (call from the app's start-up)."""
        self._queue = asyncio.Queue()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cockatoo-model")
        self._worker = asyncio.create_task(self._run(), name="cockatoo-micro-batcher")

    async def stop(self) -> None:
        """Finish every queued job, then stop the worker and its thread."""
        if self._queue is not None:
            await self._queue.join()
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except asyncio.CancelledError:
                pass
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        self._worker = self._executor = self._queue = None

    async def submit(self, texts: Sequence[str]) -> list[T]:
        """Score ``texts`` together with whatever else is waiting; results come back in input order."""
        if self._queue is None:
            raise RuntimeError("MicroBatcher.submit called before start()")
        if self._waiting_texts and self._waiting_texts + len(texts) > self.max_queue_texts:
            raise QueueFullError(self._waiting_texts, self.max_queue_texts, self.retry_after_s)
        job: _Job[T] = _Job(texts, asyncio.get_running_loop().create_future())
        self._waiting_texts += len(texts)
        self._on_queue_depth(self._waiting_texts)
        self._queue.put_nowait(job)
        return await job.future

    async def _run(self) -> None:
        assert self._queue is not None
        loop = asyncio.get_running_loop()
        while True:
            jobs = await self._collect()
            size = sum(len(job.texts) for job in jobs)
            self._waiting_texts -= size
            self._on_queue_depth(self._waiting_texts)
            self._on_batch(size)
            texts = [text for job in jobs for text in job.texts]
            try:
                results = await loop.run_in_executor(self._executor, self._score, texts)
            except Exception as exc:  # a bug in scoring: fail these requests (500), keep serving others
                log.exception("scoring a batch of %d texts failed", size)
                for job in jobs:
                    if not job.future.done():
                        job.future.set_exception(exc)
            else:
                start = 0
                for job in jobs:
                    if not job.future.done():  # the client may have gone away meanwhile
                        job.future.set_result(results[start : start + len(job.texts)])
                    start += len(job.texts)
            finally:
                for _ in jobs:
                    self._queue.task_done()

    async def _collect(self) -> list[_Job[T]]:
        """The first waiting job plus those that arrive within the wait window, up to the batch size."""
        assert self._queue is not None
        jobs = [await self._queue.get()]
        size = len(jobs[0].texts)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while size < self.max_batch_texts:
            if self._queue.empty():
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), timeout=remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            jobs.append(job)
            size += len(job.texts)
        return jobs
