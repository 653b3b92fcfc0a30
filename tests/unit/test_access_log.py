"""The access log in memory: one record per request with its fields; nothing when it is off."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest

from oipserve.transport.http.access_log import AccessLog
from oipserve.transport.http.app import HTTPApp
from oipserve.transport.http.asgi import BaseResponse, Message, Request, Response, StreamingResponse
from oipserve.transport.http.routing import Mount, Route


async def _chunks(request: Request) -> BaseResponse:
    return Response(200, [b"abc", memoryview(b"defg")])


async def _stream_forever(request: Request) -> BaseResponse:
    async def chunks() -> AsyncIterator[bytes]:
        yield b"first"
        await asyncio.sleep(3600)
        yield b"never"

    return StreamingResponse(chunks())


async def _read_body(request: Request) -> BaseResponse:
    await request.body()
    return Response(200, b"unreachable")


def _app() -> HTTPApp:
    routes = [
        Route("GET", "/models/{model}/read", _read_body, name="r", category=None),
        Route("GET", "/models/{model}/x", _chunks, name="x", category=None),
        Route("GET", "/stream", _stream_forever, name="s", category=None),
    ]
    return HTTPApp(None, 1024, extra_mounts=[Mount("/t", routes)])  # type: ignore[arg-type]


async def _request(
    app: Any, path: str, query: bytes = b"", hang_up: bool = False, gone_already: bool = False
) -> None:
    gone = asyncio.Event()
    if gone_already:
        gone.set()

    async def receive() -> Message:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: Message) -> None:
        if hang_up and message.get("body") == b"first":
            gone.set()

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "headers": [],
        "client": ("127.0.0.1", 5555),
    }
    await asyncio.wait_for(app(scope, receive, send), 5)


def _records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "oipserve.access"]


def test_one_line_per_request(caplog: pytest.LogCaptureFixture) -> None:
    app = _app()
    caplog.set_level(logging.INFO, "oipserve.access")
    asyncio.run(_request(AccessLog(app, app.router), "/t/models/iris/x", b"a=1"))
    (record,) = _records(caplog)
    message = record.getMessage()
    assert message.startswith('127.0.0.1:5555 "GET /t/models/iris/x?a=1" 200 7B ')
    assert message.endswith("ms model=iris")
    assert record.__dict__["status"] == 200
    assert record.__dict__["bytes"] == 7
    assert record.__dict__["model"] == "iris"
    assert record.__dict__["duration_ms"] >= 0


def test_unknown_path_and_disconnect(caplog: pytest.LogCaptureFixture) -> None:
    app = _app()
    caplog.set_level(logging.INFO, "oipserve.access")
    logged = AccessLog(app, app.router)
    asyncio.run(_request(logged, "/nowhere"))
    asyncio.run(_request(logged, "/t/stream", hang_up=True))
    asyncio.run(_request(logged, "/t/models/m/read", gone_already=True))
    missing, gone, unanswered = _records(caplog)
    assert ' "GET /nowhere" 404 ' in missing.getMessage()
    assert missing.getMessage().endswith("model=-")
    assert gone.__dict__["status"] == 200  # the status went out before the client left
    assert gone.__dict__["bytes"] == 5
    # the client left before any answer: nginx's 499
    assert ' "GET /t/models/m/read" 499 0B ' in unanswered.getMessage()


def test_off_by_default(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "oipserve.access")
    asyncio.run(_request(_app(), "/t/models/iris/x"))
    assert _records(caplog) == []
