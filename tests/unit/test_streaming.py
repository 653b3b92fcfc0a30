"""Response plumbing in memory (a fake ASGI receive / send): chunked bodies sent without a join,
streams with back-pressure and disconnect, server-sent events, per-route compression."""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oipserve.errors import InvalidArgument
from oipserve.server import Server
from oipserve.settings import Settings
from oipserve.transport.http import compression
from oipserve.transport.http.app import HTTPApp
from oipserve.transport.http.asgi import (
    JOIN_BELOW,
    BaseResponse,
    ClientDisconnected,
    Message,
    Request,
    Response,
    StreamingResponse,
    event_stream,
    sse_frame,
)
from oipserve.transport.http.routing import Mount, Route


class FakeClient:
    """ASGI receive / send of one request: records what is sent; ``disconnect()`` hangs up."""

    def __init__(self, body: bytes = b"") -> None:
        self.sent: list[Message] = []
        self._body = body
        self._body_read = False
        self._gone = asyncio.Event()
        self.on_send: Callable[[Message], Awaitable[None]] | None = None

    def disconnect(self) -> None:
        self._gone.set()

    async def receive(self) -> Message:
        if not self._body_read:
            self._body_read = True
            return {"type": "http.request", "body": self._body, "more_body": False}
        await self._gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if self.on_send is not None:
            await self.on_send(message)

    @property
    def bodies(self) -> list[Any]:
        return [m["body"] for m in self.sent if m["type"] == "http.response.body"]

    @property
    def status(self) -> int:
        status: int = self.sent[0]["status"]
        return status

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0]["headers"])


def scope(method: str, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> Any:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "headers": headers or [],
    }


def app_with(handler: Callable[[Request], Awaitable[BaseResponse]], compress: bool = False) -> Any:
    route = Route("POST", "/x", handler, name="x", category=None, compress=compress)
    return HTTPApp(None, 1 << 20, extra_mounts=[Mount("/test", [route])])  # type: ignore[arg-type]


# -- bodies of known length --------------------------------------------------------------------


def test_large_chunked_body_is_sent_chunk_by_chunk_without_a_join() -> None:
    big = np.arange(JOIN_BELOW, dtype=np.uint8).data
    chunks: list[bytes | memoryview] = [b'{"header":1}', big, b"tail"]
    client = FakeClient()
    asyncio.run(Response(200, chunks).send(client.send, client.receive))
    assert client.bodies[1] is big  # the very memoryview: nothing copied into one buffer
    assert [m.get("more_body", False) for m in client.sent[1:]] == [True, True, False]
    assert int(client.headers[b"content-length"]) == 12 + JOIN_BELOW + 4


def test_small_chunked_body_is_written_once() -> None:
    client = FakeClient()
    asyncio.run(Response(200, [b"ab", memoryview(b"cd"), b"e"]).send(client.send, client.receive))
    assert client.bodies == [b"abcde"]
    assert client.headers[b"content-length"] == b"5"


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_chunks_compress_without_a_join(coding: str) -> None:
    chunks: list[bytes | memoryview] = [b"x" * 1000, memoryview(b"y" * 5000), b"z"]
    pieces = compression.compress_chunks(chunks, coding)
    joined = b"".join(pieces)
    expected = b"x" * 1000 + b"y" * 5000 + b"z"
    assert (gzip.decompress(joined) if coding == "gzip" else zlib.decompress(joined)) == expected


def test_only_routes_marked_compress_are_compressed() -> None:
    async def handler(request: Request) -> BaseResponse:
        return Response(200, b"a" * 1000)

    for compress, expected in ((True, b"gzip"), (False, None)):
        client = FakeClient()
        asyncio.run(
            app_with(handler, compress)(
                scope("POST", "/test/x", [(b"accept-encoding", b"gzip, deflate")]),
                client.receive,
                client.send,
            )
        )
        assert client.headers.get(b"content-encoding") == expected
        body = b"".join(client.bodies)
        assert (gzip.decompress(body) if expected else body) == b"a" * 1000


# -- streams -----------------------------------------------------------------------------------


def test_stream_is_chunked_and_ends_with_an_empty_message() -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"one", b"", b"two"):
            yield part

    client = FakeClient()
    asyncio.run(StreamingResponse(chunks()).send(client.send, client.receive))
    assert b"content-length" not in client.headers
    assert client.bodies == [b"one", b"two", b""]
    assert [m.get("more_body") for m in client.sent[1:]] == [True, True, False]


def test_stream_is_pulled_one_chunk_per_send() -> None:
    """Back-pressure: while ``send`` waits (a full socket), the producer is not asked for more."""
    produced: list[int] = []
    release = asyncio.Event()

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(100):
            produced.append(i)
            yield b"chunk %d" % i

    async def scenario() -> None:
        client = FakeClient()

        async def slow_send(message: Message) -> None:
            if len(client.sent) == 3:  # the second body chunk: the socket is full
                await release.wait()

        client.on_send = slow_send
        task = asyncio.ensure_future(StreamingResponse(chunks()).send(client.send, client.receive))
        for _ in range(20):
            await asyncio.sleep(0)
        assert len(produced) == 2  # the one being sent, nothing buffered behind it
        release.set()
        await task
        assert len(produced) == 100
        assert len(client.bodies) == 101

    asyncio.run(scenario())


def test_disconnect_cancels_the_work_behind_the_stream() -> None:
    state: dict[str, Any] = {}

    async def model_step() -> bytes:
        await asyncio.sleep(3600)  # a generation that would run for an hour
        return b"never"

    async def chunks() -> AsyncIterator[bytes]:
        try:
            yield b"first token"
            state["work"] = asyncio.ensure_future(model_step())
            yield await state["work"]
        finally:
            state["closed"] = True

    async def scenario() -> None:
        client = FakeClient()

        async def hang_up_after_first(message: Message) -> None:
            if message.get("body") == b"first token":
                client.disconnect()

        client.on_send = hang_up_after_first
        with pytest.raises(ClientDisconnected):
            await asyncio.wait_for(
                StreamingResponse(chunks()).send(client.send, client.receive), timeout=5
            )
        assert state["closed"]
        assert state["work"].cancelled()
        assert client.bodies == [b"first token"]  # no end-of-body: the client is gone

    asyncio.run(scenario())


def test_disconnect_through_the_app_is_quiet() -> None:
    closed = asyncio.Event()

    async def handler(request: Request) -> BaseResponse:
        await request.body()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                yield b"a"
                await asyncio.sleep(3600)
                yield b"b"
            finally:
                closed.set()

        return StreamingResponse(chunks())

    async def scenario() -> None:
        client = FakeClient()

        async def hang_up(message: Message) -> None:
            if message.get("body") == b"a":
                client.disconnect()

        client.on_send = hang_up
        await asyncio.wait_for(
            app_with(handler)(scope("POST", "/test/x"), client.receive, client.send), 5
        )
        assert closed.is_set()

    asyncio.run(scenario())


def test_error_before_the_first_chunk_is_an_ordinary_error_response() -> None:
    async def handler(request: Request) -> BaseResponse:
        async def first_step() -> bytes:
            raise InvalidArgument("bad prompt")

        async def chunks() -> AsyncIterator[bytes]:
            yield await first_step()

        return StreamingResponse(chunks())

    client = FakeClient()
    asyncio.run(app_with(handler)(scope("POST", "/test/x"), client.receive, client.send))
    assert client.status == 400
    assert json.loads(b"".join(client.bodies)) == {"error": "bad prompt"}


def test_error_after_the_first_chunk_aborts_the_connection() -> None:
    async def handler(request: Request) -> BaseResponse:
        async def chunks() -> AsyncIterator[bytes]:
            yield b"partial"
            raise InvalidArgument("too late")

        return StreamingResponse(chunks())

    client = FakeClient()
    with pytest.raises(InvalidArgument, match="too late"):
        asyncio.run(app_with(handler)(scope("POST", "/test/x"), client.receive, client.send))
    assert client.status == 200
    assert client.bodies == [b"partial"]  # no end-of-body: the server closes the connection


# -- server-sent events ------------------------------------------------------------------------


def test_sse_frames() -> None:
    assert sse_frame(b'{"a":1}') == b'data: {"a":1}\n\n'
    assert sse_frame(b"one\ntwo") == b"data: one\ndata: two\n\n"


def test_event_stream_sends_data_frames_and_errors_in_band() -> None:
    async def events() -> AsyncIterator[dict[str, Any]]:
        yield {"text_output": "Hel"}
        yield {"text_output": "lo"}
        raise RuntimeError("model died")

    client = FakeClient()
    response = event_stream(
        events(), lambda e: json.dumps(e).encode(), on_error=lambda e: {"error": str(e)}
    )
    asyncio.run(response.send(client.send, client.receive))
    assert client.headers[b"content-type"] == b"text/event-stream; charset=utf-8"
    assert b"".join(client.bodies) == (
        b'data: {"text_output": "Hel"}\n\n'
        b'data: {"text_output": "lo"}\n\n'
        b'data: {"error": "model died"}\n\n'
    )


# -- the real inference handler: a large binary output goes out as its own chunk ---------------


def test_binary_inference_response_is_not_joined(examples_repository: Path) -> None:
    data = np.arange(100_000, dtype=np.float32)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "INPUT0",
                    "shape": [data.size],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": data.nbytes},
                }
            ],
            "parameters": {"binary_data_output": True},
        }
    ).encode()

    async def scenario() -> FakeClient:
        server = Server(Settings(model_repository=examples_repository))
        await server.registry.load("identity")
        server.dataplane.started = True
        try:
            client = FakeClient(header + data.tobytes())
            headers = [(b"inference-header-content-length", str(len(header)).encode())]
            await server.http_app(
                scope("POST", "/v2/models/identity/infer", headers), client.receive, client.send
            )
            return client
        finally:
            await server.registry.close()
            server.execution.shutdown()

    client = asyncio.run(scenario())
    assert client.status == 200
    header_length = int(client.headers[b"inference-header-content-length"])
    bodies = client.bodies
    assert len(bodies) == 2
    assert len(bodies[0]) == header_length
    assert isinstance(bodies[1], memoryview)  # a view of the output array, not a copy
    assert np.array_equal(np.frombuffer(bodies[1], dtype=np.float32), data)
