"""The one codec of REST inference bodies: JSON, with the binary tensor data extension.

Decoding: the JSON header (the whole body, or its first ``Inference-Header-Content-Length``
bytes) is decoded by a msgspec decoder built once; each input's ``data`` becomes an array in C,
each binary input a zero-copy ``np.frombuffer`` view of the body. Encoding goes the other way:
one msgspec encode of the header, binary outputs appended as memoryviews of the arrays.

Nesting is bounded at :data:`MAX_JSON_DEPTH` levels (Triton's limit, PROTOCOL.md §6), always as a
400: tensor ``data`` is measured after decoding (:mod:`.tensor`), the small control bodies
(repository index / load / unload) by :func:`decode_json_object`; the typed fields of an
inference request cannot nest at all, and a body nested deeper than the interpreter's recursion
limit (msgspec guards its recursion and raises ``RecursionError``) is refused with the same
message instead of failing as a 500. Scanning every inference body for depth up front would cost
the hot path a pass over each body to catch what these checks already catch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, TypeAlias

import msgspec
import numpy as np

from oipserve.errors import InvalidArgument
from oipserve.model import Parameter
from oipserve.protocol.binary import array_from_raw, array_to_raw
from oipserve.protocol.datatypes import dtype_of
from oipserve.protocol.nesting import check_depth, too_deep
from oipserve.protocol.tensor import array_from_json, array_to_json
from oipserve.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    InputTensor,
    RequestedOutput,
    TensorMetadata,
)

Params: TypeAlias = dict[str, str | int | float | bool]
HEADER_NAME = "inference-header-content-length"


class _WireInput(msgspec.Struct, kw_only=True):
    name: str
    shape: list[int]
    datatype: str
    parameters: Params | None = None
    data: Any = None


class _WireOutput(msgspec.Struct, kw_only=True):
    name: str
    parameters: Params | None = None


class _WireRequest(msgspec.Struct, kw_only=True):
    id: str = ""
    parameters: Params | None = None
    inputs: list[_WireInput]
    outputs: list[_WireOutput] | None = None


class _WireOutputTensor(msgspec.Struct, omit_defaults=True):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Parameter] | None = None
    data: Any = None


class _WireResponse(msgspec.Struct, omit_defaults=True):
    model_name: str
    model_version: str
    id: str = ""
    parameters: dict[str, Parameter] | None = None
    outputs: list[_WireOutputTensor] = []


_request_decoder = msgspec.json.Decoder(_WireRequest)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


def decode_json_object(body: bytes | str, what: str) -> dict[str, Any]:
    """A small JSON object body (``what`` names it in errors); an empty body is ``{}``.

    Nesting deeper than :data:`MAX_JSON_DEPTH` is refused (400), however deep it goes."""
    if not body.strip():
        return {}
    try:
        value = _any_decoder.decode(body)
    except RecursionError:
        raise too_deep(f"{what} request") from None
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"invalid JSON in the {what} request: {exc}") from None
    check_depth(value, f"{what} request")
    if not isinstance(value, dict):
        raise InvalidArgument(f"the {what} request body must be a JSON object")
    return value


def parse_header_length(value: str | None, body_length: int) -> int | None:
    """Validate an ``Inference-Header-Content-Length`` value against the body."""
    if value is None:
        return None
    text = value.strip()
    # int() alone would also take "1_000", "+5" and non-ASCII digits
    digits = text[1:] if text.startswith("-") else text
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidArgument(f"Inference-Header-Content-Length must be an integer, got {value!r}")
    length = int(text)
    if length < 0 or length > body_length:
        raise InvalidArgument(
            f"inference header size should be in range (0, {body_length}), got: {length}"
        )
    return length  # 0: a raw binary request (decode_raw_infer_request)


def decode_raw_infer_request(
    body: bytes,
    model_name: str,
    model_version: str,
    inputs: Sequence[TensorMetadata],
    batched: bool,
) -> InferenceRequest:
    """Triton's raw binary request (``Inference-Header-Content-Length: 0``): the body is the raw
    bytes of the model's one input, whose datatype and shape come from the model's metadata.

    As Triton's core (``InferenceRequest::Normalize`` in triton-inference-server/core) and its
    binary-data extension document: the model has exactly one input; a batching model gets batch
    1; at most one variable dimension, sized from the byte count; a BYTES input must have shape
    ``[1]`` and the whole body is its one element; every output comes back binary.
    """
    if len(inputs) != 1:
        raise InvalidArgument(
            f"Raw request must only have 1 input (found 1) to be deduced but got {len(inputs)} "
            f"inputs in '{model_name}' model configuration"
        )
    spec = inputs[0]
    dims = list(spec.shape[1:] if batched else spec.shape)
    variable = [axis for axis, dim in enumerate(dims) if dim < 0]
    fixed = math.prod(dim for dim in dims if dim >= 0)
    if spec.datatype == "BYTES":
        if variable or fixed != 1:
            raise InvalidArgument(
                f"For BYTE datatype raw input '{spec.name}', the model must have input shape [1] "
                f"(it has {list(spec.shape)})"
            )
        shape = (1, *dims) if batched else tuple(dims)
        array = np.empty(1, dtype=object)
        array[0] = bytes(body)
        return _raw_request(model_name, model_version, spec, shape, array.reshape(shape))
    if len(variable) > 1:
        raise InvalidArgument(
            f"The shape of the raw input '{spec.name}' can not be deduced because there are "
            f"more than one variable-sized dimension (shape {list(spec.shape)})"
        )
    if variable:
        row = fixed * dtype_of(spec.datatype).itemsize
        if row == 0 or len(body) % row:
            raise InvalidArgument(
                f"raw input '{spec.name}' of model '{model_name}': {len(body)} bytes do not make "
                f"whole elements of shape {list(spec.shape)} of {spec.datatype}"
            )
        dims[variable[0]] = len(body) // row
    shape = (1, *dims) if batched else tuple(dims)
    array = array_from_raw(spec.name, spec.datatype, shape, body)
    return _raw_request(model_name, model_version, spec, shape, array)


def _raw_request(
    model_name: str,
    model_version: str,
    spec: TensorMetadata,
    shape: tuple[int, ...],
    array: np.ndarray,
) -> InferenceRequest:
    return InferenceRequest(
        model_name=model_name,
        model_version=model_version,
        parameters={"binary_data_output": True},
        inputs=[InputTensor(spec.name, spec.datatype, shape, array)],
    )


def decode_infer_request(
    body: bytes, model_name: str, model_version: str = "", header_length: int | None = None
) -> InferenceRequest:
    """Decode a REST inference body into protocol types (every check of §2.5 and §2.6)."""
    header = body if header_length is None else memoryview(body)[:header_length]
    try:
        wire = _request_decoder.decode(header)
    except RecursionError:
        raise too_deep("inference request") from None
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"invalid inference request: {exc}") from None
    except msgspec.DecodeError as exc:
        if header_length is None and b'"binary_data_size"' in body:
            raise InvalidArgument(
                "the body holds binary tensor data but no Inference-Header-Content-Length "
                "header says where its JSON part ends"
            ) from None
        raise InvalidArgument(f"malformed JSON in request body: {exc}") from None
    if not wire.inputs:
        raise InvalidArgument("'inputs' must hold at least one input")

    view = memoryview(body)
    offset = header_length if header_length is not None else len(body)
    inputs: list[InputTensor] = []
    for wire_input in wire.inputs:
        shape = tuple(wire_input.shape)
        params = dict(wire_input.parameters) if wire_input.parameters else {}
        binary_size = params.pop("binary_data_size", None)
        if binary_size is not None:
            if wire_input.data is not None:
                raise InvalidArgument(
                    f"input '{wire_input.name}' has both 'data' and binary_data_size; "
                    "send exactly one"
                )
            if isinstance(binary_size, bool) or not isinstance(binary_size, int):
                raise InvalidArgument(
                    f"input '{wire_input.name}': binary_data_size must be an integer"
                )
            if header_length is None and binary_size != 0:
                raise InvalidArgument(
                    f"input '{wire_input.name}' declares binary_data_size but the request has "
                    "no Inference-Header-Content-Length header"
                )
            if binary_size < 0 or offset + binary_size > len(body):
                raise InvalidArgument(
                    f"unexpected size for input '{wire_input.name}', expecting {binary_size} "
                    f"additional bytes for model '{model_name}' but only {len(body) - offset} "
                    "remain"
                )
            chunk = view[offset : offset + binary_size]
            offset += binary_size
            array = array_from_raw(wire_input.name, wire_input.datatype, shape, chunk)
        elif wire_input.data is None:
            raise InvalidArgument(f"input '{wire_input.name}' has no 'data' (nor binary_data_size)")
        else:
            array = array_from_json(wire_input.name, wire_input.datatype, shape, wire_input.data)
        inputs.append(InputTensor(wire_input.name, wire_input.datatype, shape, array, params))
    if offset != len(body):
        raise InvalidArgument(
            f"unexpected additional input data for model '{model_name}': {len(body) - offset} "
            "bytes after the JSON header are claimed by no input's binary_data_size"
        )

    outputs = [
        RequestedOutput(o.name, dict(o.parameters) if o.parameters else {})
        for o in wire.outputs or ()
    ]
    parameters = dict(wire.parameters) if wire.parameters else {}
    _check_flag(parameters, "binary_data_output", "request parameter")
    for output in outputs:
        _check_flag(output.parameters, "binary_data", f"output '{output.name}' parameter")
    return InferenceRequest(
        model_name=model_name,
        model_version=model_version,
        id=wire.id,
        parameters=parameters,
        inputs=inputs,
        outputs=outputs,
    )


def _check_flag(parameters: dict[str, Parameter], key: str, where: str) -> None:
    value = parameters.get(key)
    if value is not None and not isinstance(value, bool):
        raise InvalidArgument(f"{where} '{key}' must be a boolean, got {value!r}")


def wants_binary(request: InferenceRequest, output_name: str) -> bool:
    """Per-output ``binary_data`` beats the request-wide ``binary_data_output`` (default JSON)."""
    for requested in request.outputs:
        if requested.name == output_name:
            flag = requested.parameters.get("binary_data")
            if flag is not None:
                return bool(flag)
            break
    return bool(request.parameters.get("binary_data_output", False))


def encode_infer_response(
    response: InferenceResponse, request: InferenceRequest
) -> tuple[bytes, list[bytes | memoryview]]:
    """The JSON header and the binary chunks that follow it (in output order)."""
    chunks: list[bytes | memoryview] = []
    wire_outputs: list[_WireOutputTensor] = []
    for output in response.outputs:
        params = dict(output.parameters) if output.parameters else None
        if wants_binary(request, output.name):
            raw = array_to_raw(output.data)
            params = params or {}
            params["binary_data_size"] = len(raw)
            if len(raw):
                chunks.append(raw)
            wire_outputs.append(
                _WireOutputTensor(output.name, output.datatype, list(output.shape), params)
            )
        else:
            # no parameters on JSON outputs: perf_analyzer requires binary_data_size in any
            # output "parameters" object it sees (PROTOCOL.md §7 pitfall 15)
            wire_outputs.append(
                _WireOutputTensor(
                    output.name,
                    output.datatype,
                    list(output.shape),
                    None,
                    array_to_json(output.name, output.data),
                )
            )
    wire = _WireResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id,
        parameters=response.parameters or None,
        outputs=wire_outputs,
    )
    return _encoder.encode(wire), chunks


def encode(value: Any) -> bytes:
    """Encode any msgspec-encodable value (metadata, errors, statistics) as JSON."""
    return _encoder.encode(value)
