"""Wire errors back into :mod:`oipserve.errors` classes: the transports' tables, read in reverse.

The server maps each :class:`~oipserve.errors.ErrorKind` to one HTTP status
(``transport/http/errors.py``) and one gRPC code (``transport/grpc/errors.py``). The client inverts
those same tables; where two kinds share a status (HTTP 400: ``INVALID_ARGUMENT`` and
``ALREADY_EXISTS``; 503: ``UNAVAILABLE`` and ``DEADLINE_EXCEEDED``) the first kind of the table
wins, and for gRPC the kind named after the code wins (``UNIMPLEMENTED``, not
``METHOD_NOT_ALLOWED``). Statuses no table holds fall back by class: another 4xx is
:class:`~oipserve.errors.InvalidArgument`, anything else :class:`~oipserve.errors.InternalError`.

Two refinements restore a subclass the status alone cannot tell: a 503 / ``UNAVAILABLE`` with a
``Retry-After`` header is :class:`~oipserve.errors.QueueFull`, and a 404 / ``NOT_FOUND`` whose
message is Triton's "Request for unknown model" is :class:`~oipserve.errors.ModelNotFound`.

    OIPServeError
    └── Unavailable
        └── ConnectError     the client could not reach the server at all (client-side only)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

import msgspec

from oipserve import errors
from oipserve.errors import ErrorKind, OIPServeError
from oipserve.transport.http.errors import STATUS as HTTP_STATUS

if TYPE_CHECKING:
    import grpc


class ConnectError(errors.Unavailable):
    """The server could not be reached (refused, unresolvable, TLS handshake failed)."""


def _classes() -> Iterable[type[OIPServeError]]:
    todo: list[type[OIPServeError]] = [OIPServeError]
    while todo:
        cls = todo.pop()
        yield cls
        todo.extend(cls.__subclasses__())


def _class_of_kind() -> dict[ErrorKind, type[OIPServeError]]:
    """For each kind, the most general class of :mod:`oipserve.errors` that carries it."""
    found: dict[ErrorKind, type[OIPServeError]] = {}
    for cls in _classes():
        if cls.__module__ != errors.__name__:
            continue
        parent = cls.__mro__[1]
        if cls is not OIPServeError and (
            parent is OIPServeError or getattr(parent, "kind", None) != cls.kind
        ):
            found.setdefault(cls.kind, cls)
    for kind in ErrorKind:
        found.setdefault(kind, OIPServeError)
    return found


CLASS_OF_KIND: Final = _class_of_kind()
KIND_OF_STATUS: Final[dict[int, ErrorKind]] = {}
for _kind, _status in HTTP_STATUS.items():
    KIND_OF_STATUS.setdefault(_status, _kind)

_UNKNOWN_MODEL = re.compile(
    r"Request for unknown model: '(?P<model>.*?)'(?: version '(?P<v>.*?)')?"
)
_CONNECT_FAILURES = (
    "failed to connect to all addresses",
    "DNS resolution failed",
    "Connection refused",
    "connections to all backends failing",
    "Ssl handshake failed",
    "empty address list",
)


def make_error(kind: ErrorKind, message: str, retry_after: str | None = None) -> OIPServeError:
    """The :mod:`oipserve.errors` instance for ``kind`` carrying the server's ``message``."""
    if kind is ErrorKind.NOT_FOUND and (match := _UNKNOWN_MODEL.match(message)):
        error = errors.ModelNotFound(match["model"], match["v"] or "")
        error.message = message
        error.args = (message,)
        return error
    if kind is ErrorKind.UNAVAILABLE and retry_after is not None:
        try:
            seconds = int(retry_after)
        except ValueError:
            seconds = 1
        return errors.QueueFull(message, seconds)
    return CLASS_OF_KIND[kind](message)


def error_message(content: bytes) -> str:
    """The text of an error body: ``{"error": ...}`` (OIP), ``{"detail": ...}`` (FastAPI), or the
    body itself."""
    try:
        body: Any = msgspec.json.decode(content)
    except msgspec.DecodeError:
        return content.decode("utf-8", "replace").strip()
    if isinstance(body, dict):
        for key in ("error", "detail", "message"):
            if key in body:
                value = body[key]
                return value if isinstance(value, str) else msgspec.json.encode(value).decode()
    return content.decode("utf-8", "replace").strip()


def from_http(status: int, content: bytes, headers: Mapping[str, str]) -> OIPServeError:
    kind = KIND_OF_STATUS.get(status)
    if kind is None:
        kind = ErrorKind.INVALID_ARGUMENT if 400 <= status < 500 else ErrorKind.INTERNAL
    message = error_message(content) or f"HTTP {status}"
    return make_error(kind, message, headers.get("retry-after"))


def from_grpc(code: grpc.StatusCode, details: str | None, target: str) -> OIPServeError:
    from oipserve.transport.grpc.errors import STATUS as GRPC_STATUS

    message = details or code.name
    if code.name == "UNAVAILABLE" and any(text in message for text in _CONNECT_FAILURES):
        return ConnectError(f"cannot reach {target}: {message}")
    if code.name in ErrorKind.__members__ and ErrorKind[code.name] in GRPC_STATUS:
        kind = ErrorKind[code.name]
    else:
        kinds = [k for k, c in GRPC_STATUS.items() if c == code]
        kind = kinds[0] if kinds else _grpc_fallback(code.name)
    return make_error(kind, message)


def _grpc_fallback(name: str) -> ErrorKind:
    client_side = {"FAILED_PRECONDITION", "OUT_OF_RANGE", "PERMISSION_DENIED", "UNAUTHENTICATED"}
    return ErrorKind.INVALID_ARGUMENT if name in client_side else ErrorKind.INTERNAL
