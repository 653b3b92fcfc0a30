"""Triton's ``triton_python_backend_utils`` (``pb_utils``) for Python-backend models on oipserve.

A Triton ``model.py`` does ``import triton_python_backend_utils as pb_utils``; while oipserve loads
such a model (:mod:`oipserve.runtimes.triton_python`) this module is that import. Names and
behaviour follow triton-inference-server/python_backend: the Python half in
``src/resources/triton_python_backend_utils.py`` (dtype tables, ``get_*_by_name``,
``ModelConfig`` auto-complete helpers, ``serialize_byte_tensor``) and the C++ half the stub binds
with pybind11 in ``src/pb_stub.cc`` (``Tensor`` — ``src/pb_tensor.cc``, ``InferenceRequest`` —
``src/infer_request.cc``, ``InferenceResponse`` — ``src/infer_response.cc``,
``InferenceResponseSender`` — ``src/response_sender.cc``, ``TritonError`` — ``src/pb_error.cc``,
``Logger`` — ``src/pb_log.cc``, ``MetricFamily`` / ``Metric`` — ``src/metric_family.cc``,
``src/metric.cc``, and the model-control calls ``load_model`` / ``unload_model`` /
``is_model_ready``).

Tensors live in CPU memory only (oipserve has no GPU support): ``is_cpu()`` is always true and
``from_dlpack`` / ``to_dlpack`` exchange CPU tensors. A name Triton has and this module does not
raises an :class:`AttributeError` naming it.
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import json
import logging
import struct
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final, TypeVar

import numpy as np

from oipserve.errors import (
    AlreadyExists,
    ErrorKind,
    InvalidArgument,
    NotFound,
    OIPServeError,
    Unavailable,
    Unsupported,
)
from oipserve.model import InferRequest, InferResponse, ResponseSender, SenderClosed, ServerCalls

__all__ = [
    "TRITONSERVER_MEMORY_CPU",
    "TRITONSERVER_MEMORY_CPU_PINNED",
    "TRITONSERVER_MEMORY_GPU",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_END",
    "TRITONSERVER_REQUEST_FLAG_SEQUENCE_START",
    "TRITONSERVER_REQUEST_RELEASE_ALL",
    "TRITONSERVER_REQUEST_RELEASE_RESCHEDULE",
    "TRITONSERVER_RESPONSE_COMPLETE_FINAL",
    "TRITON_STRING_TO_NUMPY",
    "InferenceRequest",
    "InferenceResponse",
    "InferenceResponseSender",
    "LogLevel",
    "Logger",
    "Metric",
    "MetricFamily",
    "ModelConfig",
    "Tensor",
    "TritonError",
    "TritonModelException",
    "deserialize_bytes_tensor",
    "get_input_config_by_name",
    "get_input_tensor_by_name",
    "get_output_config_by_name",
    "get_output_tensor_by_name",
    "is_model_ready",
    "load_model",
    "numpy_to_triton_type",
    "serialize_byte_tensor",
    "triton_string_to_numpy",
    "triton_to_numpy_type",
    "unload_model",
    "using_decoupled_model_transaction_policy",
]

# -- flags (TRITONSERVER_* of tritonserver.h, as pb_stub.cc exports them) ---------------------

TRITONSERVER_REQUEST_FLAG_SEQUENCE_START: Final = 1
TRITONSERVER_REQUEST_FLAG_SEQUENCE_END: Final = 2
TRITONSERVER_RESPONSE_COMPLETE_FINAL: Final = 1
TRITONSERVER_REQUEST_RELEASE_ALL: Final = 1
TRITONSERVER_REQUEST_RELEASE_RESCHEDULE: Final = 2
TRITONSERVER_MEMORY_CPU: Final = 0
TRITONSERVER_MEMORY_CPU_PINNED: Final = 1
TRITONSERVER_MEMORY_GPU: Final = 2

# -- datatypes (triton_python_backend_utils.py) -----------------------------------------------

TRITON_STRING_TO_NUMPY: Final[dict[str, Any]] = {
    "TYPE_BOOL": bool,
    "TYPE_UINT8": np.uint8,
    "TYPE_UINT16": np.uint16,
    "TYPE_UINT32": np.uint32,
    "TYPE_UINT64": np.uint64,
    "TYPE_INT8": np.int8,
    "TYPE_INT16": np.int16,
    "TYPE_INT32": np.int32,
    "TYPE_INT64": np.int64,
    "TYPE_FP16": np.float16,
    "TYPE_FP32": np.float32,
    "TYPE_FP64": np.float64,
    "TYPE_STRING": np.object_,
}

_TRITON_TYPES: Final[dict[int, Any]] = {
    1: np.bool_,
    2: np.uint8,
    3: np.uint16,
    4: np.uint32,
    5: np.uint64,
    6: np.int8,
    7: np.int16,
    8: np.int32,
    9: np.int64,
    10: np.float16,
    11: np.float32,
    12: np.float64,
    13: np.object_,
}
_BY_NUMPY: Final[dict[Any, int]] = {np.dtype(t): code for code, t in _TRITON_TYPES.items()}


def triton_to_numpy_type(data_type: int) -> Any:
    """The numpy type of a TRITONSERVER_DataType code (``None`` if unknown)."""
    return _TRITON_TYPES.get(data_type)


def numpy_to_triton_type(data_type: Any) -> int | None:
    """The TRITONSERVER_DataType code of a numpy type (``np.bytes_`` is BYTES, 13)."""
    if data_type is np.bytes_:
        return 13
    try:
        return _BY_NUMPY.get(np.dtype(data_type))
    except TypeError:
        return None


def triton_string_to_numpy(triton_type_string: str) -> Any:
    """``"TYPE_FP32"`` → ``np.float32`` (a KeyError for an unknown name, as Triton)."""
    return TRITON_STRING_TO_NUMPY[triton_type_string]


def serialize_byte_tensor(input_tensor: np.ndarray) -> np.ndarray | None:
    """A BYTES tensor as one flat uint8 array of 4-byte-length-prefixed elements, C order."""
    if input_tensor.size == 0:
        return np.empty([0], dtype=np.object_)
    if input_tensor.dtype != np.object_ and input_tensor.dtype.type != np.bytes_:
        return None
    parts: list[bytes] = []
    for item in input_tensor.reshape(-1):
        data = item if isinstance(item, bytes) else str(item).encode("utf-8")
        parts.append(struct.pack("<I", len(data)))
        parts.append(data)
    return np.frombuffer(b"".join(parts), dtype=np.uint8)


def deserialize_bytes_tensor(encoded_tensor: bytes) -> np.ndarray:
    """The inverse of :func:`serialize_byte_tensor`: a 1-D object array of :class:`bytes`."""
    items: list[bytes] = []
    buffer = bytes(encoded_tensor)
    offset = 0
    while offset < len(buffer):
        (length,) = struct.unpack_from("<I", buffer, offset)
        offset += 4
        items.append(buffer[offset : offset + length])
        offset += length
    return np.array(items, dtype=np.object_)


# -- errors (pb_error.cc, triton_python_backend_utils.py) -------------------------------------


class TritonError(Exception):
    """An error a response carries; ``code`` one of the class constants (pb_error.h)."""

    UNKNOWN: ClassVar[int] = 0
    INTERNAL: ClassVar[int] = 1
    NOT_FOUND: ClassVar[int] = 2
    INVALID_ARG: ClassVar[int] = 3
    UNAVAILABLE: ClassVar[int] = 4
    UNSUPPORTED: ClassVar[int] = 5
    ALREADY_EXISTS: ClassVar[int] = 6
    CANCELLED: ClassVar[int] = 7

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self._message = message
        self._code = code

    def message(self) -> str:
        return self._message

    def code(self) -> int:
        return self._code

    def __str__(self) -> str:
        return self._message


class TritonModelException(Exception):
    """What the stub raises for a misuse of the API (and what models raise to fail a load)."""

    def __init__(self, msg: str) -> None:
        super().__init__(msg)
        self._msg = msg

    def message(self) -> str:
        return self._msg

    def __str__(self) -> str:
        return self._msg


_KIND_TO_CODE: Final[dict[ErrorKind, int]] = {
    ErrorKind.INVALID_ARGUMENT: TritonError.INVALID_ARG,
    ErrorKind.NOT_FOUND: TritonError.NOT_FOUND,
    ErrorKind.UNAVAILABLE: TritonError.UNAVAILABLE,
    ErrorKind.UNIMPLEMENTED: TritonError.UNSUPPORTED,
    ErrorKind.ALREADY_EXISTS: TritonError.ALREADY_EXISTS,
}


def error_to_triton(error: Exception) -> TritonError:
    """A server error as the TritonError a BLS response carries."""
    if isinstance(error, TritonError):
        return error
    if isinstance(error, OIPServeError):
        return TritonError(error.message, _KIND_TO_CODE.get(error.kind, TritonError.INTERNAL))
    return TritonError(f"{type(error).__name__}: {error}")


def triton_to_error(error: TritonError, model: str) -> OIPServeError:
    """A TritonError a model put in its response, as the error the client sees (the status from
    its code, as Triton maps TRITONSERVER_Error codes to HTTP / gRPC statuses)."""
    message = error.message()
    code = error.code()
    if code == TritonError.INVALID_ARG:
        return InvalidArgument(message)
    if code == TritonError.NOT_FOUND:
        return NotFound(message)
    if code in (TritonError.UNAVAILABLE, TritonError.CANCELLED):
        return Unavailable(message)
    if code == TritonError.UNSUPPORTED:
        return Unsupported(message)
    if code == TritonError.ALREADY_EXISTS:
        return AlreadyExists(message)
    from oipserve.errors import InternalError

    return InternalError(message)


# -- tensors (pb_tensor.cc) -------------------------------------------------------------------


class _DLPackCapsule:
    """Lets numpy import a bare DLPack capsule (a CPU one) through ``np.from_dlpack``."""

    def __init__(self, capsule: Any) -> None:
        self._capsule = capsule

    def __dlpack__(self, **_: Any) -> Any:
        return self._capsule

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)  # kDLCPU, device 0


class Tensor:
    """A named tensor of a request or response: ``Tensor(name, numpy_array)``."""

    def __init__(self, name: str, data: Any, triton_dtype: int | None = None) -> None:
        if not isinstance(name, str):
            raise TritonModelException("Tensor name must be a string")
        array = data if isinstance(data, np.ndarray) else np.asarray(data)
        if array.dtype.type is np.str_ or array.dtype == np.void:
            raise TritonModelException(
                "Tensor dtype used for numpy_array is not support by Python backend. "
                "Please use np.object_ instead."
            )
        if array.dtype.type is np.bytes_:
            array = array.astype(np.object_)
        if triton_dtype is not None:
            wanted = triton_to_numpy_type(triton_dtype)
            if wanted is not None and array.dtype != wanted:
                array = array.view(wanted)
        self._name = name
        self._array = array

    def name(self) -> str:
        return self._name

    def as_numpy(self) -> np.ndarray:
        return self._array

    def triton_dtype(self) -> int | None:
        return numpy_to_triton_type(self._array.dtype)

    def shape(self) -> list[int]:
        return list(self._array.shape)

    def is_cpu(self) -> bool:
        return True

    def to_dlpack(self) -> Any:
        """A DLPack capsule sharing this tensor's memory (CPU)."""
        if self._array.dtype == np.object_:
            raise TritonModelException("DLPack does not support BYTES tensors")
        array = self._array if self._array.flags.writeable else self._array.copy()
        return array.__dlpack__()

    def __dlpack__(self, **kwargs: Any) -> Any:
        return self.to_dlpack()

    def __dlpack_device__(self) -> tuple[int, int]:
        return (1, 0)

    @staticmethod
    def from_dlpack(name: str, capsule: Any) -> Tensor:
        """A tensor sharing the memory of a CPU DLPack capsule (or of any object with
        ``__dlpack__``: a torch tensor, a numpy array, ...)."""
        source = capsule if hasattr(capsule, "__dlpack__") else _DLPackCapsule(capsule)
        try:
            array = np.from_dlpack(source)
        except (RuntimeError, BufferError, TypeError) as exc:
            raise TritonModelException(
                f"Tensor.from_dlpack('{name}'): only CPU tensors are supported ({exc})"
            ) from None
        return Tensor(name, array)

    def __repr__(self) -> str:
        return f"Tensor({self._name!r}, shape={list(self._array.shape)}, dtype={self._array.dtype})"


def get_input_tensor_by_name(inference_request: InferenceRequest, name: str) -> Tensor | None:
    for tensor in inference_request.inputs():
        if tensor.name() == name:
            return tensor
    return None


def get_output_tensor_by_name(inference_response: InferenceResponse, name: str) -> Tensor | None:
    for tensor in inference_response.output_tensors():
        if tensor.name() == name:
            return tensor
    return None


def get_input_config_by_name(model_config: Mapping[str, Any], name: str) -> Any:
    for properties in model_config.get("input", []):
        if properties["name"] == name:
            return properties
    return None


def get_output_config_by_name(model_config: Mapping[str, Any], name: str) -> Any:
    for properties in model_config.get("output", []):
        if properties["name"] == name:
            return properties
    return None


def using_decoupled_model_transaction_policy(model_config: Mapping[str, Any]) -> bool:
    policy = model_config.get("model_transaction_policy") or {}
    return bool(policy.get("decoupled", False))


# -- the call scope: which model is running, on which server ----------------------------------


@dataclass(frozen=True, slots=True)
class Scope:
    """The model a call of the runtime is made for (set around initialize / execute)."""

    model: str
    version: str
    server: ServerCalls | None
    loop: asyncio.AbstractEventLoop
    metrics: Any = None
    """The model's ``ctx.metrics`` (the observability API), if the server provides one."""


_SCOPE: contextvars.ContextVar[Scope | None] = contextvars.ContextVar(
    "oipserve_triton_scope", default=None
)
_LAST: list[Scope] = []
"""The most recent scope: for calls from threads a model started itself (no context)."""


def enter(scope: Scope) -> contextvars.Token[Scope | None]:
    _LAST[:] = [scope]
    return _SCOPE.set(scope)


def leave(token: contextvars.Token[Scope | None]) -> None:
    _SCOPE.reset(token)


def _scope(what: str) -> Scope:
    scope = _SCOPE.get() or (_LAST[0] if _LAST else None)
    if scope is None:
        raise TritonModelException(f"{what} is only available inside a model served by oipserve")
    return scope


def _server(scope: Scope, what: str) -> ServerCalls:
    if scope.server is None:
        raise TritonModelException(
            f"{what} is not available here: model '{scope.model}' runs without a server "
            "connection (a process instance); run it in the server process"
        )
    return scope.server


T = TypeVar("T")


def _run(scope: Scope, what: str, call: Awaitable[T]) -> T:
    """Run a server coroutine from a model's thread and wait for it."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is scope.loop:
        if asyncio.iscoroutine(call):
            call.close()
        raise TritonModelException(
            f"{what} blocks, and model '{scope.model}' called it on the server's event loop "
            "(from an async execute); use the async form (await request.async_exec())"
        )
    return asyncio.run_coroutine_threadsafe(_awaited(call), scope.loop).result()


async def _awaited(call: Awaitable[T]) -> T:
    return await call


# -- requests and responses (infer_request.cc, infer_response.cc, response_sender.cc) --------


class InferenceResponse:
    """``InferenceResponse(output_tensors=[...], error=None, parameters=None)``."""

    def __init__(
        self,
        output_tensors: Sequence[Tensor] | None = None,
        error: TritonError | None = None,
        parameters: Mapping[str, Any] | str | None = None,
    ) -> None:
        tensors = list(output_tensors) if output_tensors is not None else []
        for tensor in tensors:
            if not isinstance(tensor, Tensor):
                raise TritonModelException(
                    f"output_tensors must be a list of pb_utils.Tensor, got {type(tensor).__name__}"
                )
        if error is not None and not isinstance(error, TritonError):
            raise TritonModelException("error must be a pb_utils.TritonError")
        if isinstance(parameters, str):
            parameters = json.loads(parameters) if parameters else {}
        self._tensors = tensors
        self._error = error
        self._parameters: dict[str, Any] = dict(parameters or {})

    def output_tensors(self) -> list[Tensor]:
        return self._tensors

    def has_error(self) -> bool:
        return self._error is not None

    def error(self) -> TritonError | None:
        return self._error

    def parameters(self) -> str:
        return json.dumps(self._parameters)


def to_model_response(response: Any, model: str) -> InferResponse | Exception:
    """A pb_utils response as the oipserve response (or the error) it stands for."""
    if not isinstance(response, InferenceResponse):
        return TritonModelException(
            f"model '{model}' returned a {type(response).__name__} where a "
            "pb_utils.InferenceResponse belongs"
        )
    error = response.error()
    if error is not None:
        return triton_to_error(error, model)
    parameters = {
        k: v for k, v in response._parameters.items() if isinstance(v, bool | int | float | str)
    }
    return InferResponse({t.name(): t.as_numpy() for t in response.output_tensors()}, parameters)


def from_model_response(response: InferResponse) -> InferenceResponse:
    return InferenceResponse(
        [Tensor(name, np.asarray(array)) for name, array in response.outputs.items()],
        parameters=dict(response.parameters),
    )


class InferenceResponseSender:
    """What ``request.get_response_sender()`` returns (decoupled models): ``send(response=None,
    flags=0)``, ``is_cancelled()``."""

    def __init__(self, sender: ResponseSender, model: str) -> None:
        self._sender = sender
        self._model = model

    def send(self, response: InferenceResponse | None = None, flags: int = 0) -> None:
        final = bool(flags & TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        if response is None and not final:
            raise TritonModelException(
                "Inference Response object must be provided when the response flags is not "
                "equal to TRITONSERVER_RESPONSE_COMPLETE_FINAL"
            )
        converted = None if response is None else to_model_response(response, self._model)
        try:
            if isinstance(converted, Exception):
                # an error response that is not final still leaves room for more in Triton;
                # oipserve ends the request with it (see docs/triton.md)
                self._sender.send(converted)
            else:
                self._sender.send(converted, final=final)
        except SenderClosed:
            raise TritonModelException(
                "Unable to send response. Response sender has been closed."
            ) from None

    def is_cancelled(self) -> bool:
        return self._sender.is_cancelled()


class InferenceRequest:
    """A request the model executes, or one it builds to call another model (BLS):
    ``InferenceRequest(model_name=..., inputs=[...], requested_output_names=[...], ...)``."""

    def __init__(
        self,
        request_id: str = "",
        correlation_id: int | str = 0,
        inputs: Sequence[Tensor] | None = None,
        requested_output_names: Sequence[str] | None = None,
        model_name: str = "",
        model_version: int = -1,
        flags: int = 0,
        timeout: int = 0,
        preferred_memory: Any = None,
        trace: Any = None,
        parameters: Mapping[str, Any] | str | None = None,
    ) -> None:
        if isinstance(parameters, str):
            parameters = json.loads(parameters) if parameters else {}
        self._request_id = request_id
        self._correlation_id = correlation_id
        self._inputs = list(inputs or [])
        self._requested = list(requested_output_names or [])
        self._model_name = model_name
        self._model_version = model_version
        self._flags = flags
        self._timeout = timeout
        self._parameters: dict[str, Any] = dict(parameters or {})
        self._sender: ResponseSender | None = None
        self._decoupled = False
        self._model = model_name

    @classmethod
    def wrap(cls, request: InferRequest, model: str, decoupled: bool) -> InferenceRequest:
        """An incoming request as the model sees it."""
        wrapped = cls(
            request_id=request.id,
            inputs=[Tensor(name, array) for name, array in request.inputs.items()],
            requested_output_names=list(request.outputs),
            model_name=model,
            parameters=dict(request.parameters),
        )
        wrapped._sender = request.sender
        wrapped._decoupled = decoupled
        return wrapped

    def inputs(self) -> list[Tensor]:
        return self._inputs

    def request_id(self) -> str:
        return self._request_id

    def correlation_id(self) -> int | str:
        return self._correlation_id

    def flags(self) -> int:
        return self._flags

    def timeout(self) -> int:
        return self._timeout

    def model_name(self) -> str:
        return self._model_name

    def model_version(self) -> int:
        return self._model_version

    def requested_output_names(self) -> list[str]:
        return self._requested

    def parameters(self) -> str:
        """The request's parameters as a JSON object (a string, as Triton gives them)."""
        return json.dumps(self._parameters)

    def is_cancelled(self) -> bool:
        return self._sender is not None and self._sender.is_cancelled()

    def get_response_sender(self) -> InferenceResponseSender:
        if not self._decoupled or self._sender is None:
            raise TritonModelException(
                "Unable to get response sender: the model is not using the decoupled "
                "transaction policy (model_transaction_policy { decoupled: true })"
            )
        return InferenceResponseSender(self._sender, self._model)

    def set_release_flags(self, flags: int) -> None:
        raise TritonModelException(
            "InferenceRequest.set_release_flags (request rescheduling) is not supported by oipserve"
        )

    # -- BLS ---------------------------------------------------------------------------------

    def _target(self, what: str) -> tuple[Scope, ServerCalls, str, InferRequest]:
        scope = _scope(what)
        server = _server(scope, what)
        if not self._model_name:
            raise TritonModelException(f"{what}: the request has no model_name")
        if self._model_name == scope.model and _SCOPE.get() is not None:
            raise TritonModelException(
                f"{what}: model '{scope.model}' may not call itself (BLS to the calling model "
                "would wait on its own instances)"
            )
        version = "" if self._model_version < 0 else str(self._model_version)
        request = InferRequest(
            inputs={t.name(): t.as_numpy() for t in self._inputs},
            parameters={
                k: v for k, v in self._parameters.items() if isinstance(v, bool | int | float | str)
            },
            outputs=tuple(self._requested),
            id=self._request_id,
        )
        return scope, server, version, request

    def exec(self, decoupled: bool = False) -> Any:
        """Run the request on its model and wait: an :class:`InferenceResponse` (with
        ``has_error()`` on failure), or with ``decoupled=True`` an iterator of them (the last
        one may be empty, carrying only the final flag)."""
        try:
            scope, server, version, request = self._target("InferenceRequest.exec()")
        except TritonModelException as exc:
            if decoupled:
                return iter([InferenceResponse(error=TritonError(exc.message()))])
            return InferenceResponse(error=TritonError(exc.message()))
        if decoupled:
            return self._sync_stream(scope, server.infer_stream(self._model_name, version, request))
        return _run(
            scope, "InferenceRequest.exec()", _bls(server, self._model_name, version, request)
        )

    async def async_exec(self, decoupled: bool = False) -> Any:
        """:meth:`exec` for an ``async def execute``: awaitable; with ``decoupled=True`` an
        async iterator of responses."""
        try:
            _, server, version, request = self._target("InferenceRequest.async_exec()")
        except TritonModelException as exc:
            failed = InferenceResponse(error=TritonError(exc.message()))
            if decoupled:
                return _single(failed)
            return failed
        if decoupled:
            return _async_stream(server.infer_stream(self._model_name, version, request))
        return await _bls(server, self._model_name, version, request)

    def _sync_stream(
        self, scope: Scope, stream: AsyncIterator[tuple[InferResponse | None, bool]]
    ) -> Iterator[InferenceResponse]:
        converted = _async_stream(stream)
        while True:
            try:
                item = _run(scope, "InferenceRequest.exec(decoupled=True)", anext(converted))
            except StopAsyncIteration:
                return
            yield item


async def _bls(
    server: ServerCalls, model: str, version: str, request: InferRequest
) -> InferenceResponse:
    try:
        return from_model_response(await server.infer(model, version, request))
    except Exception as exc:
        return InferenceResponse(error=error_to_triton(exc))


async def _async_stream(
    stream: AsyncIterator[tuple[InferResponse | None, bool]],
) -> AsyncIterator[InferenceResponse]:
    try:
        async for response, _final in stream:
            yield InferenceResponse() if response is None else from_model_response(response)
    except Exception as exc:
        yield InferenceResponse(error=error_to_triton(exc))


async def _single(response: InferenceResponse) -> AsyncIterator[InferenceResponse]:
    yield response


# -- model control (pb_stub.cc: load_model, unload_model, is_model_ready) ---------------------


def load_model(model_name: str, config: str = "", files: Mapping[str, bytes] | None = None) -> None:
    """Load (or reload) a model of the repository (model control mode ``explicit``)."""
    scope = _scope("load_model()")
    server = _server(scope, "load_model()")
    try:
        _run(scope, "load_model()", server.load_model(model_name, config or None, files))
    except OIPServeError as exc:
        raise TritonModelException(exc.message) from None


def unload_model(model_name: str, unload_dependents: bool = False) -> None:
    scope = _scope("unload_model()")
    server = _server(scope, "unload_model()")
    try:
        _run(scope, "unload_model()", server.unload_model(model_name, unload_dependents))
    except OIPServeError as exc:
        raise TritonModelException(exc.message) from None


def is_model_ready(model_name: str, model_version: str = "") -> bool:
    scope = _scope("is_model_ready()")
    return _server(scope, "is_model_ready()").is_model_ready(model_name, str(model_version or ""))


# -- logging (pb_log.cc) ----------------------------------------------------------------------


class LogLevel(enum.IntEnum):
    INFO = 0
    WARNING = 1
    ERROR = 2
    VERBOSE = 3


_LOG = logging.getLogger("oipserve.model")
_LEVELS: Final = {
    LogLevel.INFO: logging.INFO,
    LogLevel.WARNING: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.VERBOSE: logging.DEBUG,
}


class Logger:
    """``pb_utils.Logger.log_info(message)`` etc.: lines on the server's log (logger
    ``oipserve.model``), prefixed with the model; VERBOSE is DEBUG."""

    @staticmethod
    def log(message: str, level: LogLevel = LogLevel.INFO) -> None:
        scope = _SCOPE.get()
        prefix = f"model '{scope.model}': " if scope is not None else ""
        _LOG.log(_LEVELS.get(LogLevel(level), logging.INFO), "%s%s", prefix, message)

    @staticmethod
    def log_info(message: str) -> None:
        Logger.log(message, LogLevel.INFO)

    @staticmethod
    def log_warn(message: str) -> None:
        Logger.log(message, LogLevel.WARNING)

    @staticmethod
    def log_error(message: str) -> None:
        Logger.log(message, LogLevel.ERROR)

    @staticmethod
    def log_verbose(message: str) -> None:
        Logger.log(message, LogLevel.VERBOSE)


# -- custom metrics (metric_family.cc, metric.cc) ---------------------------------------------


class MetricFamily:
    """``MetricFamily(name, description, kind)`` with ``kind`` COUNTER, GAUGE or HISTOGRAM;
    ``family.Metric(labels={...}, buckets=[...])`` makes one labelled series. Published on
    ``/metrics`` through the model's ``ctx.metrics`` (the server's model-metrics API)."""

    COUNTER: ClassVar[int] = 0
    GAUGE: ClassVar[int] = 1
    HISTOGRAM: ClassVar[int] = 2
    _KINDS: ClassVar[dict[int, str]] = {0: "counter", 1: "gauge", 2: "histogram"}

    def __init__(self, name: str, description: str, kind: int) -> None:
        if kind not in self._KINDS:
            raise TritonModelException(f"MetricFamily '{name}': unknown kind {kind}")
        scope = _scope("MetricFamily")
        if scope.metrics is None:
            raise TritonModelException(
                f"MetricFamily '{name}': this server has no model-metrics API to publish it"
            )
        self._name = name
        self._description = description
        self._kind = kind
        self._metrics = scope.metrics
        self._family: Any = None
        self._labels: tuple[str, ...] | None = None
        self._buckets: tuple[float, ...] | None = None
        self._lock = threading.Lock()

    def Metric(
        self, labels: Mapping[str, str] | None = None, buckets: Sequence[float] | None = None
    ) -> Metric:
        values = {str(k): str(v) for k, v in (labels or {}).items()}
        names = tuple(values)
        with self._lock:
            if self._family is None:
                self._family = self._register(names, buckets)
                self._labels = names
                self._buckets = tuple(buckets) if buckets is not None else None
            elif set(names) != set(self._labels or ()):
                raise TritonModelException(
                    f"MetricFamily '{self._name}': every Metric must have the labels "
                    f"{sorted(self._labels or ())}, got {sorted(names)}"
                )
            elif buckets is not None and tuple(buckets) != self._buckets:
                raise TritonModelException(
                    f"MetricFamily '{self._name}': every Metric must use the same buckets"
                )
        series = self._family.labels(**values)
        return Metric(self._kind, series, self._name)

    def _register(self, labels: tuple[str, ...], buckets: Sequence[float] | None) -> Any:
        kind = self._KINDS[self._kind]
        try:
            if kind == "histogram":
                if buckets is None:
                    raise TritonModelException(
                        f"MetricFamily '{self._name}': a histogram Metric needs buckets"
                    )
                return self._metrics.histogram(
                    self._name, self._description, labels=labels, buckets=tuple(buckets)
                )
            return getattr(self._metrics, kind)(self._name, self._description, labels=labels)
        except (ValueError, OIPServeError) as exc:
            raise TritonModelException(str(exc)) from None


class Metric:
    """One series of a :class:`MetricFamily`: ``increment`` (counter, gauge), ``set`` (gauge),
    ``observe`` (histogram), ``value()``."""

    def __init__(self, kind: int, series: Any, family: str) -> None:
        self._kind = kind
        self._series = series
        self._family = family

    def increment(self, value: float) -> None:
        if self._kind == MetricFamily.COUNTER:
            if value < 0:
                raise TritonModelException("a counter cannot be incremented by a negative value")
            self._series.inc(value)
        elif self._kind == MetricFamily.GAUGE:
            self._series.inc(value)
        else:
            raise TritonModelException(
                f"Metric '{self._family}': increment() is not for histograms"
            )

    def set(self, value: float) -> None:
        if self._kind != MetricFamily.GAUGE:
            raise TritonModelException(f"Metric '{self._family}': set() is for gauges only")
        self._series.set(value)

    def observe(self, value: float) -> None:
        if self._kind != MetricFamily.HISTOGRAM:
            raise TritonModelException(f"Metric '{self._family}': observe() is for histograms")
        self._series.observe(value)

    def value(self) -> float:
        if self._kind == MetricFamily.HISTOGRAM:
            raise TritonModelException(f"Metric '{self._family}': a histogram has no value()")
        return float(self._series.value())


# -- ModelConfig for auto_complete_config (triton_python_backend_utils.py) --------------------


class ModelConfig:
    """The configuration ``auto_complete_config(auto_complete_model_config)`` receives and
    returns; its setters refuse what contradicts the configuration file, as Triton's do."""

    def __init__(self, model_config: Mapping[str, Any] | str) -> None:
        data: Any = json.loads(model_config) if isinstance(model_config, str) else model_config
        self._model_config: dict[str, Any] = dict(data)

    def as_dict(self) -> dict[str, Any]:
        return self._model_config

    def set_max_batch_size(self, max_batch_size: int) -> None:
        if max_batch_size < 0:
            raise ValueError("max_batch_size should be greater than or equal to 0")
        current = int(self._model_config.get("max_batch_size", 0) or 0)
        if current not in (max_batch_size, 0):
            raise ValueError(
                "configuration specified max_batch_size "
                f"{current}, but in auto-complete-config function for model "
                f"'{self._model_config.get('name', '')}' specified max_batch_size "
                f"{max_batch_size}"
            )
        self._model_config["max_batch_size"] = max_batch_size

    def set_dynamic_batching(self) -> None:
        if self._model_config.get("sequence_batching"):
            raise ValueError(
                "Configuration specified scheduling_choice as 'sequence_batching', but "
                "auto-complete-config function for model "
                f"'{self._model_config.get('name', '')}' tries to set scheduling_choice as "
                "'dynamic_batching'"
            )
        if not self._model_config.get("dynamic_batching"):
            self._model_config["dynamic_batching"] = {}

    def set_model_transaction_policy(self, transaction_policy_dict: Mapping[str, Any]) -> None:
        for key in transaction_policy_dict:
            if key != "decoupled":
                raise ValueError(
                    f"model transaction property in auto-complete-config function for model "
                    f"'{self._model_config.get('name', '')}' contains property other than "
                    "'decoupled'"
                )
        policy = dict(self._model_config.get("model_transaction_policy") or {})
        wanted = bool(transaction_policy_dict.get("decoupled", False))
        if "decoupled" in policy and bool(policy["decoupled"]) != wanted:
            raise ValueError(
                "trying to change decoupled property in auto-complete-config for model "
                f"'{self._model_config.get('name', '')}', which is already set to "
                f"'{policy['decoupled']}'"
            )
        policy["decoupled"] = wanted
        self._model_config["model_transaction_policy"] = policy

    def add_input(self, input: Mapping[str, Any]) -> None:
        self._add_tensor("input", input)

    def add_output(self, output: Mapping[str, Any]) -> None:
        self._add_tensor("output", output)

    def _add_tensor(self, kind: str, tensor: Mapping[str, Any]) -> None:
        model = self._model_config.get("name", "")
        if not isinstance(tensor, Mapping):
            raise ValueError(
                f"{kind} in auto-complete-config function for model '{model}' must be a dict"
            )
        allowed = {"name", "data_type", "dims", "optional", "reshape", "is_shape_tensor"}
        if kind == "output":
            allowed = {"name", "data_type", "dims", "reshape", "label_filename", "is_shape_tensor"}
        for key in ("name", "data_type", "dims"):
            if key not in tensor:
                raise ValueError(
                    f"{kind} '{tensor.get('name', '')}' in auto-complete-config function for "
                    f"model '{model}' is missing '{key}' property."
                )
        for key in tensor:
            if key not in allowed:
                raise ValueError(
                    f"{kind} '{tensor['name']}' in auto-complete-config function for model "
                    f"'{model}' contains property other than {', '.join(sorted(allowed))}."
                )
        tensors: list[dict[str, Any]] = self._model_config.setdefault(kind, [])
        for existing in tensors:
            if existing.get("name") != tensor["name"]:
                continue
            for key in ("data_type", "dims"):
                have = existing.get(key)
                if have not in (None, "", []) and _same(key, have, tensor[key]) is False:
                    raise ValueError(
                        f"unable to load model '{model}', configuration expects "
                        f"{key} {have} for {kind} '{tensor['name']}', model provides "
                        f"{tensor[key]}"
                    )
                existing[key] = have if have not in (None, "", []) else tensor[key]
            return
        entry = dict(tensor)
        entry["dims"] = [int(d) for d in entry["dims"]]
        tensors.append(entry)


def _same(key: str, have: Any, given: Any) -> bool:
    if key == "dims":
        return [int(d) for d in have] == [int(d) for d in given]
    return str(have).removeprefix("TYPE_") == str(given).removeprefix("TYPE_")


# -- anything else: a clear error naming it ---------------------------------------------------


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(
        f"triton_python_backend_utils.{name} is not provided by oipserve (see docs/triton.md "
        "for the names it supports)"
    )
