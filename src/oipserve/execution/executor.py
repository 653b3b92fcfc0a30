"""Running model code off the event loop.

Synchronous ``load``/``infer``/``unload`` run on a thread pool (numpy and the frameworks release the
GIL); coroutine functions are awaited. The scheduler only ever sees :meth:`ModelRunner.infer`, so an
out-of-process implementation can replace this one behind the same call.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from oipserve.errors import InternalError
from oipserve.model import InferRequest, InferResult, Model

T = TypeVar("T")


class Executor:
    """The thread pool that every in-process model shares."""

    def __init__(self, max_workers: int = 4) -> None:
        self._pool = ThreadPoolExecutor(
            max_workers=max_workers, thread_name_prefix="oipserve-model"
        )

    async def call(self, fn: Callable[..., T | Awaitable[T]], *args: object) -> T:
        """Run ``fn(*args)``: awaited if it is a coroutine function, on the pool otherwise."""
        if inspect.iscoroutinefunction(fn):
            result: T = await fn(*args)
            return result
        value = await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        if inspect.isawaitable(value):
            awaited: T = await value
            return awaited
        return value

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class ModelRunner:
    """Calls one model's ``infer`` and checks the N-in, N-out contract."""

    def __init__(self, name: str, model: Model, executor: Executor) -> None:
        self.name = name
        self.model = model
        self._executor = executor
        self._infer = model.infer  # bound once: this is the hot path

    async def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        results = await self._executor.call(self._infer, requests)
        if len(results) != len(requests):
            raise InternalError(
                f"model '{self.name}' returned {len(results)} results for {len(requests)} requests"
            )
        return results
