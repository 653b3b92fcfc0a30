"""The messages between the server and a process instance, and how tensors travel.

Control messages are msgspec Structs encoded with msgpack, each framed by a 4-byte length on a
Unix socket pair. Numeric tensors never go through them: the server copies a batch's inputs into
its request segment (:mod:`oipserve.execution.shm`), the instance reads them as numpy views of that
segment, and writes its outputs into a segment the server creates for the answer — each tensor is
copied once each way. Outputs of at most :data:`INLINE_LIMIT` bytes in all ride in the answer
itself (creating a segment costs more than copying a few kilobytes). ``BYTES`` tensors (Python
objects) travel as msgpack lists.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Mapping, Sequence
from typing import Any, Final, TypeAlias

import msgspec
import numpy as np

from oipserve.errors import (
    AlreadyExists,
    DeadlineExceeded,
    ErrorKind,
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    OIPServeError,
    PayloadTooLarge,
    Unavailable,
    Unsupported,
)
from oipserve.execution.shm import Segment, aligned
from oipserve.model import InferRequest, InferResponse, InferResult, Parameter, Signature
from oipserve.protocol.datatypes import DTYPES, datatype_of

INLINE_LIMIT: Final = 16 * 1024
"""Outputs up to this many bytes in all are sent inside the answer, not through a segment."""

_HEADER = struct.Struct("<I")


class Tensor(msgspec.Struct, array_like=True, omit_defaults=True):
    name: str
    datatype: str
    """A protocol datatype (``FP32``) for numeric tensors; a numpy dtype string (``O``, ``<U3``)
    for those that travel as ``items``."""
    shape: tuple[int, ...]
    offset: int = -1
    """Where the values start in the segment; -1: in ``items`` or ``raw``."""
    items: list[Any] | None = None
    raw: bytes | None = None


class Failure(msgspec.Struct, array_like=True):
    kind: str
    """An :class:`~oipserve.errors.ErrorKind` value, or empty for a model's own exception."""
    message: str
    type_name: str = ""
    traceback: str = ""


class Request(msgspec.Struct, array_like=True, omit_defaults=True):
    inputs: list[Tensor]
    parameters: dict[str, Parameter] = {}
    outputs: tuple[str, ...] = ()
    input_parameters: dict[str, dict[str, Parameter]] = {}
    id: str = ""


class Result(msgspec.Struct, array_like=True, omit_defaults=True):
    outputs: list[Tensor] = []
    parameters: dict[str, Parameter] = {}
    error: Failure | None = None


# -- server → instance ------------------------------------------------------------------------


class Load(msgspec.Struct, tag=True, array_like=True):
    backend: str
    name: str
    version: str
    path: str
    config: bytes
    """The model's ModelConfig, msgpack-encoded."""
    model_file: str | None
    auto_complete: bool = False


class Infer(msgspec.Struct, tag=True, array_like=True):
    segment: str
    """The request segment the inputs' offsets point into (empty: none needed)."""
    requests: list[Request]


class WriteOutputs(msgspec.Struct, tag=True, array_like=True):
    segment: str
    """A segment the server created for the outputs the instance asked room for."""


class Unload(msgspec.Struct, tag=True, array_like=True):
    pass


# -- instance → server ------------------------------------------------------------------------


class Loaded(msgspec.Struct, tag=True, array_like=True):
    signature: Signature | None
    thread_safe: bool = True


class Inferred(msgspec.Struct, tag=True, array_like=True):
    results: list[Result]


class NeedSpace(msgspec.Struct, tag=True, array_like=True):
    size: int


class Failed(msgspec.Struct, tag=True, array_like=True):
    failure: Failure


class Unloaded(msgspec.Struct, tag=True, array_like=True):
    pass


ToInstance: TypeAlias = Load | Infer | WriteOutputs | Unload
FromInstance: TypeAlias = Loaded | Inferred | NeedSpace | Failed | Unloaded

_encoder = msgspec.msgpack.Encoder()
to_instance_decoder: Final = msgspec.msgpack.Decoder(ToInstance)
from_instance_decoder: Final = msgspec.msgpack.Decoder(FromInstance)


def frame(message: ToInstance | FromInstance) -> bytes:
    body = _encoder.encode(message)
    return _HEADER.pack(len(body)) + body


def header_size(header: bytes) -> int:
    size: int = _HEADER.unpack(header)[0]
    return size


def receive_blocking(sock: socket.socket) -> bytes | None:
    """One framed message from a blocking socket; ``None`` when the peer closed it."""
    header = _read_exactly(sock, _HEADER.size)
    if header is None:
        return None
    body = _read_exactly(sock, header_size(header))
    if body is None:
        return None
    return body


def _read_exactly(sock: socket.socket, size: int) -> bytes | None:
    buffer = bytearray(size)
    view = memoryview(buffer)
    got = 0
    while got < size:
        n = sock.recv_into(view[got:])
        if n == 0:
            return None
        got += n
    return bytes(buffer)


# -- tensors ----------------------------------------------------------------------------------


def _numeric(array: np.ndarray) -> str | None:
    """The protocol datatype of an array that travels through a segment, else ``None``."""
    if array.dtype.kind in "OSUV" and array.dtype not in DTYPES.values():
        return None
    try:
        datatype = datatype_of(array)
    except InvalidArgument:
        return None
    return None if datatype == "BYTES" else datatype


def segment_size(arrays: Sequence[np.ndarray]) -> int:
    """Bytes the numeric arrays take in a segment, each aligned."""
    size = 0
    for array in arrays:
        if _numeric(array) is not None:
            size = aligned(size) + array.nbytes
    return size


class Packer:
    """Writes arrays one after another into a segment (or, without one, inline)."""

    __slots__ = ("offset", "segment")

    def __init__(self, segment: Segment | None) -> None:
        self.segment = segment
        self.offset = 0

    def pack(self, name: str, array: np.ndarray) -> Tensor:
        datatype = _numeric(array)
        shape = tuple(int(n) for n in array.shape)
        if datatype is None:
            return Tensor(name, array.dtype.str, shape, items=array.ravel().tolist())
        if self.segment is None:
            native = np.ascontiguousarray(array, dtype=DTYPES[datatype])
            return Tensor(name, datatype, shape, raw=native.tobytes())
        offset = aligned(self.offset)
        view = self.segment.array(DTYPES[datatype], shape, offset)
        np.copyto(view, array, casting="unsafe")  # the one copy (byte order made native)
        self.offset = offset + view.nbytes
        return Tensor(name, datatype, shape, offset=offset)


def unpack(tensor: Tensor, segment: Segment | None) -> np.ndarray:
    """The array a :class:`Tensor` describes: a view of the segment, of ``raw``, or built from
    ``items``."""
    if tensor.items is not None:
        dtype = np.dtype(tensor.datatype)
        if dtype.kind == "O":
            array = np.empty(len(tensor.items), dtype=object)
            array[:] = tensor.items
            return array.reshape(tensor.shape)
        return np.array(tensor.items, dtype=dtype).reshape(tensor.shape)
    dtype = DTYPES[tensor.datatype]
    if tensor.raw is not None:
        return np.frombuffer(tensor.raw, dtype=dtype).reshape(tensor.shape)
    if segment is None:
        raise InternalError(f"tensor '{tensor.name}' points into a segment that was not sent")
    return segment.array(dtype, tensor.shape, tensor.offset)


def pack_requests(requests: Sequence[InferRequest], segment: Segment | None) -> list[Request]:
    packer = Packer(segment)
    return [
        Request(
            [packer.pack(name, array) for name, array in r.inputs.items()],
            r.parameters,
            r.outputs,
            r.input_parameters,
            r.id,
        )
        for r in requests
    ]


def unpack_requests(requests: Sequence[Request], segment: Segment | None) -> list[InferRequest]:
    return [
        InferRequest(
            {t.name: unpack(t, segment) for t in r.inputs},
            r.parameters,
            r.outputs,
            r.input_parameters,
            r.id,
        )
        for r in requests
    ]


def output_arrays(results: Sequence[InferResult]) -> list[np.ndarray]:
    return [
        np.asarray(array)
        for result in results
        if isinstance(result, InferResponse)
        for array in result.outputs.values()
    ]


def pack_results(
    results: Sequence[InferResult], segment: Segment | None, failure: Failure | None = None
) -> list[Result]:
    """The model's results as messages; an exception in a slot becomes that slot's failure."""
    packer = Packer(segment)
    packed: list[Result] = []
    for result in results:
        if isinstance(result, InferResponse):
            outputs = [packer.pack(name, np.asarray(a)) for name, a in result.outputs.items()]
            packed.append(Result(outputs, result.parameters))
        elif result is None:  # no sender crosses to a process: None answers nothing
            missing = TypeError("infer returned None for a request (no response sender here)")
            packed.append(Result(error=describe(missing)))
        else:
            packed.append(Result(error=describe(result)))
    return packed


def unpack_results(
    results: Sequence[Result], segment: Segment | None, model: str
) -> list[InferResult]:
    unpacked: list[InferResult] = []
    for result in results:
        if result.error is not None:
            unpacked.append(rebuild(result.error, model))
        else:
            unpacked.append(
                InferResponse(
                    {t.name: unpack(t, segment) for t in result.outputs}, result.parameters
                )
            )
    return unpacked


# -- errors -----------------------------------------------------------------------------------

_BY_KIND: Final[Mapping[ErrorKind, type[OIPServeError]]] = {
    cls.kind: cls
    for cls in (
        InvalidArgument,
        NotFound,
        MethodNotAllowed,
        Unavailable,
        DeadlineExceeded,
        PayloadTooLarge,
        Unsupported,
        AlreadyExists,
        InternalError,
    )
}


class RemoteTraceback(Exception):
    """The traceback of an exception raised in an instance process (as text)."""


def describe(exc: BaseException) -> Failure:
    import traceback

    text = "".join(traceback.format_exception(exc))
    if isinstance(exc, OIPServeError):
        return Failure(exc.kind.value, exc.message, type(exc).__name__, text)
    return Failure("", str(exc), type(exc).__name__, text)


def rebuild(failure: Failure, model: str) -> OIPServeError:
    """The error a client sees for a failure reported by an instance: the same kind and message
    for the server's own errors, else "model 'm' failed: Type: message" (the in-process text)."""
    error: OIPServeError
    if failure.kind:
        cls = _BY_KIND.get(ErrorKind(failure.kind), InternalError)
        error = cls(failure.message)
    else:
        error = InternalError(f"model '{model}' failed: {failure.type_name}: {failure.message}")
    if failure.traceback:
        error.__cause__ = RemoteTraceback(failure.traceback)
    return error


__all__ = [
    "INLINE_LIMIT",
    "Failed",
    "FromInstance",
    "Infer",
    "Inferred",
    "Load",
    "Loaded",
    "NeedSpace",
    "ToInstance",
    "Unload",
    "Unloaded",
    "WriteOutputs",
    "frame",
    "pack_requests",
    "pack_results",
    "receive_blocking",
    "segment_size",
    "unpack_requests",
    "unpack_results",
]
