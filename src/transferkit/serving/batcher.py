"""Dynamic micro-batching: concurrent requests are gathered into one model call and the results routed back.

Each request puts (its inputs, a future) on a queue. One worker task takes the first waiting request, then
gathers more until the batch holds `max_batch_size` inputs or `max_wait_ms` has passed, runs the model on all
of them in one call (in a single background thread, so the event loop keeps accepting requests meanwhile) and
hands each request its own slice of the results. While the model runs, new requests queue up and form the
next batch at once. A request is never split; one larger than `max_batch_size` runs as a batch of its own.
The wait is adaptive: after a batch that held a single request (no concurrency), the next request runs at once
instead of waiting max_wait_ms for company that is not coming; after a batch of several, gathering resumes.

If a batch fails, each of its requests is re-run alone, so a bad input fails its own request only.
`stop()` refuses new work, finishes everything already queued and then returns (graceful shutdown).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from transferkit.errors import RequestError

log = logging.getLogger("transferkit.serving")
_STOP = object()  # queued by stop(): everything before it is still served


@dataclass
class _Job:
    items: list[Any]
    future: asyncio.Future


@dataclass
class BatchStats:
    """What the worker did: model calls, requests and inputs served, the largest batch."""

    batches: int = 0
    requests: int = 0
    items: int = 0
    largest_batch: int = 0
    sizes: list[int] = field(default_factory=list, repr=False)  # the last 1,000 batch sizes

    def record(self, jobs: Sequence[_Job], size: int) -> None:
        self.batches += 1
        self.requests += len(jobs)
        self.items += size
        self.largest_batch = max(self.largest_batch, size)
        self.sizes = [*self.sizes[-999:], size]

    def to_dict(self) -> dict[str, Any]:
        mean = self.items / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "requests": self.requests,
            "items": self.items,
            "largest_batch": self.largest_batch,
            "mean_batch": round(mean, 2),
        }


class MicroBatcher:
    """Runs `run(items) -> results` (one result per item, in order) on gathered batches of queued requests."""

    def __init__(self, run: Callable[[list[Any]], Sequence[Any]], max_batch_size: int = 32, max_wait_ms: float = 5.0):
        self._run = run
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_ms / 1000.0
        self.stats = BatchStats()
        self._queue: asyncio.Queue | None = None
        self._worker: asyncio.Task | None = None
        self._held: Any = None  # a job taken from the queue that did not fit the last batch
        self._alone = False  # the last batch held one request: skip the wait (a lone client pays no latency)
        self._closing = False
        # one model thread: a model is not assumed thread-safe, and torch already uses every core per call
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="transferkit-model")

    def start(self) -> None:
        """Start the worker on the running event loop (idempotent)."""
        if self._worker is None:
            self._queue = asyncio.Queue()
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="transferkit-batcher")

    async def submit(self, items: list[Any]) -> list[Any]:
        """This request's results, in the order of `items`; raises what the model raised on them."""
        if self._closing:
            raise RequestError(503, "shutting_down", "The server is shutting down; retry on another instance.")
        self.start()
        future = asyncio.get_running_loop().create_future()
        self._queue.put_nowait(_Job(list(items), future))
        return await future

    async def stop(self) -> None:
        """Refuse new requests, serve every queued one, then stop the worker and its thread."""
        self._closing = True
        if self._worker is not None:
            self._queue.put_nowait(_STOP)
            await self._worker
            self._worker = None
        self._executor.shutdown(wait=True)

    async def _work(self) -> None:
        while True:
            jobs = await self._gather()
            if jobs is None:
                return
            try:
                await self._execute(jobs)
            except Exception as exc:  # never let one batch end the worker
                log.exception("batch failed")
                for job in jobs:
                    _settle(job, exc=exc)

    async def _gather(self) -> list[_Job] | None:
        """The next batch: the first waiting job, plus whatever arrives within max_wait_ms, up to the size limit."""
        first = self._held if self._held is not None else await self._queue.get()
        self._held = None
        if first is _STOP:
            return None
        jobs, size = [first], len(first.items)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (0.0 if self._alone else self.max_wait_s)  # queued jobs still join without a wait
        while size < self.max_batch_size:
            job = await self._next(deadline - loop.time())
            if job is None:
                break
            if job is _STOP or size + len(job.items) > self.max_batch_size:
                self._held = job  # runs next: after this batch, or as the stop signal
                break
            jobs.append(job)
            size += len(job.items)
        self._alone = len(jobs) == 1
        return jobs

    async def _next(self, timeout: float) -> Any:
        """The next queued job, waiting at most `timeout` seconds (None when nothing came)."""
        try:
            return self._queue.get_nowait()
        except asyncio.QueueEmpty:
            if timeout <= 0:
                return None
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except asyncio.TimeoutError:
            return None

    async def _execute(self, jobs: list[_Job]) -> None:
        jobs = [job for job in jobs if not job.future.done()]  # callers that went away need no answer
        if not jobs:
            return
        items = [item for job in jobs for item in job.items]
        try:
            results = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, items)
        except Exception as exc:
            if len(jobs) == 1:
                _settle(jobs[0], exc=exc)
                return
            for job in jobs:  # find the request the failure belongs to: each one alone
                await self._execute([job])
            return
        if len(results) != len(items):
            raise RuntimeError(f"the model returned {len(results)} results for {len(items)} inputs")
        self.stats.record(jobs, len(items))
        start = 0
        for job in jobs:
            _settle(job, result=list(results[start : start + len(job.items)]))
            start += len(job.items)


def _settle(job: _Job, result: Any = None, exc: BaseException | None = None) -> None:
    if job.future.done():  # the caller disconnected (its request was cancelled)
        return
    if exc is not None:
        job.future.set_exception(exc)
    else:
        job.future.set_result(result)
