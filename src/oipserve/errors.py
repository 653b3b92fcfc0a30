"""The one exception tree of oipserve.

Every error a client can see is an :class:`OIPServeError`. Each class carries a transport-neutral
:class:`ErrorKind`; the REST and gRPC transports each hold exactly one table from kind to status
(``transport/http/errors.py``, ``transport/grpc/errors.py``), and a test proves both tables cover
every kind.

    OIPServeError
    ├── InvalidArgument          INVALID_ARGUMENT   client sent something wrong
    ├── ModelNotFound            NOT_FOUND          unknown model / version, nothing READY
    ├── NotFound                 NOT_FOUND          unknown path or resource
    ├── MethodNotAllowed         METHOD_NOT_ALLOWED wrong HTTP method on a known route
    ├── Unavailable              UNAVAILABLE        server or version not ready
    │   └── QueueFull            UNAVAILABLE        overload; carries a retry-after hint
    ├── DeadlineExceeded         DEADLINE_EXCEEDED  request timed out before it ran
    ├── PayloadTooLarge          RESOURCE_EXHAUSTED body, message or tensor over its limit
    ├── PermissionDenied         PERMISSION_DENIED  the server is configured to refuse this
    │                                               (a model upload without --allow-model-upload)
    ├── Unauthenticated          UNAUTHENTICATED    no valid API key (--api-key)
    ├── Unsupported              UNIMPLEMENTED      feature or encoding not supported
    ├── AlreadyExists            ALREADY_EXISTS     resource registered twice
    └── InternalError            INTERNAL           a server fault (a model raised, a worker died)
        ├── ModelLoadError       INTERNAL           a model could not be loaded
        └── StartupError         INTERNAL           the server could not start (no repository,
                                                    a port taken); the CLI exits with it
"""

from __future__ import annotations

import enum


class ErrorKind(enum.Enum):
    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    UNAVAILABLE = "UNAVAILABLE"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INTERNAL = "INTERNAL"


class OIPServeError(Exception):
    """Base of every error oipserve reports to a client."""

    kind: ErrorKind = ErrorKind.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidArgument(OIPServeError):
    kind = ErrorKind.INVALID_ARGUMENT


class NotFound(OIPServeError):
    kind = ErrorKind.NOT_FOUND


class ModelNotFound(NotFound):
    """Unknown model or version; the message follows Triton's wording."""

    def __init__(self, model: str, version: str = "", detail: str = "") -> None:
        text = f"Request for unknown model: '{model}'"
        if version:
            text += f" version '{version}'"
        text += f" {detail}" if detail else " is not found"
        super().__init__(text)
        self.model = model
        self.version = version


class MethodNotAllowed(OIPServeError):
    kind = ErrorKind.METHOD_NOT_ALLOWED


class Unavailable(OIPServeError):
    kind = ErrorKind.UNAVAILABLE


class QueueFull(Unavailable):
    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(OIPServeError):
    kind = ErrorKind.DEADLINE_EXCEEDED


class PayloadTooLarge(OIPServeError):
    kind = ErrorKind.RESOURCE_EXHAUSTED


class PermissionDenied(OIPServeError):
    kind = ErrorKind.PERMISSION_DENIED


class Unauthenticated(OIPServeError):
    kind = ErrorKind.UNAUTHENTICATED


class Unsupported(OIPServeError):
    kind = ErrorKind.UNIMPLEMENTED


class DecoupledModel(Unsupported):
    """Unary inference on a decoupled (streaming) model. Each transport words it as Triton does
    (HTTP 501, gRPC ``ModelInfer`` UNIMPLEMENTED); see :mod:`oipserve.dataplane`."""

    def __init__(self, model: str) -> None:
        super().__init__(
            f"model '{model}' has a decoupled transaction policy: it answers streaming "
            "requests only (gRPC ModelStreamInfer)"
        )
        self.model = model


class AlreadyExists(OIPServeError):
    kind = ErrorKind.ALREADY_EXISTS


class InternalError(OIPServeError):
    kind = ErrorKind.INTERNAL


class ModelLoadError(InternalError):
    pass


class StartupError(InternalError):
    """The server could not start. The library raises it; the CLI logs it once and exits 1."""


__all__ = [
    "AlreadyExists",
    "DeadlineExceeded",
    "DecoupledModel",
    "ErrorKind",
    "InternalError",
    "InvalidArgument",
    "MethodNotAllowed",
    "ModelLoadError",
    "ModelNotFound",
    "NotFound",
    "OIPServeError",
    "PayloadTooLarge",
    "PermissionDenied",
    "QueueFull",
    "StartupError",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
]
