"""Server-wide request limits shared by every transport (issue 13).

:class:`InFlight` counts the requests being served, REST and gRPC together (health checks and
``/metrics`` excluded, so probes keep answering under load). Past its limit a request is refused
at once with :class:`~oipserve.errors.QueueFull` (503 with ``Retry-After`` / ``UNAVAILABLE``)
instead of queueing without bound.
"""

from __future__ import annotations

from typing import Final

from oipserve.errors import QueueFull

RETRY_AFTER_S: Final = 1


class InFlight:
    """A counter with a ceiling; ``limit <= 0`` means no limit."""

    __slots__ = ("count", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.count = 0

    def enter(self) -> None:
        """Count a request in, or refuse it (:class:`QueueFull`) when the server is full."""
        if 0 < self.limit <= self.count:
            raise QueueFull(
                f"the server is serving its limit of {self.limit} requests; retry shortly "
                "(--max-in-flight)",
                RETRY_AFTER_S,
            )
        self.count += 1

    def leave(self) -> None:
        self.count -= 1


__all__ = ["InFlight"]
