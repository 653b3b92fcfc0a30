"""The one table from error kind to gRPC status code (PROTOCOL.md §0 and §1.4).

It mirrors the REST table in ``transport/http/errors.py``; ``tests/unit/test_error_tables.py``
proves both cover every :class:`~oipserve.errors.ErrorKind` and agree. ``METHOD_NOT_ALLOWED`` only
happens over REST (a wrong HTTP method); gRPC's nearest status is ``UNIMPLEMENTED``.
"""

from __future__ import annotations

from typing import Final

import grpc

from oipserve.errors import ErrorKind

STATUS: Final[dict[ErrorKind, grpc.StatusCode]] = {
    ErrorKind.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorKind.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorKind.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorKind.INTERNAL: grpc.StatusCode.INTERNAL,
    ErrorKind.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorKind.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorKind.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorKind.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorKind.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorKind.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
}


def code_of(kind: ErrorKind) -> grpc.StatusCode:
    return STATUS[kind]
