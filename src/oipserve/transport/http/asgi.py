"""ASGI plumbing shared by every front end: the request a handler reads, the responses it returns.

Handlers are ``async def handler(request: Request) -> BaseResponse``; the application
(:mod:`oipserve.transport.http.app`) routes to them and sends what they return. Three responses:

``Response(status, body, headers)``
    A body of known length: ``bytes``, or a list of chunks (``bytes`` / byte ``memoryview`` s, e.g.
    a JSON header followed by views of output arrays). ``Content-Length`` is their total. Chunks are
    joined only when the total is small (below :data:`JOIN_BELOW`: one write is cheaper than
    several); larger bodies go out chunk by chunk (``more_body``), never copied into one buffer.

``StreamingResponse(chunks, status, headers)``
    A body of unknown length, sent with chunked transfer encoding as ``chunks`` (an async iterator
    of ``bytes`` / ``memoryview``) yields them. The iterator is pulled one chunk per ``send``:
    awaiting ``send`` is the back-pressure (uvicorn waits while the socket's buffer is full), so
    nothing is buffered beyond one chunk. The first chunk is awaited *before* the status line goes
    out, so an error raised before it (a bad request found by the first model step) is still an
    ordinary error response; after that the status is committed, and an error aborts the
    connection (the client sees an incomplete body) unless the producer turns it into data itself
    (SSE's in-band ``{"error": ...}`` events). While streaming, the client's ``http.disconnect``
    is watched: it cancels the task pulling the iterator and closes the iterator (``aclose``), so
    the work behind the stream (a model's generation loop) stops at once, as in starlette's
    ``StreamingResponse`` and sse-starlette's ``EventSourceResponse``.

``event_stream(events, encode)``
    Server-sent events: a :class:`StreamingResponse` of ``text/event-stream`` whose chunks are
    ``data: <encode(event)>\\n\\n`` frames (no ``event:`` / ``id:`` lines; a protocol that wants
    them passes ``frame=`` its own framing). ``on_error`` turns an exception raised mid-stream into
    one last event instead of aborting (Triton's ``generate_stream`` sends ``{"error": ...}``).

A later front end adds a streaming endpoint like this::

    async def generate_stream(request: Request) -> BaseResponse:
        body = await request.body()               # read (and validate) the body first
        events = dataplane.generate(...)          # an async generator of domain values
        return event_stream(events, codec.encode, on_error=lambda e: {"error": str(e)})

    Route("POST", "/models/{model}/generate_stream", generate_stream,
          name="model_generate_stream", category=Category.INFERENCE)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from oipserve.errors import InvalidArgument, OIPServeError, PayloadTooLarge
from oipserve.transport.http import compression

logger = logging.getLogger("oipserve.http")

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Chunk = bytes | memoryview
Headers = list[tuple[bytes, bytes]]

JSON = (b"content-type", b"application/json")
OCTET_STREAM = (b"content-type", b"application/octet-stream")
EVENT_STREAM = (b"content-type", b"text/event-stream; charset=utf-8")

JOIN_BELOW = 64 * 1024
"""A chunked body smaller than this is joined and written once; a larger one is sent chunk by
chunk (a copy of a few KiB costs less than extra writes; a copy of megabytes costs more)."""


class ClientDisconnected(Exception):
    """The client went away; nothing more is sent."""


class Request:
    """What a handler needs of an HTTP request: method, path parameters, headers, body."""

    __slots__ = ("_receive", "headers", "max_body", "method", "params")

    def __init__(
        self,
        method: str,
        headers: dict[bytes, bytes],
        receive: Receive,
        params: dict[str, str],
        max_body: int,
    ) -> None:
        self.method = method
        self.headers = headers
        self._receive = receive
        self.params = params
        self.max_body = max_body

    def header(self, name: bytes) -> str | None:
        """A request header by its lower-case name."""
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    async def body(self) -> bytes:
        """The whole (decompressed) body, refusing anything over the size limit (413)."""
        declared = self.headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InvalidArgument("Content-Length is not an integer") from None
            if size > self.max_body:
                raise PayloadTooLarge(_too_large(size, self.max_body))
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if received > self.max_body:
                    raise PayloadTooLarge(_too_large(received, self.max_body))
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = self.headers.get(b"content-encoding")
        if encoding:
            body = compression.decompress(body, encoding.decode("latin-1"), self.max_body)
        return body

    async def wait_for_disconnect(self) -> None:
        """Return once the client has gone away (call after the body has been read)."""
        await _wait_for_disconnect(self._receive)


def _too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size} bytes exceeds the limit of {limit} bytes "
        "(raise it with --http-max-request-mb)"
    )


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class BaseResponse(Protocol):
    status: int
    headers: Headers
    started: bool
    """Whether the status line went out (an error after it can no longer be answered)."""

    async def send(self, send: Send, receive: Receive) -> None: ...


ErrorRenderer = Callable[[OIPServeError], BaseResponse]


class Response:
    """A response whose body is known in full: ``bytes`` or a list of byte chunks."""

    __slots__ = ("body", "headers", "started", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes | Sequence[Chunk] = b"",
        headers: Headers | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else [JSON]
        self.started = False

    def compress(self, coding: str) -> None:
        """Compress the body with ``coding`` (gzip, deflate) chunk by chunk."""
        body = self.body
        self.body = compression.compress_chunks([body] if isinstance(body, bytes) else body, coding)
        self.headers.append((b"content-encoding", coding.encode()))

    async def send(self, send: Send, receive: Receive) -> None:
        body = self.body
        headers = self.headers
        self.started = True
        if isinstance(body, bytes):
            headers.append((b"content-length", str(len(body)).encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        total = sum(chunk.nbytes if isinstance(chunk, memoryview) else len(chunk) for chunk in body)
        headers.append((b"content-length", str(total).encode()))
        await send({"type": "http.response.start", "status": self.status, "headers": headers})
        if total < JOIN_BELOW or len(body) < 2:
            joined = body[0] if len(body) == 1 else b"".join(body)
            await send({"type": "http.response.body", "body": joined})
            return
        last = len(body) - 1
        for index, chunk in enumerate(body):
            await send({"type": "http.response.body", "body": chunk, "more_body": index < last})


class StreamingResponse:
    """A body of unknown length, sent as an async iterator yields it (see the module docstring)."""

    __slots__ = ("chunks", "headers", "started", "status")

    def __init__(
        self,
        chunks: AsyncIterable[Chunk],
        status: int = 200,
        headers: Headers | None = None,
    ) -> None:
        self.chunks = chunks
        self.status = status
        self.headers = headers if headers is not None else [OCTET_STREAM]
        self.started = False

    async def send(self, send: Send, receive: Receive) -> None:
        iterator = aiter(self.chunks)
        streaming = asyncio.ensure_future(self._stream(iterator, send))
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await asyncio.wait({streaming, disconnected}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:  # the server is cancelling us: stop the producer too
            streaming.cancel()
            raise
        finally:
            disconnected.cancel()
            if not streaming.done():  # the client went away first: stop the work behind it
                streaming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({streaming})
            await _close(iterator)
        if disconnected.done() and not disconnected.cancelled() and streaming.cancelled():
            raise ClientDisconnected
        streaming.result()  # re-raise what the producer raised

    async def _stream(self, iterator: AsyncIterator[Chunk], send: Send) -> None:
        try:
            first: Chunk | None = await anext(iterator)
        except StopAsyncIteration:
            first = None
        self.started = True
        await send({"type": "http.response.start", "status": self.status, "headers": self.headers})
        if first is not None:
            await send({"type": "http.response.body", "body": first, "more_body": True})
            async for chunk in iterator:
                if chunk:  # an empty chunk would end a chunked body early
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _close(iterator: AsyncIterator[Chunk]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        try:
            await aclose()
        except Exception:  # the producer failed while closing: nothing left to tell the client
            logger.exception("error while closing a response stream")


def sse_frame(data: bytes) -> bytes:
    """One server-sent event carrying ``data`` (each line of it a ``data:`` line)."""
    if b"\n" in data or b"\r" in data:
        lines = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").split(b"\n")
        return b"".join(b"data: " + line + b"\n" for line in lines) + b"\n"
    return b"data: " + data + b"\n\n"


def event_stream(
    events: AsyncIterable[Any],
    encode: Callable[[Any], bytes],
    *,
    on_error: Callable[[Exception], Any] | None = None,
    frame: Callable[[bytes], bytes] = sse_frame,
    status: int = 200,
) -> StreamingResponse:
    """Server-sent events: each event ``encode`` d and framed (``data: ...\\n\\n``).

    ``on_error``: an exception raised by ``events`` after the first event becomes one last event
    (its return value, encoded) and the stream ends normally; without it the connection is aborted.
    An exception before the first event is an ordinary error response either way.
    """
    return StreamingResponse(
        _frames(events, encode, on_error, frame),
        status,
        [EVENT_STREAM, (b"cache-control", b"no-cache"), (b"x-accel-buffering", b"no")],
    )


async def _frames(
    events: AsyncIterable[Any],
    encode: Callable[[Any], bytes],
    on_error: Callable[[Exception], Any] | None,
    frame: Callable[[bytes], bytes],
) -> AsyncIterator[bytes]:
    iterator = aiter(events)
    sent = False
    try:
        async for event in iterator:
            yield frame(encode(event))
            sent = True
    except Exception as exc:
        if on_error is None or not sent:
            raise
        logger.warning("stream ended by an error: %s", exc)
        yield frame(encode(on_error(exc)))
    finally:
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()


async def lifespan(receive: Receive, send: Send) -> None:
    """Answer the ASGI lifespan protocol (the server owns start-up and shutdown itself)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
