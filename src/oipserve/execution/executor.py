"""Running model code off the event loop.

Synchronous ``load``/``infer``/``unload`` run on a thread pool (numpy and the frameworks release the
GIL); coroutine functions are awaited. In-process model instances
(:class:`~oipserve.execution.instance.InProcessInstance`) run their model through this pool.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

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
