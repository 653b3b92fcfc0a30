"""The access log (``--access-log``, off by default): one line per HTTP request on the
``oipserve.access`` logger, at INFO::

    127.0.0.1:52144 "POST /v2/models/iris/infer" 200 161B 0.84ms model=iris

client, method and path (with the query string), status, body bytes sent (after compression),
duration from the request's arrival to its last byte handed to the server, and the model the path
names (``-`` when none). A request whose client went away before an answer logs status 499 (as
nginx does). Each record also carries these as attributes (``method``, ``path``, ``status``,
``bytes``, ``duration_ms``, ``model``) for structured formatters.

The log is a wrapper around the application, installed only when asked for: with it off, the
request path does not change at all.
"""

from __future__ import annotations

import logging
import time

from oipserve.errors import OIPServeError
from oipserve.transport.http.asgi import ASGIApp, Message, Receive, Scope, Send
from oipserve.transport.http.routing import Router

logger = logging.getLogger("oipserve.access")

CLIENT_CLOSED = 499


class AccessLog:
    """Wraps an ASGI ``app``; ``router`` names the model of each path."""

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        self.router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = CLIENT_CLOSED
        sent = 0

        async def counting_send(message: Message) -> None:
            nonlocal status, sent
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                sent += body.nbytes if isinstance(body, memoryview) else len(body)
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            self._log(scope, status, sent, time.perf_counter() - start)

    def _log(self, scope: Scope, status: int, sent: int, seconds: float) -> None:
        method = scope["method"]
        path = scope.get("root_path", "") + scope["path"]
        query = scope.get("query_string", b"")
        if query:
            path += "?" + query.decode("latin-1")
        client = scope.get("client")
        peer = f"{client[0]}:{client[1]}" if client else "-"
        model = self._model(method, scope.get("raw_path") or scope["path"].encode())
        duration_ms = seconds * 1000
        logger.info(
            '%s "%s %s" %d %dB %.2fms model=%s',
            peer,
            method,
            path,
            status,
            sent,
            duration_ms,
            model,
            extra={
                "method": method,
                "path": path,
                "status": status,
                "bytes": sent,
                "duration_ms": duration_ms,
                "model": model,
            },
        )

    def _model(self, method: str, raw_path: bytes) -> str:
        try:
            match = self.router.match(method, raw_path)
        except OIPServeError:
            return "-"
        return match.params.get("model", "-")
