"""The bench's HTTP load generator against tiny in-process servers: responses split across reads,
header case, error statuses, a response it cannot frame."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from oipserve.cli._load import LevelResult, http_request, run_http_level

Reply = Callable[[asyncio.StreamWriter], None]


def _ok_split(writer: asyncio.StreamWriter) -> None:
    # the header arrives in two pieces and the body in a third
    writer.write(b"HTTP/1.1 200 OK\r\nContent-")
    writer.write(b"Length: 5\r\nx-other: 1\r\n\r\n")
    writer.write(b"hello")


def _unavailable(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 2\r\n\r\n{}")


def _chunked(writer: asyncio.StreamWriter) -> None:
    writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n0\r\n\r\n")


async def _serve(reply: Reply, concurrency: int) -> LevelResult:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                reply(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    request = http_request(f"127.0.0.1:{port}", "/v2/models/m/infer", {"x": "y"}, b'{"a":1}')
    async with server:
        return await run_http_level("127.0.0.1", port, request, concurrency, 0.3, 0.05)


def test_counts_responses_split_across_reads() -> None:
    result = asyncio.run(_serve(_ok_split, 4))
    assert result.concurrency == 4
    assert result.requests > 10
    assert result.errors == 0
    assert result.throughput == pytest.approx(result.requests / 0.3)
    assert 0 < result.p50_ms <= result.p90_ms <= result.p99_ms <= result.max_ms


def test_error_statuses_are_counted_with_the_first_status_line() -> None:
    result = asyncio.run(_serve(_unavailable, 2))
    assert result.requests == 0
    assert result.errors > 0
    assert result.first_error == "HTTP/1.1 503 Service Unavailable"


def test_a_response_without_content_length_stops_the_connection() -> None:
    result = asyncio.run(_serve(_chunked, 1))
    assert result.requests == 0
    assert "Content-Length" in result.first_error


def test_request_bytes() -> None:
    request = http_request("h:1", "/p", {"content-type": "application/json"}, b"{}")
    assert request == (
        b"POST /p HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/json\r\n"
        b"content-length: 2\r\n\r\n{}"
    )
