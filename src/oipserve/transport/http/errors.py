"""The one table from error kind to HTTP status (PROTOCOL.md §0), and the OIP error body."""

from __future__ import annotations

from typing import Final

from oipserve.errors import ErrorKind, OIPServeError, QueueFull, Unauthenticated
from oipserve.protocol import codec
from oipserve.transport.http import compression
from oipserve.transport.http.asgi import Response

STATUS: Final[dict[ErrorKind, int]] = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.METHOD_NOT_ALLOWED: 405,
    ErrorKind.RESOURCE_EXHAUSTED: 413,
    ErrorKind.INTERNAL: 500,
    ErrorKind.UNIMPLEMENTED: 501,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.DEADLINE_EXCEEDED: 503,
    ErrorKind.ALREADY_EXISTS: 400,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAUTHENTICATED: 401,
}


def status_of(kind: ErrorKind) -> int:
    return STATUS[kind]


def error_response(error: OIPServeError) -> Response:
    """The OIP error: ``{"error": "<message>"}`` with the kind's status (and its headers)."""
    response = Response(status_of(error.kind), codec.encode({"error": error.message}))
    if isinstance(error, QueueFull):
        response.headers.append((b"retry-after", str(error.retry_after_s).encode()))
    if isinstance(error, Unauthenticated):
        response.headers.append((b"www-authenticate", b"Bearer"))
    if isinstance(error, compression.UnsupportedEncoding):
        response.headers.append((b"accept-encoding", b"gzip, deflate"))
    return response
