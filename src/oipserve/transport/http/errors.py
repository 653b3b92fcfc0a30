"""The one table from error kind to HTTP status (PROTOCOL.md §0)."""

from __future__ import annotations

from typing import Final

from oipserve.errors import ErrorKind

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
}


def status_of(kind: ErrorKind) -> int:
    return STATUS[kind]
