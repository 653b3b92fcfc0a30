"""oipserve's gRPC server: gRPC over HTTP/2 on ``zttp`` (compiled HTTP/2 framing) and asyncio.

Why not grpc.aio: on one core its floor (a handler that parses the request and returns a fixed
response) is ~6k calls/s and it hands calls to Python one at a time; the same floor on this server
does ~14-17k (``python -m benchmarks.grpc_floor``, ``docs/performance.md``). Calls run as tasks
on the server's event loop (the one uvicorn serves REST on), so concurrent calls reach the
dynamic batcher together.

It serves grpcio's method handlers unchanged (``grpc.method_handlers_generic_handler``): the
servicers in ``service.py`` receive a :class:`CallContext` with the part of
``grpc.aio.ServicerContext`` they use (``invocation_metadata``, ``abort``, ``write``,
``time_remaining``, ``cancelled``), and ``abort`` raises ``grpc.aio.AbortError`` as grpc.aio does.

What it does, after gRPC's ``doc/PROTOCOL-HTTP2.md``:

- unary, server-streaming and bidirectional (and client-streaming) calls; request messages are
  read as they arrive, responses are written with HTTP/2 flow control (zttp parks what the peer's
  window does not take and releases it on ``WINDOW_UPDATE``), writes wait while the transport or
  the stream is backed up;
- the status in ``grpc-status`` / ``grpc-message`` trailers, or a trailers-only response when the
  call fails before any message was sent;
- ``grpc-timeout`` (``DEADLINE_EXCEEDED`` when it passes), cancellation (``RST_STREAM`` from the
  client cancels the call's task; so does a lost connection), request messages compressed with
  ``gzip`` or ``deflate``, metadata (``-bin`` values base64-decoded);
- messages larger than ``max_message_bytes`` either way are ``RESOURCE_EXHAUSTED`` with
  grpc-core's wording; an unknown method is ``UNIMPLEMENTED``;
- :meth:`GrpcServer.stop` sends ``GOAWAY``, refuses new calls (``UNAVAILABLE``), gives calls in
  flight ``grace`` seconds, then cancels them and closes the connections.

TLS is asyncio's (``ssl=`` on :meth:`GrpcServer.start`, ALPN ``h2``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, Final, NoReturn

import grpc
import zttp

from oipserve.errors import OIPServeError
from oipserve.transport.grpc import wire
from oipserve.transport.grpc.errors import code_of

logger = logging.getLogger("oipserve.grpc")

_OK_TRAILERS: Final = wire.status_trailers(grpc.StatusCode.OK)
_RESPONSE_HEADERS: Final = [
    (b"content-type", wire.CONTENT_TYPE),
    (b"grpc-accept-encoding", wire.ACCEPT_ENCODING),
]
_WRITE_HIGH_WATER: Final = 1 << 20
"""A streaming ``write`` waits while more than this many bytes of the stream are unsent."""
_NO_ERROR: Final = 0
_REFUSED_STREAM: Final = 7
STREAMS_PER_CONNECTION: Final = 3584
"""After this many calls a connection is drained: ``GOAWAY`` (no error), then closed once its calls
are done; clients carry on over a new connection. zttp 0.0.35 fails any HTTP/2 connection on its
4,097th stream ("HTTP/2 flood detected"; uvicorn's HTTP/2 too), so we leave before that, as servers
with a maximum connection age do. ``tests/integration/test_grpc_http2.py`` runs past it."""


class _HandlerCallDetails(grpc.HandlerCallDetails):
    def __init__(self, method: str, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self.method = method
        self.invocation_metadata = metadata


class _Abort(Exception):
    """The status a call ends with, raised inside the server (never reaches a servicer)."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class GrpcServer:
    """A gRPC server on the running event loop; grpcio's generic handlers supply the methods."""

    def __init__(self, max_message_bytes: int, *, max_concurrent_streams: int = 0) -> None:
        self.max_message_bytes = max_message_bytes
        self.max_concurrent_streams = max_concurrent_streams
        """Calls one connection may run at once (0: no limit); a call beyond is refused with
        ``RESOURCE_EXHAUSTED`` (zttp does not let a server advertise the HTTP/2 setting)."""
        self._generic: list[grpc.GenericRpcHandler[Any, Any]] = []
        self._methods: dict[bytes, grpc.RpcMethodHandler[Any, Any] | None] = {}
        self._server: asyncio.AbstractServer | None = None
        self._connections: set[_Connection] = set()
        self.accepted = 0  # connections accepted since start
        self.stopping = False

    def add_generic_rpc_handlers(
        self, handlers: Sequence[grpc.GenericRpcHandler[Any, Any]]
    ) -> None:
        self._generic.extend(handlers)

    def method(self, path: bytes) -> grpc.RpcMethodHandler[Any, Any] | None:
        """The handler of ``/Service/Method`` (looked up once per path, then cached)."""
        try:
            return self._methods[path]
        except KeyError:
            pass
        details = _HandlerCallDetails(path.decode("latin-1"), ())
        found = None
        for generic in self._generic:
            found = generic.service(details)
            if found is not None:
                break
        if len(self._methods) < 1024:  # unknown paths are cached too, within reason
            self._methods[path] = found
        return found

    async def start(
        self,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        *,
        reuse_port: bool = False,
    ) -> int:
        """Listen on ``host:port`` (0: any free port); returns the port bound.

        Raises :class:`OSError` when the address cannot be bound (without ``reuse_port``, a port
        in use is an error, not silently shared; ``--workers N`` sets it in every worker, after
        the supervisor made sure the port was free).
        """
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(["h2"])
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self),
            host=host.strip("[]") or None,
            port=port,
            ssl=ssl_context,
            reuse_address=True,
            reuse_port=reuse_port or None,
        )
        sockets = self._server.sockets
        bound: int = sockets[0].getsockname()[1] if sockets else port
        return bound

    def opened(self, connection: _Connection) -> None:
        self._connections.add(connection)
        self.accepted += 1

    def closed(self, connection: _Connection) -> None:
        self._connections.discard(connection)

    async def stop(self, grace: float | None) -> None:
        """Refuse new calls (``GOAWAY``), let calls in flight finish within ``grace``, close."""
        self.stopping = True
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.go_away()
        deadline = time.monotonic() + (grace or 0)
        while grace and time.monotonic() < deadline and any(c.calls for c in self._connections):
            await asyncio.sleep(0.01)
        for connection in list(self._connections):
            connection.abort_calls()
            connection.close()
        if self._server is not None:
            await self._server.wait_closed()


class _Connection(asyncio.Protocol):
    """One HTTP/2 connection: zttp parses and frames, each call runs as a task."""

    def __init__(self, server: GrpcServer) -> None:
        self.server = server
        self.conn = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        self.calls: dict[int, _Call] = {}
        self.streams = 0  # calls accepted on this connection
        self.last_stream_id = 0  # the highest stream a call was accepted on
        self.draining = False  # GOAWAY sent: no new calls, close when the last one is done
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self._flush_pending = False
        self._writable = asyncio.Event()
        self._writable.set()
        self._window = asyncio.Event()  # set whenever the peer grants send credit

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is no subclass
        self.server.opened(self)
        self.conn.initiate_connection()
        self.flush()

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.closed(self)
        self.abort_calls()
        self._writable.set()
        self._window.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        try:
            conn.receive_data(data)
            while (event := conn.next_event()) is not zttp.NEED_DATA:
                kind = type(event)
                if kind is zttp.Data:
                    call = self.calls.get(event.stream_id)  # type: ignore[union-attr]
                    if call is not None:
                        call.feed(event.data)  # type: ignore[union-attr]
                elif kind is zttp.Request:
                    self.request(event)  # type: ignore[arg-type]
                elif kind is zttp.EndOfMessage:
                    call = self.calls.get(event.stream_id)  # type: ignore[union-attr]
                    if call is not None:
                        call.end_of_requests()
                elif kind is zttp.RstStream:
                    call = self.calls.get(event.stream_id)  # type: ignore[union-attr]
                    if call is not None:
                        call.cancelled_by_peer()
                elif kind is zttp.WindowUpdate:
                    self._window.set()
                elif event is zttp.CONNECTION_CLOSED:
                    break
        except zttp.ProtocolError as exc:
            logger.warning("closing a gRPC connection after a protocol error: %r", exc)
            self.flush()
            self.close()
            return
        self.flush()

    # -- calls --------------------------------------------------------------------------------

    def request(self, event: zttp.Request) -> None:
        stream = self.conn.stream(event.stream_id)
        headers = (
            event.headers.to_list(lowercase_names=True)
            if isinstance(event.headers, zttp.HeaderBlock)
            else event.headers
        )
        content_type = b""
        timeout: bytes | None = None
        encoding = b"identity"
        for name, value in headers:
            if name == b"content-type":
                content_type = value
            elif name == b"grpc-timeout":
                timeout = value
            elif name == b"grpc-encoding":
                encoding = value
        if event.method != b"POST" or not content_type.startswith(wire.CONTENT_TYPE):
            stream.send_response(415, [(b"content-type", b"text/plain")], end_stream=False)
            stream.send_data(b"gRPC requires POST with content-type application/grpc\n")
            stream.end_message()
            return
        if self.draining:
            # opened before the client saw our GOAWAY: refused, so the client retries it elsewhere
            stream.reset(_REFUSED_STREAM)
            return
        if self.server.stopping:
            _trailers_only(stream, grpc.StatusCode.UNAVAILABLE, "the server is shutting down")
            return
        limit = self.server.max_concurrent_streams
        if limit and len(self.calls) >= limit:
            _trailers_only(
                stream,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this connection already runs {limit} calls (--grpc-max-concurrent-streams)",
            )
            return
        handler = self.server.method(event.path)
        if handler is None:
            _trailers_only(stream, grpc.StatusCode.UNIMPLEMENTED, "Method not found!")
            return
        deadline = None
        if timeout is not None:
            try:
                deadline = time.monotonic() + wire.parse_timeout(timeout)
            except OIPServeError as error:
                _trailers_only(stream, grpc.StatusCode.INTERNAL, error.message)
                return
        if encoding not in (b"identity", b"gzip", b"deflate"):
            _trailers_only(
                stream,
                grpc.StatusCode.UNIMPLEMENTED,
                f"Compression algorithm '{encoding.decode(errors='replace')}' is not supported",
            )
            return
        call = _Call(self, event.stream_id, handler, headers, deadline, encoding)
        self.calls[event.stream_id] = call
        self.last_stream_id = event.stream_id
        self.streams += 1
        if self.streams >= STREAMS_PER_CONNECTION:
            self.go_away()
        if event.end_stream:
            call.end_of_requests()
        elif handler.request_streaming:
            call.start()

    def finished(self, call: _Call) -> None:
        self.calls.pop(call.stream_id, None)
        if self.draining and not self.calls:
            self.loop.call_soon(self._close_drained)

    def _close_drained(self) -> None:
        if not self.calls:
            self.flush()
            self.close()

    def schedule_flush(self) -> None:
        """Write what zttp queued once this loop iteration's calls have all answered."""
        if not self._flush_pending:
            self._flush_pending = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self._flush_pending = False
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    async def drained(self, stream_id: int) -> None:
        """Wait while the transport is paused or the stream holds too many unsent bytes."""
        await self._writable.wait()
        while self.transport is not None and not self.transport.is_closing():
            try:
                pending = self.conn.stream(stream_id).pending_bytes or 0
            except zttp.ProtocolError:
                return
            if pending <= _WRITE_HIGH_WATER:
                return
            self._window.clear()
            await self._window.wait()

    def go_away(self) -> None:
        """Send ``GOAWAY`` (no error): calls accepted so far finish, later streams are refused."""
        if self.draining:
            return
        self.draining = True
        with contextlib.suppress(zttp.ProtocolError):
            self.conn.close(_NO_ERROR, self.last_stream_id)
        self.schedule_flush()

    def abort_calls(self) -> None:
        for call in list(self.calls.values()):
            call.cancel()

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


def _trailers_only(stream: zttp.Stream, code: grpc.StatusCode, details: str) -> None:
    headers = [(b"content-type", wire.CONTENT_TYPE), *wire.status_trailers(code, details)]
    stream.send_response(200, headers, end_stream=True)


class _Call:
    """One call on one stream: collects request messages, runs the handler, sends the answer."""

    def __init__(
        self,
        connection: _Connection,
        stream_id: int,
        handler: grpc.RpcMethodHandler[Any, Any],
        headers: list[tuple[bytes, bytes]],
        deadline: float | None,
        encoding: bytes,
    ) -> None:
        self.connection = connection
        self.stream_id = stream_id
        self.handler = handler
        self.headers = headers
        self.deadline = deadline
        self.encoding = encoding
        self.buffer = bytearray()  # the start of a message whose end has not arrived
        self.messages: list[bytes] = []
        self.inbox: asyncio.Queue[bytes | None] | None = None
        self.task: asyncio.Task[None] | None = None
        self.headers_sent = False
        self.done = False
        self.peer_cancelled = False
        self.failure: _Abort | None = None

    # -- reading (called from data_received) ---------------------------------------------------

    def feed(self, data: bytes) -> None:
        """Split what arrived into messages; a partial message waits in ``buffer``.

        The usual case, whole messages in one DATA event, is read from ``data`` without a copy;
        otherwise bytes accumulate in a ``bytearray`` (appending is amortized O(1), so a message
        of many megabytes arriving in 16 KiB frames is not copied over and over).
        """
        if self.done or self.failure is not None:
            return
        buffer: bytes | bytearray = data
        if self.buffer:
            self.buffer += data
            buffer = self.buffer
        limit = self.connection.server.max_message_bytes
        offset = 0
        while len(buffer) - offset >= wire.PREFIX_BYTES:
            length = int.from_bytes(buffer[offset + 1 : offset + 5], "big")
            if length > limit:
                self.fail_reading(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"Received message larger than max ({length} vs. {limit})",
                )
                return
            end = offset + wire.PREFIX_BYTES + length
            if len(buffer) < end:
                break
            message = bytes(buffer[offset + wire.PREFIX_BYTES : end])
            compressed = buffer[offset]
            offset = end
            if compressed:
                try:
                    message = wire.decompress(self.encoding, message)
                except OIPServeError as error:
                    self.fail_reading(code_of(error.kind), error.message)
                    return
                if len(message) > limit:
                    self.fail_reading(
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"Received message larger than max ({len(message)} vs. {limit})",
                    )
                    return
            if self.inbox is not None:
                self.inbox.put_nowait(message)
            else:
                self.messages.append(message)
        if buffer is self.buffer:
            del self.buffer[:offset]
        elif offset < len(buffer):
            self.buffer = bytearray(buffer[offset:])

    def end_of_requests(self) -> None:
        if self.failure is not None or self.done:
            return
        if self.buffer:
            self.fail_reading(grpc.StatusCode.INTERNAL, "the request ended inside a message")
            return
        if self.task is None:
            self.start()
        if self.inbox is not None:
            self.inbox.put_nowait(None)

    def fail_reading(self, code: grpc.StatusCode, details: str) -> None:
        """A request that cannot be read: end the call with ``code`` now."""
        self.failure = _Abort(code, details)
        self.buffer = bytearray()
        if self.task is not None:
            self.task.cancel()
        else:
            self.send_status(code, details)
            self.finish()
            self._stop_reading()

    def _stop_reading(self) -> None:
        # our side is closed; RST_STREAM(NO_ERROR) tells the client to stop sending (RFC 9113 8.1)
        with contextlib.suppress(zttp.ProtocolError):
            self.connection.conn.stream(self.stream_id).reset(_NO_ERROR)
        self.connection.schedule_flush()

    def cancelled_by_peer(self) -> None:
        self.peer_cancelled = True
        self.cancel()

    def cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()
        else:
            self.finish()

    # -- running ------------------------------------------------------------------------------

    def start(self) -> None:
        if self.handler.request_streaming:
            self.inbox = asyncio.Queue()
            for message in self.messages:
                self.inbox.put_nowait(message)
            self.messages = []
        self.task = self.connection.loop.create_task(self.run())

    async def run(self) -> None:
        context = CallContext(self)
        try:
            if self.deadline is None:
                await self._invoke(context)
            else:
                async with asyncio.timeout_at(self._loop_deadline()):
                    await self._invoke(context)
            if not self.peer_cancelled:
                self.send_status(grpc.StatusCode.OK)
        except grpc.aio.AbortError:
            abort = context.aborted or _Abort(grpc.StatusCode.UNKNOWN, "aborted")
            self.send_status(abort.code, abort.details)
        except _Abort as abort:
            self.send_status(abort.code, abort.details)
        except TimeoutError:
            self.send_status(grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline Exceeded")
        except asyncio.CancelledError:
            if self.failure is not None:
                self.send_status(self.failure.code, self.failure.details)
                self._stop_reading()
            elif not self.peer_cancelled:
                self.send_status(grpc.StatusCode.CANCELLED, "Cancelled")
        except Exception as exc:
            logger.exception("unhandled error in gRPC call %s", self._method_name())
            self.send_status(grpc.StatusCode.UNKNOWN, f"Unexpected {type(exc)}: {exc}")
        finally:
            self.finish()

    def _loop_deadline(self) -> float:
        assert self.deadline is not None
        return self.connection.loop.time() + (self.deadline - time.monotonic())

    def _method_name(self) -> str:
        for name, value in self.headers:
            if name == b":path":
                return value.decode("latin-1")
        return "?"

    async def _invoke(self, context: CallContext) -> None:
        # our context stands in for grpc.aio's ServicerContext (the part the servicers use)
        handler: Any = self.handler
        if handler.request_streaming:
            requests: Any = self._requests(handler.request_deserializer)
        else:
            if len(self.messages) != 1:
                raise _Abort(
                    grpc.StatusCode.INTERNAL,
                    f"a unary request needs exactly one message, got {len(self.messages)}",
                )
            requests = _deserialize(handler.request_deserializer, self.messages[0])
            self.messages = []
        if handler.unary_unary is not None:
            response = await handler.unary_unary(requests, context)
            self.send_message(response)
        elif handler.unary_stream is not None:
            result = handler.unary_stream(requests, context)
            if hasattr(result, "__aiter__"):
                async for response in result:
                    await context.write(response)
            else:
                await result
        elif handler.stream_stream is not None:
            result = handler.stream_stream(requests, context)
            if hasattr(result, "__aiter__"):
                async for response in result:
                    await context.write(response)
            else:
                await result
        elif handler.stream_unary is not None:
            response = await handler.stream_unary(requests, context)
            self.send_message(response)

    async def _requests(self, deserializer: Callable[[bytes], Any] | None) -> AsyncIterator[Any]:
        assert self.inbox is not None
        while (message := await self.inbox.get()) is not None:
            yield _deserialize(deserializer, message)

    # -- writing ------------------------------------------------------------------------------

    def send_message(self, response: Any) -> None:
        serializer = self.handler.response_serializer
        payload: bytes = serializer(response) if serializer is not None else response
        limit = self.connection.server.max_message_bytes
        if len(payload) > limit:
            raise _Abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"Sent message larger than max ({len(payload)} vs. {limit})",
            )
        stream = self.connection.conn.stream(self.stream_id)
        if not self.headers_sent:
            stream.send_response(200, _RESPONSE_HEADERS)
            self.headers_sent = True
        stream.send_data(wire.frame(payload))
        self.connection.schedule_flush()

    def send_status(self, code: grpc.StatusCode, details: str = "") -> None:
        if self.done or self.peer_cancelled:
            return
        self.done = True
        try:
            stream = self.connection.conn.stream(self.stream_id)
            if self.headers_sent:
                trailers = (
                    _OK_TRAILERS
                    if code is grpc.StatusCode.OK and not details
                    else (wire.status_trailers(code, details))
                )
                stream.end_message(trailers)
            else:
                _trailers_only(stream, code, details)
        except zttp.ProtocolError:
            return  # the stream or the connection is gone
        self.connection.schedule_flush()

    def finish(self) -> None:
        self.done = True
        self.connection.finished(self)


def _deserialize(deserializer: Callable[[bytes], Any] | None, message: bytes) -> Any:
    if deserializer is None:
        return message
    try:
        return deserializer(message)
    except Exception as exc:
        raise _Abort(
            grpc.StatusCode.INTERNAL, f"could not parse the request message: {exc}"
        ) from None


class CallContext:
    """What a servicer sees of its call: grpc.aio's ``ServicerContext``, the parts we use."""

    def __init__(self, call: _Call) -> None:
        self._call = call
        self.aborted: _Abort | None = None
        self._metadata: tuple[tuple[str, str | bytes], ...] | None = None

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        if self._metadata is None:
            self._metadata = wire.invocation_metadata(self._call.headers)
        return self._metadata

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn:
        self.aborted = _Abort(code, details)
        raise grpc.aio.AbortError(details)

    async def write(self, message: Any) -> None:
        call = self._call
        if call.done:
            raise asyncio.CancelledError
        call.send_message(message)
        await call.connection.drained(call.stream_id)

    def time_remaining(self) -> float | None:
        if self._call.deadline is None:
            return None
        return max(0.0, self._call.deadline - time.monotonic())

    def cancelled(self) -> bool:
        return self._call.peer_cancelled

    def peer(self) -> str:
        transport = self._call.connection.transport
        address = transport.get_extra_info("peername") if transport is not None else None
        if isinstance(address, tuple) and len(address) >= 2:
            host = address[0]
            return f"ipv6:[{host}]:{address[1]}" if ":" in host else f"ipv4:{host}:{address[1]}"
        return "unknown"
