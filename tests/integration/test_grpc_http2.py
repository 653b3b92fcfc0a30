"""oipserve's gRPC server stack (``transport/grpc/http2.py``) against grpcio's own client.

Each test starts a :class:`GrpcServer` on a free loopback port inside the test's event loop with a
few small handlers, and calls it through ``grpc.aio``: metadata, deadlines, cancellation,
compressed requests, flow control both ways, bidirectional streams, size limits, shutdown with
``GOAWAY`` and TLS. The inference service itself is tested through it in ``test_grpc.py``.
"""

from __future__ import annotations

import asyncio
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import grpc
import pytest

from oipserve.transport.grpc.http2 import STREAMS_PER_CONNECTION, CallContext, GrpcServer

SERVICE = "test.Echo"
LIMIT = 4 << 20
EOF: Any = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs
OPTIONS = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]


class Handlers:
    """Echo-style handlers on raw bytes; they record what the server did to them."""

    def __init__(self) -> None:
        self.cancelled = asyncio.Event()
        self.release = asyncio.Event()
        self.started = asyncio.Event()

    async def echo(self, request: bytes, context: CallContext) -> bytes:
        return request

    async def metadata(self, request: bytes, context: CallContext) -> bytes:
        pairs = dict(context.invocation_metadata())
        text = pairs.get("x-text", "")
        binary = pairs.get("x-data-bin", b"")
        assert isinstance(text, str) and isinstance(binary, bytes)
        return text.encode() + b"|" + binary

    async def wait(self, request: bytes, context: CallContext) -> bytes:
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return b"released"

    async def big(self, request: bytes, context: CallContext) -> bytes:
        return b"x" * int(request.decode())

    async def abort(self, request: bytes, context: CallContext) -> bytes:
        await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "non-ASCII détails, 100%")

    async def crash(self, request: bytes, context: CallContext) -> bytes:
        raise ValueError("boom")

    async def bidi(self, requests: AsyncIterator[bytes], context: CallContext) -> None:
        async for request in requests:
            await context.write(request[::-1])

    def generic(self) -> grpc.GenericRpcHandler[Any, Any]:
        unary = {
            name: grpc.unary_unary_rpc_method_handler(getattr(self, name))
            for name in ("echo", "metadata", "wait", "big", "abort", "crash")
        }
        return grpc.method_handlers_generic_handler(
            SERVICE, {**unary, "bidi": grpc.stream_stream_rpc_method_handler(self.bidi)}
        )


Scenario = Callable[[grpc.aio.Channel, Handlers, GrpcServer], Awaitable[None]]


def _run(
    scenario: Scenario,
    *,
    ssl_context: ssl.SSLContext | None = None,
    credentials: grpc.ChannelCredentials | None = None,
    limit: int = LIMIT,
) -> None:
    async def main() -> None:
        handlers = Handlers()
        server = GrpcServer(limit)
        server.add_generic_rpc_handlers((handlers.generic(),))
        port = await server.start("127.0.0.1", 0, ssl_context)
        if credentials is None:
            channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS)
        else:
            channel = grpc.aio.secure_channel(f"localhost:{port}", credentials, options=OPTIONS)
        try:
            async with channel:
                await asyncio.wait_for(scenario(channel, handlers, server), 30)
        finally:
            await server.stop(None)

    asyncio.run(main())


def _unary(channel: Any, name: str) -> Any:
    """A bytes-in, bytes-out stub (grpc-stubs wants serializers; grpc.aio does not)."""
    return channel.unary_unary(f"/{SERVICE}/{name}")


async def _error(call: Awaitable[Any]) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value


def test_unary_and_metadata() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        assert await _unary(channel, "echo")(b"hello") == b"hello"
        assert await _unary(channel, "echo")(b"") == b""
        metadata = (("x-text", "plain"), ("x-data-bin", b"\x00\xffbytes"))
        answer = await _unary(channel, "metadata")(b"", metadata=metadata)
        assert answer == b"plain|\x00\xffbytes"

    _run(scenario)


def test_status_details_unknown_method_and_crash() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        error = await _error(_unary(channel, "abort")(b""))
        assert error.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert error.details() == "non-ASCII détails, 100%"
        error = await _error(_unary(channel, "nothing")(b""))
        assert error.code() == grpc.StatusCode.UNIMPLEMENTED
        error = await _error(_unary(channel, "crash")(b""))
        assert error.code() == grpc.StatusCode.UNKNOWN
        assert "boom" in (error.details() or "")
        assert await _unary(channel, "echo")(b"still serving") == b"still serving"

    _run(scenario)


def test_deadline_cancels_the_handler() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        error = await _error(_unary(channel, "wait")(b"", timeout=0.2))
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        await asyncio.wait_for(handlers.cancelled.wait(), 5)

    _run(scenario)


def test_client_cancel_cancels_the_handler() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        call = _unary(channel, "wait")(b"")
        await asyncio.wait_for(handlers.started.wait(), 5)
        call.cancel()
        await asyncio.wait_for(handlers.cancelled.wait(), 5)
        assert await _unary(channel, "echo")(b"next") == b"next"

    _run(scenario)


def test_compressed_requests() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        payload = b"compressible " * 1000
        for compression in (grpc.Compression.Gzip, grpc.Compression.Deflate):
            answer = await _unary(channel, "echo")(payload, compression=compression)
            assert answer == payload

    _run(scenario)


def test_large_messages_both_ways_and_limits() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        payload = bytes(range(256)) * (3 << 12)  # 3 MiB: many flow-control windows
        assert await _unary(channel, "echo")(payload) == payload
        assert len(await _unary(channel, "big")(str(LIMIT).encode())) == LIMIT
        error = await _error(_unary(channel, "echo")(b"x" * (LIMIT + 1)))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == f"Received message larger than max ({LIMIT + 1} vs. {LIMIT})"
        error = await _error(_unary(channel, "big")(str(LIMIT + 1).encode()))
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        assert error.details() == f"Sent message larger than max ({LIMIT + 1} vs. {LIMIT})"
        assert await _unary(channel, "echo")(b"after") == b"after"

    _run(scenario)


def test_a_message_of_many_megabytes_is_read_in_linear_time() -> None:
    """32 MiB arrive in ~2,000 HTTP/2 frames; re-joining the buffer per frame would copy ~32 GB."""

    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        payload = bytes(range(256)) * (1 << 17)
        assert await _unary(channel, "echo")(payload) == payload

    _run(scenario, limit=64 << 20)


def test_bidirectional_stream() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        messages = [f"message {i}".encode() * (1 + i * 5000) for i in range(40)]
        stub: Any = channel
        call = stub.stream_stream(f"/{SERVICE}/bidi")()
        received = []
        for message in messages:  # one at a time: the answer comes before the next request
            await call.write(message)
            received.append(await call.read())
        await call.done_writing()
        assert await call.read() == EOF
        assert received == [m[::-1] for m in messages]
        assert await call.code() == grpc.StatusCode.OK

    _run(scenario)


def test_many_calls_on_one_channel_outlive_a_connection() -> None:
    """Past STREAMS_PER_CONNECTION calls the server drains the connection (GOAWAY) and the client
    goes on over a new one without a failed call (zttp alone fails the 4,097th stream)."""

    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        echo = _unary(channel, "echo")
        total = 2 * STREAMS_PER_CONNECTION + 100
        for start in range(0, total, 64):
            batch = [f"{i}".encode() for i in range(start, min(start + 64, total))]
            assert await asyncio.gather(*(echo(m) for m in batch)) == batch
        assert server.accepted >= 3

    _run(scenario)


def test_stop_lets_calls_in_flight_finish_and_refuses_new_ones() -> None:
    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        in_flight = asyncio.ensure_future(_unary(channel, "wait")(b""))
        await asyncio.wait_for(handlers.started.wait(), 5)
        stopping = asyncio.ensure_future(server.stop(10))
        await asyncio.sleep(0.05)
        assert not stopping.done()  # waiting for the call in flight
        handlers.release.set()
        assert await in_flight == b"released"
        await asyncio.wait_for(stopping, 5)
        error = await _error(_unary(channel, "echo")(b"late", timeout=5))
        assert error.code() == grpc.StatusCode.UNAVAILABLE

    _run(scenario)


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls(tmp_path: Path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost"),
        ],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())

    async def scenario(channel: grpc.aio.Channel, handlers: Handlers, server: GrpcServer) -> None:
        assert await _unary(channel, "echo")(b"secret") == b"secret"

    _run(scenario, ssl_context=context, credentials=credentials)
