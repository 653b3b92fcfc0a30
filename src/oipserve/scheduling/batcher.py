"""The per-model-version scheduler: queue, deadlines, priorities and dynamic batching.

Every loaded model version gets one :class:`Scheduler`, whether or not its config enables dynamic
batching. :meth:`Scheduler.submit` queues one request and waits for its response; the scheduler
hands lists of requests to ``execute`` (N requests in, exactly N results out, checked) and at most
``instance_count`` of those lists run at once.

There is no scheduler task. Each submit, each finished batch and each timer runs the same
synchronous dispatch step, which starts one task per *batch* (never per request) while an
instance is free. A model error can therefore only fail the requests of its own batch; nothing
that the scheduler itself depends on can die. A request that reaches an empty queue with an
instance free (and that the rule below would send alone at once) skips the queue and runs in the
caller's own task: about 2 us of overhead over calling ``execute`` directly.

Dispatch rule
-------------
While an instance is free and requests are queued, the dispatcher takes the best queued request
(priority level 1 first, larger numbers later, FIFO within a level) and gathers behind it, in the
same order, the queued requests with the same ``batch_key`` (others are skipped, not mixed in, and
form their own batches) until the next one would take the batch past ``max_batch_size`` elements
(the sum of ``batch_size(request)``). Then it sends:

1. the whole candidate if it is exactly ``max_batch_size`` elements;
2. else the longest leading part of it whose size is a preferred batch size, if there is one
   (the largest preferred size reachable);
3. else the whole candidate **at once** if no other batch of this model is running, or
   ``max_queue_delay_ns`` is 0, or the candidate's oldest request has already waited that long;
4. else nothing yet: a timer fires when the oldest request has waited ``max_queue_delay_ns``, and
   each new request or finished batch looks again.

So a request reaching an idle model runs at once (no latency tax at concurrency 1, whatever the
delay); batches form from what queued while the instances were busy; and the delay only holds a
request back for company while *other* batches of the model are running (more than one instance),
never beyond ``max_queue_delay_ns``. With one instance the delay never applies.

Without dynamic batching (or with ``max_batch_size`` 0) every batch is exactly one request.

Deadlines, priorities and limits
--------------------------------
* A request's timeout is the policy default, or the request's own ``timeout_us`` when the policy
  allows overrides and it is shorter (Triton's rule; any positive value when there is no default).
  A request whose deadline passes before dispatch fails with :class:`DeadlineExceeded` at that
  moment and never runs. Time is read only from the injected :class:`~.clock.Clock`.
* ``priority`` 0, or above ``priority_levels``, means the default level. An out-of-range
  ``default_priority_level`` means the lowest level.
* ``max_queue_size`` bounds the requests waiting (not running), over all levels; one more fails at
  once with :class:`QueueFull`. Triton's per-level ``priority_queue_policy`` is not applied, and a
  ``DELAY`` timeout action means "no timeout" (requests are never rejected for waiting).
* A request whose ``batch_size`` exceeds ``max_batch_size`` is refused with
  :class:`InvalidArgument` (Triton's wording); such a request could never run.
* If the task awaiting :meth:`Scheduler.submit` is cancelled while its request waits, the request
  leaves the queue and never runs; once dispatched in a batch, it runs and its result is dropped.
  A request on the idle fast path runs in the caller's task, so cancelling the caller cancels
  that (single-request) ``execute`` call too.
* Statistics: the scheduler records each *execution* (``execution_count`` and ``batch_stats``),
  never a request. A request's outcome is recorded once, by its caller (the dataplane): a success
  with the times the scheduler writes into the caller's :class:`RequestTiming`, a failure (model
  error, bad result, deadline, queue full, unload) from the error ``submit`` raises.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable, Sequence
from dataclasses import dataclass
from functools import partial

from oipserve.errors import (
    DeadlineExceeded,
    InternalError,
    InvalidArgument,
    OIPServeError,
    QueueFull,
    Unavailable,
)
from oipserve.model import InferRequest, InferResponse, InferResult
from oipserve.model import batch_key as default_batch_key
from oipserve.model import batch_size as default_batch_size
from oipserve.scheduling.clock import MONOTONIC, Clock, TimerHandle
from oipserve.scheduling.statistics import ModelStatistics, RequestTiming

Execute = Callable[[list[InferRequest]], Awaitable[Sequence[InferResult]]]
BatchKey = Callable[[InferRequest], Hashable]
BatchSize = Callable[[InferRequest], int]


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """How one model version's requests are queued and grouped."""

    max_batch_size: int
    """0: the model has no batch dimension, every batch holds exactly one request."""
    dynamic: bool
    """False: requests are never combined (each runs alone)."""
    max_queue_delay_ns: int = 0
    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_size: int = 0
    """0: unbounded."""
    priority_levels: int = 0
    """0: one level."""
    default_priority_level: int = 0
    default_timeout_ns: int = 0
    """0: no timeout."""
    allow_timeout_override: bool = True
    instance_count: int = 1
    """How many batches may run at once."""

    def __post_init__(self) -> None:
        if self.max_batch_size < 0:
            raise ValueError("max_batch_size must be >= 0")
        if self.instance_count < 1:
            raise ValueError("instance_count must be >= 1")


_QUEUED = 0
_RUNNING = 1
_GONE = 2
_UNSET: Hashable = object()


class _Entry:
    __slots__ = (
        "deadline_ns",
        "enqueue_ns",
        "future",
        "key",
        "request",
        "size",
        "state",
        "timer",
        "timing",
    )

    def __init__(
        self,
        request: InferRequest,
        future: asyncio.Future[InferResponse | None],
        size: int,
        enqueue_ns: int,
        timing: RequestTiming | None = None,
    ) -> None:
        self.request = request
        self.timing = timing
        self.future = future
        self.size = size
        self.enqueue_ns = enqueue_ns
        self.deadline_ns = 0
        self.timer: TimerHandle | None = None
        self.key: Hashable = _UNSET
        self.state = _QUEUED


def _success(
    timing: RequestTiming | None,
    elements: int,
    request_ns: int,
    queue_ns: int,
    compute_infer_ns: int,
) -> None:
    """Hand a successful request's times to its caller (who records the request once)."""
    if timing is not None:
        timing.elements = elements
        timing.request_ns = request_ns
        timing.queue_ns = queue_ns
        timing.compute_infer_ns = compute_infer_ns


def _deliver_error(entry: _Entry, exc: BaseException) -> None:
    if not entry.future.done():
        entry.future.set_exception(exc)


class Scheduler:
    """Queues the requests of one model version and runs them in batches; see the module doc."""

    def __init__(
        self,
        name: str,
        execute: Execute,
        policy: BatchPolicy,
        *,
        statistics: ModelStatistics,
        clock: Clock = MONOTONIC,
        batch_key: BatchKey = default_batch_key,
        batch_size: BatchSize = default_batch_size,
    ) -> None:
        self.name = name
        self.policy = policy
        self.statistics = statistics
        self._execute = execute
        self._clock = clock
        self._batch_key = batch_key
        self._batch_size = batch_size
        self._combine = policy.dynamic and policy.max_batch_size > 0
        self._preferred = frozenset(
            s for s in policy.preferred_batch_sizes if 0 < s <= policy.max_batch_size
        )
        levels = max(1, policy.priority_levels)
        self._queues: list[deque[_Entry]] = [deque() for _ in range(levels)]
        default = policy.default_priority_level
        self._default_index = default - 1 if 1 <= default <= levels else levels - 1
        self._queued = 0
        self._free = policy.instance_count
        self._tasks: set[asyncio.Task[None]] = set()  # strong references to running batches
        self._drained: asyncio.Future[None] | None = None
        self._wait_timer: TimerHandle | None = None
        self._wait_until = 0
        self._closed = False
        self._draining = False
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- public -------------------------------------------------------------------------------

    def queued(self) -> int:
        """How many requests wait (not counting those running)."""
        return self._queued

    async def submit(
        self,
        request: InferRequest,
        *,
        priority: int = 0,
        timeout_us: int = 0,
        timing: RequestTiming | None = None,
    ) -> InferResponse:
        """Queue ``request`` and return its response (or raise the error that ended it).

        On success, the request's times (elements, request, queue and compute times) are written
        into ``timing`` for the caller to record; nothing about the request is recorded here.
        """
        result = await self._submit(request, priority, timeout_us, timing)
        if result is None:  # only a request with a sender can get here (see _finish)
            raise InternalError(f"model '{self.name}' returned no response")
        return result

    async def submit_streaming(
        self,
        request: InferRequest,
        *,
        priority: int = 0,
        timeout_us: int = 0,
        timing: RequestTiming | None = None,
    ) -> InferResponse | None:
        """:meth:`submit` for a request carrying a :class:`~oipserve.model.ResponseSender` (a
        decoupled model's): ``None`` when the model answers it through the sender."""
        return await self._submit(request, priority, timeout_us, timing)

    async def _submit(
        self,
        request: InferRequest,
        priority: int,
        timeout_us: int,
        timing: RequestTiming | None,
    ) -> InferResponse | None:
        if self._closed or self._draining:
            raise Unavailable(f"model '{self.name}' is not accepting requests: it is unloading")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        policy = self.policy
        if policy.max_batch_size > 0:
            size = self._batch_size(request)
            if size > policy.max_batch_size:
                raise InvalidArgument(
                    f"inference request batch-size must be <= {policy.max_batch_size} for "
                    f"'{self.name}'"
                )
        else:
            size = 1
        if policy.max_queue_size and self._queued >= policy.max_queue_size:
            raise QueueFull(
                f"inference request for model '{self.name}' rejected: the queue is full "
                f"({policy.max_queue_size} requests waiting)",
                retry_after_s=1,
            )
        now = self._clock.now_ns()
        if self._free and not self._queued and self._runs_alone_now(size):
            return await self._run_inline(request, size, now, timing)
        future: asyncio.Future[InferResponse | None] = loop.create_future()
        entry = _Entry(request, future, size, now, timing)
        self._queues[self._level_index(priority)].append(entry)
        self._queued += 1
        timeout_ns = self._timeout_ns(timeout_us)
        if timeout_ns:
            entry.deadline_ns = now + timeout_ns
            entry.timer = self._clock.call_at(entry.deadline_ns, partial(self._expire, entry))
        if self._free:
            self._pump()
        try:
            return await future
        except asyncio.CancelledError:
            if entry.state == _QUEUED:
                self._drop(entry)
            raise

    async def drain(self) -> None:
        """Refuse new requests, run every waiting one now (no batching delay), then close.

        What a reload or an unload does to the version it retires: requests already accepted all
        get their answer; only requests arriving after this call are refused.
        """
        if self._closed:
            return
        self._draining = True
        self._cancel_wait_timer()
        if self._loop is not None:
            self._pump()
        while self._queued or self._free < self.policy.instance_count:
            if self._drained is None or self._drained.done():
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)
        await self.close()

    async def close(self) -> None:
        """Refuse new requests, fail the waiting ones with Unavailable, let running batches end."""
        if not self._closed:
            self._closed = True
            self._cancel_wait_timer()
            for queue in self._queues:
                for entry in queue:
                    if entry.state == _QUEUED:
                        self._drop(entry)
                        _deliver_error(
                            entry,
                            Unavailable(f"model '{self.name}' was unloaded before the request ran"),
                        )
                queue.clear()
        if self._free < self.policy.instance_count:
            if self._drained is None:
                self._drained = asyncio.get_running_loop().create_future()
            await asyncio.shield(self._drained)

    # -- queue bookkeeping --------------------------------------------------------------------

    def _level_index(self, priority: int) -> int:
        levels = len(self._queues)
        if levels == 1:
            return 0
        if 1 <= priority <= levels:
            return priority - 1
        return self._default_index

    def _timeout_ns(self, timeout_us: int) -> int:
        """A client's timeout applies when the queue has no default; with a default, it may
        only shorten it, and only where ``allow_timeout_override`` says so (Triton's rule)."""
        default = self.policy.default_timeout_ns
        if timeout_us <= 0:
            return default
        requested = timeout_us * 1000
        if default == 0:
            return requested
        if self.policy.allow_timeout_override and requested < default:
            return requested
        return default

    def _drop(self, entry: _Entry) -> None:
        """Take a waiting entry out of the queue (it stays in its deque as a tombstone)."""
        entry.state = _GONE
        self._queued -= 1
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None

    def _expire(self, entry: _Entry) -> None:
        if entry.state != _QUEUED:
            return
        self._drop(entry)
        timeout_us = (entry.deadline_ns - entry.enqueue_ns) // 1000
        _deliver_error(
            entry,
            DeadlineExceeded(
                f"Request timeout expired: model '{self.name}' did not start the request "
                f"within its timeout of {timeout_us} us"
            ),
        )

    def _key(self, entry: _Entry) -> Hashable:
        key = entry.key
        if key is _UNSET:
            try:
                key = self._batch_key(entry.request)
                hash(key)
            except Exception:
                key = object()  # cannot be compared: it batches alone
            entry.key = key
        return key

    # -- dispatch -----------------------------------------------------------------------------

    def _pump(self) -> None:
        """Start batches while an instance is free and a batch is ready."""
        while self._free and self._queued and not self._closed:
            batch = self._next_batch()
            if batch is None:
                return
            self._start(batch)
        if not self._queued:
            self._cancel_wait_timer()

    def _head(self, now: int) -> _Entry | None:
        for queue in self._queues:
            while queue:
                entry = queue[0]
                if entry.state != _QUEUED:
                    queue.popleft()
                elif entry.deadline_ns and now >= entry.deadline_ns:
                    queue.popleft()
                    self._expire(entry)
                else:
                    return entry
        return None

    def _next_batch(self) -> list[_Entry] | None:
        now = self._clock.now_ns()
        head = self._head(now)
        if head is None or not self._combine:
            return None if head is None else [head]
        limit = self.policy.max_batch_size
        if self._queued == 1:
            batch = [head]
            total = head.size
        else:
            batch, total = self._gather(head, now, limit)
        if total == limit:
            return batch
        if self._preferred:
            best = 0
            running = 0
            for index, entry in enumerate(batch):
                running += entry.size
                if running in self._preferred:
                    best = index + 1
            if best:
                return batch[:best]
        delay = self.policy.max_queue_delay_ns
        if delay and self._free < self.policy.instance_count and not self._draining:
            until = min(entry.enqueue_ns for entry in batch) + delay
            if now < until:
                self._arm_wait_timer(until)
                return None
        return batch

    def _gather(self, head: _Entry, now: int, limit: int) -> tuple[list[_Entry], int]:
        key = self._key(head)
        batch: list[_Entry] = []
        total = 0
        for queue in self._queues:
            for entry in queue:
                if entry.state != _QUEUED:
                    continue
                if entry.deadline_ns and now >= entry.deadline_ns:
                    self._expire(entry)
                    continue
                if self._key(entry) != key:
                    continue
                if total + entry.size > limit:
                    return batch, total
                batch.append(entry)
                total += entry.size
                if total == limit:
                    return batch, total
        return batch, total

    def _arm_wait_timer(self, until: int) -> None:
        if self._wait_timer is not None:
            if self._wait_until == until:
                return
            self._wait_timer.cancel()
        self._wait_until = until
        self._wait_timer = self._clock.call_at(until, self._on_wait_timer)

    def _cancel_wait_timer(self) -> None:
        if self._wait_timer is not None:
            self._wait_timer.cancel()
            self._wait_timer = None

    def _on_wait_timer(self) -> None:
        self._wait_timer = None
        self._pump()

    def _start(self, batch: list[_Entry]) -> None:
        for entry in batch:
            entry.state = _RUNNING
            if entry.timer is not None:
                entry.timer.cancel()
                entry.timer = None
        self._queued -= len(batch)
        self._free -= 1
        assert self._loop is not None
        task = self._loop.create_task(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _release(self) -> None:
        """An instance is free again."""
        self._free += 1
        if self._queued:
            self._pump()
        elif (
            self._drained is not None
            and self._free == self.policy.instance_count
            and not self._drained.done()
        ):
            self._drained.set_result(None)

    def _runs_alone_now(self, size: int) -> bool:
        """Whether a lone request reaching an empty queue would be dispatched at once."""
        if not self._combine or size == self.policy.max_batch_size or size in self._preferred:
            return True
        return self._free == self.policy.instance_count or not self.policy.max_queue_delay_ns

    async def _run_inline(
        self, request: InferRequest, size: int, start: int, timing: RequestTiming | None
    ) -> InferResponse | None:
        """The idle fast path: run a lone request in the caller's task, with no queue hop.

        If the caller is cancelled meanwhile, its model call is cancelled with it (it was the only
        request of its batch) and nothing is counted.
        """
        self._free -= 1
        try:
            results = await self._execute([request])
            if len(results) != 1:
                raise self._wrong_count(len(results), 1)
            end = self._clock.now_ns()
            self.statistics.record_execution(size, end - start)
            result = results[0]
            if isinstance(result, InferResponse) or (result is None and request.sender):
                _success(timing, size, end - start, 0, end - start)
                return result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            raise self._as_error(exc)  # noqa: B904 (_as_error chains a wrapped cause itself)
        else:
            raise self._as_error(result)
        finally:
            self._release()

    async def _run(self, batch: list[_Entry]) -> None:
        clock = self._clock
        start = clock.now_ns()
        try:
            try:
                results = await self._execute([entry.request for entry in batch])
                if len(results) != len(batch):
                    raise self._wrong_count(len(results), len(batch))
            except asyncio.CancelledError:
                self._fail_batch(
                    batch, Unavailable(f"model '{self.name}' stopped while running the request")
                )
                raise
            except Exception as exc:
                self._fail_batch(batch, self._as_error(exc))
            else:
                end = clock.now_ns()
                infer_ns = end - start
                try:
                    self.statistics.record_execution(sum(e.size for e in batch), infer_ns)
                    for entry, result in zip(batch, results, strict=True):
                        self._finish(entry, result, start, end, infer_ns)
                except Exception as exc:  # a fault of ours: still never leave a caller hanging
                    unanswered = [entry for entry in batch if not entry.future.done()]
                    self._fail_batch(unanswered, self._as_error(exc))
        finally:
            self._release()

    def _fail_batch(self, batch: list[_Entry], error: Exception) -> None:
        for entry in batch:
            _deliver_error(entry, error)

    def _wrong_count(self, got: int, expected: int) -> InternalError:
        return InternalError(f"model '{self.name}' returned {got} results for {expected} requests")

    def _as_error(self, result: object) -> Exception:
        """What the client sees for a failed slot or a failed execute."""
        if isinstance(result, OIPServeError):
            return result
        if isinstance(result, Exception):
            error = InternalError(f"model '{self.name}' failed: {type(result).__name__}: {result}")
            error.__cause__ = result
            return error
        return InternalError(
            f"model '{self.name}' returned a {type(result).__name__} where an InferResponse "
            "or an exception belongs"
        )

    def _finish(self, entry: _Entry, result: object, start: int, end: int, infer_ns: int) -> None:
        if isinstance(result, InferResponse) or (result is None and entry.request.sender):
            _success(
                entry.timing,
                entry.size,
                end - entry.enqueue_ns,
                start - entry.enqueue_ns,
                infer_ns,
            )
            if not entry.future.done():
                entry.future.set_result(result)
            return
        _deliver_error(entry, self._as_error(result))


__all__ = ["BatchPolicy", "Scheduler"]
