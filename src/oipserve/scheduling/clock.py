"""Time for the scheduler: a :class:`Clock` protocol, the real one, and a fake one for tests.

The scheduler reads time only through ``now_ns()`` and arms timers only through ``call_at()``, so
tests drive every delay and deadline with :class:`FakeClock` and never sleep for real.
"""

from __future__ import annotations

import asyncio
import heapq
import time
from collections.abc import Callable
from typing import Protocol


class TimerHandle(Protocol):
    """What ``call_at`` returns: a timer that can be called off."""

    def cancel(self) -> None: ...


class Clock(Protocol):
    """Monotonic nanoseconds and timers on the running event loop."""

    def now_ns(self) -> int:
        """The current time, in nanoseconds, from an arbitrary origin."""
        ...

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> TimerHandle:
        """Call ``callback`` on the event loop once ``now_ns()`` reaches ``when_ns``."""
        ...

    async def sleep(self, delay_ns: int) -> None:
        """Return once ``delay_ns`` nanoseconds have passed."""
        ...


class MonotonicClock:
    """The real clock: :func:`time.monotonic_ns` and the running loop's timers."""

    __slots__ = ()

    def now_ns(self) -> int:
        return time.monotonic_ns()

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> TimerHandle:
        delay_s = max(0, when_ns - time.monotonic_ns()) / 1e9
        return asyncio.get_running_loop().call_later(delay_s, callback)

    async def sleep(self, delay_ns: int) -> None:
        await asyncio.sleep(max(0, delay_ns) / 1e9)


MONOTONIC: Clock = MonotonicClock()


class _FakeTimer:
    __slots__ = ("callback", "cancelled", "when_ns")

    def __init__(self, when_ns: int, callback: Callable[[], None]) -> None:
        self.when_ns = when_ns
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class FakeClock:
    """A clock that moves only when told to; timers fire inside :meth:`advance`, in time order."""

    def __init__(self, start_ns: int = 0) -> None:
        self._now = start_ns
        self._seq = 0
        self._timers: list[tuple[int, int, _FakeTimer]] = []

    def now_ns(self) -> int:
        return self._now

    def call_at(self, when_ns: int, callback: Callable[[], None]) -> TimerHandle:
        timer = _FakeTimer(when_ns, callback)
        self._seq += 1
        heapq.heappush(self._timers, (when_ns, self._seq, timer))
        return timer

    async def sleep(self, delay_ns: int) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        def wake() -> None:
            if not future.done():
                future.set_result(None)

        self.call_at(self._now + delay_ns, wake)
        await future

    def advance(self, delta_ns: int) -> None:
        """Move time forward by ``delta_ns``, firing every timer that falls due on the way.

        While a timer's callback runs, ``now_ns()`` reads that timer's deadline.
        """
        if delta_ns < 0:
            raise ValueError("a clock cannot go backwards")
        target = self._now + delta_ns
        while self._timers and self._timers[0][0] <= target:
            when_ns, _, timer = heapq.heappop(self._timers)
            if timer.cancelled:
                continue
            self._now = max(self._now, when_ns)
            timer.callback()
        self._now = target

    def pending_timers(self) -> int:
        """How many timers are armed and not cancelled."""
        return sum(1 for _, _, timer in self._timers if not timer.cancelled)


__all__ = ["MONOTONIC", "Clock", "FakeClock", "MonotonicClock", "TimerHandle"]
