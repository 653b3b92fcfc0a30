"""The REST floor: a bare ASGI handler on uvicorn (httptools, uvloop) that returns a fixed body.

    python floor_http.py PORT BODY_FILE [HEADER: VALUE ...]

It reads (and drops) the request body and answers every request with BODY_FILE's bytes, status 200
and the given headers: the least any server on this HTTP stack can do per request.
"""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

import uvicorn

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


def make_app(body: bytes, headers: list[tuple[bytes, bytes]]) -> Any:
    start = {
        "type": "http.response.start",
        "status": 200,
        "headers": [*headers, (b"content-length", str(len(body)).encode())],
    }
    response = {"type": "http.response.body", "body": body}

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        more = scope["type"] == "http"
        while more:
            message = await receive()
            more = message.get("more_body", False)
        await send(start)
        await send(response)

    return app


def main(argv: list[str]) -> None:
    port, body_file, *header_args = argv[1:]
    headers = []
    for arg in header_args:
        name, _, value = arg.partition(":")
        headers.append((name.strip().lower().encode(), value.strip().encode()))
    app = make_app(Path(body_file).read_bytes(), headers)
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(port),
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main(sys.argv)
