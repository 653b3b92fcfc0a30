"""``GET /metrics``: the Prometheus exposition, as a small ASGI application.

The same application serves the path on the HTTP port (mounted at ``/metrics``, outside the API
key and the restricted-API categories, as Triton's metrics endpoint is) and alone on
``--metrics-port`` (Triton's 8002 convention). ``GET`` (and ``HEAD``) answer the text exposition
whatever the ``Accept`` header asks for (every Prometheus scraper reads the 0.0.4 text format);
another method is 405 with ``Allow: GET, HEAD``; a path below it is 404.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from oipserve.observability.exposition import CONTENT_TYPE

logger = logging.getLogger("oipserve.metrics")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_ALLOWED = ("GET", "HEAD")


class MetricsEndpoint:
    """ASGI application answering ``render()``'s exposition at its root path."""

    def __init__(self, render: Callable[[], str], *, standalone: bool = False) -> None:
        self._render = render
        self._standalone = standalone

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        root = ("/metrics", "/metrics/") if self._standalone else ("", "/")
        if path not in root:
            await _send(send, 404, b'{"error":"Not Found"}', b"application/json")
            return
        method = scope["method"]
        if method not in _ALLOWED:
            await _send(
                send,
                405,
                b'{"error":"Method Not Allowed"}',
                b"application/json",
                [(b"allow", b"GET, HEAD")],
            )
            return
        try:
            body = self._render().encode()
        except Exception:  # a scrape never takes the server down; say why in the log
            logger.exception("rendering the metrics failed")
            await _send(send, 500, b'{"error":"rendering the metrics failed"}', b"application/json")
            return
        await _send(
            send, 200, b"" if method == "HEAD" else body, CONTENT_TYPE.encode(), length=len(body)
        )


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
    length: int | None = None,
) -> None:
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body) if length is None else length).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


__all__ = ["MetricsEndpoint"]
