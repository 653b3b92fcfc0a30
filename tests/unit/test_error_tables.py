"""The REST and gRPC error tables cover every error kind and agree (PROTOCOL.md §0, §1.4).

Agreement, precisely: for every :class:`ErrorKind`,

1. the gRPC code is one that the HTTP status admits, per :data:`ADMITTED` below (gRPC's own
   HTTP-to-status correspondence, narrowed by PROTOCOL.md §0/§1.4: 400 is a client's request
   error, 404 a lookup, 405/501 something not supported, 413 a size limit, 500 a fault of
   ours, 503 a temporary refusal or an expired deadline);
2. so a client's mistake (4xx) is never a server-fault code over gRPC (``INTERNAL``, ``UNKNOWN``,
   ``UNAVAILABLE``, ``DATA_LOSS``), and a server fault (5xx) never a client-fault code;
3. a kind named after a gRPC status code maps to that very code;
4. neither table ever answers success (2xx / ``OK``) or gRPC ``UNKNOWN``.
"""

from __future__ import annotations

import inspect

import grpc
import pytest

import oipserve.errors as errors_module
from oipserve.errors import ErrorKind, ModelNotFound, OIPServeError, QueueFull
from oipserve.transport.grpc import errors as grpc_errors
from oipserve.transport.http import errors as http_errors

Code = grpc.StatusCode

#: the gRPC codes each HTTP status of ours is compatible with
ADMITTED: dict[int, frozenset[grpc.StatusCode]] = {
    400: frozenset({Code.INVALID_ARGUMENT, Code.ALREADY_EXISTS, Code.FAILED_PRECONDITION}),
    401: frozenset({Code.UNAUTHENTICATED}),
    403: frozenset({Code.PERMISSION_DENIED}),
    404: frozenset({Code.NOT_FOUND}),
    405: frozenset({Code.UNIMPLEMENTED}),
    413: frozenset({Code.RESOURCE_EXHAUSTED}),
    500: frozenset({Code.INTERNAL}),
    501: frozenset({Code.UNIMPLEMENTED}),
    503: frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED}),
}
SERVER_FAULT_CODES = frozenset({Code.INTERNAL, Code.UNKNOWN, Code.UNAVAILABLE, Code.DATA_LOSS})


def _error_classes() -> list[type[OIPServeError]]:
    return [
        cls
        for _, cls in inspect.getmembers(errors_module, inspect.isclass)
        if issubclass(cls, OIPServeError)
    ]


def test_both_tables_cover_every_kind_and_nothing_else() -> None:
    assert set(http_errors.STATUS) == set(ErrorKind)
    assert set(grpc_errors.STATUS) == set(ErrorKind)


def test_every_error_class_has_a_status_on_both_transports() -> None:
    classes = _error_classes()
    assert len(classes) >= 12
    for cls in classes:
        assert cls.kind in http_errors.STATUS, cls
        assert cls.kind in grpc_errors.STATUS, cls


@pytest.mark.parametrize("kind", list(ErrorKind), ids=[kind.value for kind in ErrorKind])
def test_tables_agree(kind: ErrorKind) -> None:
    status = http_errors.status_of(kind)
    code = grpc_errors.code_of(kind)
    assert status in ADMITTED, f"{kind}: HTTP {status} has no admitted gRPC codes"
    assert code in ADMITTED[status], f"{kind}: HTTP {status} but gRPC {code.name}"
    if 400 <= status < 500:
        assert code not in SERVER_FAULT_CODES, f"{kind}: client error {status} is {code.name}"
    else:
        assert 500 <= status < 600
        assert code in SERVER_FAULT_CODES | {Code.UNIMPLEMENTED, Code.DEADLINE_EXCEEDED}
    if kind.value in Code.__members__:
        assert code is grpc.StatusCode[kind.value]
    assert code not in (Code.OK, Code.UNKNOWN)
    assert not 200 <= status < 300


def test_protocol_decisions() -> None:
    """Spot checks of PROTOCOL.md §0 through the exception classes a client meets most."""
    cases: list[tuple[OIPServeError, int, grpc.StatusCode]] = [
        (errors_module.InvalidArgument("x"), 400, Code.INVALID_ARGUMENT),
        (ModelNotFound("m"), 404, Code.NOT_FOUND),
        (errors_module.MethodNotAllowed("x"), 405, Code.UNIMPLEMENTED),
        (errors_module.PayloadTooLarge("x"), 413, Code.RESOURCE_EXHAUSTED),
        (errors_module.InternalError("x"), 500, Code.INTERNAL),
        (errors_module.ModelLoadError("x"), 500, Code.INTERNAL),
        (errors_module.Unsupported("x"), 501, Code.UNIMPLEMENTED),
        (errors_module.Unavailable("x"), 503, Code.UNAVAILABLE),
        (QueueFull("x"), 503, Code.UNAVAILABLE),
        (errors_module.DeadlineExceeded("x"), 503, Code.DEADLINE_EXCEEDED),
        (errors_module.AlreadyExists("x"), 400, Code.ALREADY_EXISTS),
        (errors_module.PermissionDenied("x"), 403, Code.PERMISSION_DENIED),
        (errors_module.Unauthenticated("x"), 401, Code.UNAUTHENTICATED),
    ]
    for error, status, code in cases:
        assert http_errors.status_of(error.kind) == status, error
        assert grpc_errors.code_of(error.kind) is code, error
