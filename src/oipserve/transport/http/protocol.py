"""uvicorn's httptools protocol with the limits uvicorn lacks (issue 13; PROTOCOL.md §0).

uvicorn bounds nothing about how a request arrives: a client may open a connection and send
nothing, send headers one byte a minute (slowloris), send endless or countless headers, or stop
halfway through a body, and each such connection waits forever. :class:`GuardedHttpToolsProtocol`
subclasses uvicorn's :class:`~uvicorn.protocols.http.httptools_impl.HttpToolsProtocol` (the
parser and the request/response cycle stay uvicorn's) and adds, per connection:

- a **connection limit**: past ``max_connections`` open connections a new one is closed at once;
- a **header deadline**: the request line and headers must arrive within ``header_timeout_s`` of
  the request's first byte (of the connection's opening, for its first request); otherwise 408
  and the connection is closed (a connection that sent nothing is just closed);
- **header limits**: at most ``max_headers`` headers and ``max_header_bytes`` bytes of request line
  and headers; beyond, 431 and the connection is closed (counted as bytes arrive, so one endless
  header cannot grow the parser's buffer either);
- a **body deadline**: the body must arrive within ``body_timeout_s`` of the headers; otherwise
  408 (if no response started yet) and the connection is closed; the application's ``receive``
  sees ``http.disconnect`` and stops;
- **draining**: once :attr:`ConnectionState.draining` is set, every response carries
  ``Connection: close``, so keep-alive clients reconnect (and reach another replica once the
  listener closes).

Keep-alive idle time stays uvicorn's ``timeout_keep_alive``. The checks cost a counter and a timer
handle per request: the hot path keeps uvicorn's speed (docs/performance.md).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


@dataclass(frozen=True, slots=True)
class HTTPLimits:
    header_timeout_s: float = 10.0
    body_timeout_s: float = 60.0
    max_header_bytes: int = 16 * 1024
    max_headers: int = 100
    max_connections: int = 1000


@dataclass(slots=True)
class ConnectionState:
    """Shared by every connection of one server."""

    draining: bool = False


class _HeadersTooLarge(Exception):
    pass


def _response(status: int, message: str) -> bytes:
    body = ('{"error":"' + message.replace('"', "'") + '"}').encode()
    return b"".join(
        [
            STATUS_LINE[status],
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """See the module docstring. Built per server by :func:`protocol_class`."""

    limits: ClassVar[HTTPLimits] = HTTPLimits()
    state: ClassVar[ConnectionState] = ConnectionState()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._refused = False
        self._deadline: asyncio.TimerHandle | None = None
        self._in_headers = False
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._header_count = 0

    # -- connections ---------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if len(self.connections) >= self.limits.max_connections:
            self._refused = True
            self.transport = transport
            transport.abort()  # refused at once: no response, no lingering
            return
        super().connection_made(transport)
        self._arm(self.limits.header_timeout_s, self._header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._refused:
            return
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if self._refused:
            return
        super().shutdown()

    # -- timers --------------------------------------------------------------------------------

    def _arm(self, seconds: float, callback: Any) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, callback)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _can_answer(self) -> bool:
        """Whether this connection is free to write a response of our own (no response of the
        application is in progress on it)."""
        return self.cycle is None or self.cycle.response_complete

    def _refuse(self, status: int, message: str) -> None:
        self._disarm()
        if self.transport.is_closing():
            return
        if self._can_answer():
            self.transport.write(_response(status, message))
        self.transport.close()

    def _header_timeout(self) -> None:
        self._deadline = None
        if not self._in_headers:  # nothing of a request arrived: just close
            if self._can_answer() and not self.transport.is_closing():
                self.transport.close()
            return
        self._refuse(
            408, f"the request's headers did not arrive within {self.limits.header_timeout_s:g}s"
        )

    def _body_timeout(self) -> None:
        self._deadline = None
        cycle = self.cycle
        if cycle is None or cycle.response_complete or not cycle.more_body:
            return
        if not cycle.response_started and not self.transport.is_closing():
            self.transport.write(
                _response(
                    408, f"the request's body did not arrive within {self.limits.body_timeout_s:g}s"
                )
            )
            cycle.response_started = True  # nothing else may be written for this request
        cycle.disconnected = True
        cycle.message_event.set()
        self.transport.close()

    # -- parsing -------------------------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        try:
            super().data_received(data)
        except _HeadersTooLarge:  # pragma: no cover - uvicorn catches the parser error below
            self._refuse(431, "request headers too large")
            return
        if self._in_headers:  # still in the headers after this chunk: bound what is buffered
            self._raw_header_bytes += len(data)
            if self._raw_header_bytes > self.limits.max_header_bytes:
                self._refuse(431, self._too_large())

    def _too_large(self) -> str:
        return (
            f"request headers too large: at most {self.limits.max_headers} headers and "
            f"{self.limits.max_header_bytes} bytes"
        )

    def send_400_response(self, msg: str) -> None:
        # uvicorn's answer to a parser error; ours first when one of our callbacks raised it
        if self._in_headers and (
            self._header_count > self.limits.max_headers
            or self._header_bytes > self.limits.max_header_bytes
            or self._raw_header_bytes > self.limits.max_header_bytes
        ):
            self._refuse(431, self._too_large())
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_headers = True
        self._header_bytes = 0
        self._raw_header_bytes = 0
        self._header_count = 0
        self._arm(self.limits.header_timeout_s, self._header_timeout)

    def on_url(self, url: bytes) -> None:
        self._header_bytes += len(url)
        if self._header_bytes > self.limits.max_header_bytes:
            raise _HeadersTooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._header_count += 1
        self._header_bytes += len(name) + len(value) + 4
        if (
            self._header_count > self.limits.max_headers
            or self._header_bytes > self.limits.max_header_bytes
        ):
            raise _HeadersTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_headers = False
        self._arm(self.limits.body_timeout_s, self._body_timeout)
        super().on_headers_complete()
        if self.state.draining and self.cycle is not None:
            self.cycle.keep_alive = False  # the response says Connection: close

    def on_message_complete(self) -> None:
        self._disarm()
        super().on_message_complete()


def protocol_class(limits: HTTPLimits, state: ConnectionState) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for one server (uvicorn's ``http=`` accepts a class)."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"limits": limits, "state": state},
    )
