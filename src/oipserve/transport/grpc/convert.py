"""Protobuf messages ↔ protocol types (PROTOCOL.md §4.2 and §4.4), with every check on the way in.

Requests: each input takes its data either from ``raw_input_contents`` or from its typed
``contents``, never both in one request. The k-th raw entry belongs to the k-th input that takes raw
data (in ``inputs`` order); raw buffers become arrays with ``np.frombuffer`` (no copy), typed
contents with one ``np.array`` call per input. ``INT8``/``INT16`` travel in ``int_contents`` and
``UINT8``/``UINT16`` in ``uint_contents`` (32-bit), and are narrowed here with a range check;
``FP16`` and ``BF16`` have no typed field and must come raw. Everything a client can get wrong is an
:class:`~oipserve.errors.InvalidArgument` whose message names the input and what was wrong.

Responses always carry ``raw_output_contents``, one entry per output in order, never typed
``contents``: tritonclient and perf_analyzer index ``raw_output_contents[i]`` by output position.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np

from oipserve.errors import InvalidArgument, Unsupported
from oipserve.model import Parameter
from oipserve.protocol.binary import array_from_raw, array_to_raw
from oipserve.protocol.datatypes import DATATYPES, DTYPES
from oipserve.protocol.messages import pb
from oipserve.protocol.tensor import element_count
from oipserve.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    InputTensor,
    RequestedOutput,
)

#: the typed ``InferTensorContents`` field of each datatype (FP16 and BF16 have none: raw only)
CONTENTS_FIELD: Final[dict[str, str]] = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}

#: datatypes carried in a wider 32-bit field: the dtype of that field and the range that fits
_NARROWED: Final[dict[str, tuple[np.dtype[Any], int, int]]] = {
    "INT8": (np.dtype(np.int32), -(1 << 7), (1 << 7) - 1),
    "INT16": (np.dtype(np.int32), -(1 << 15), (1 << 15) - 1),
    "UINT8": (np.dtype(np.uint32), 0, (1 << 8) - 1),
    "UINT16": (np.dtype(np.uint32), 0, (1 << 16) - 1),
}

#: the datatype Triton names for each typed field in its "unexpected explicit tensor data" text
_FIELD_TYPE: Final[dict[str, str]] = {
    "bool_contents": "BOOL",
    "int_contents": "INT32",
    "int64_contents": "INT64",
    "uint_contents": "UINT32",
    "uint64_contents": "UINT64",
    "fp32_contents": "FP32",
    "fp64_contents": "FP64",
    "bytes_contents": "BYTES",
}

_SHARED_MEMORY = "shared_memory_region"
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(1 << 63), (1 << 63) - 1, (1 << 64) - 1


# -- requests ---------------------------------------------------------------------------------


def infer_request_from_proto(message: pb.ModelInferRequest) -> InferenceRequest:
    """Decode a ``ModelInferRequest``; :class:`InvalidArgument` for anything malformed."""
    raw = message.raw_input_contents
    raw_count = len(raw)
    used = 0
    inputs: list[InputTensor] = []
    for tensor in message.inputs:
        name = tensor.name
        datatype = tensor.datatype
        if datatype not in DTYPES:
            raise InvalidArgument(
                f"input '{name}': unknown datatype '{datatype}', expected one of "
                f"{', '.join(DATATYPES)}"
            )
        shape = tuple(tensor.shape)
        parameters = parameters_from_proto(tensor.parameters, f"input '{name}'")
        if _SHARED_MEMORY in parameters:
            raise Unsupported(
                f"input '{name}' takes its data from shared memory, which this server does not "
                "support"
            )
        fields = tensor.contents.ListFields() if tensor.HasField("contents") else []
        if raw_count:
            if fields:
                raise InvalidArgument(
                    f"input '{name}': contents field must not be specified when using "
                    "raw_input_contents (send every input raw, or every input typed)"
                )
            if used == raw_count:
                raise InvalidArgument(
                    f"unable to find data for input tensor '{name}' for model "
                    f"'{message.model_name}' in request. (It has {raw_count} "
                    f"raw_input_contents entries for {len(message.inputs)} inputs.)"
                )
            data = array_from_raw(name, datatype, shape, raw[used])
            used += 1
        else:
            data = _array_from_contents(message.model_name, name, datatype, shape, fields)
        inputs.append(InputTensor(name, datatype, shape, data, parameters))
    if used < raw_count:
        raise InvalidArgument(
            f"the request has {raw_count} raw_input_contents entries but only {used} inputs "
            f"take raw data ({raw_count - used} surplus)"
        )
    outputs = [
        RequestedOutput(
            output.name, parameters_from_proto(output.parameters, f"output '{output.name}'")
        )
        for output in message.outputs
    ]
    for output in outputs:
        if _SHARED_MEMORY in output.parameters:
            raise Unsupported(
                f"output '{output.name}' asks for shared memory, which this server does not support"
            )
    return InferenceRequest(
        model_name=message.model_name,
        model_version=message.model_version,
        id=message.id,
        parameters=parameters_from_proto(message.parameters, "request"),
        inputs=inputs,
        outputs=outputs,
    )


def _array_from_contents(
    model: str, name: str, datatype: str, shape: tuple[int, ...], fields: Sequence[tuple[Any, Any]]
) -> np.ndarray:
    count = element_count(name, shape, datatype)
    dtype = DTYPES[datatype]
    if not fields:
        if count == 0:
            return np.empty(shape, dtype=dtype)
        raise InvalidArgument(
            f"unable to find data for input tensor '{name}' for model '{model}' in request. "
            f"(Input '{name}' has neither typed contents nor raw_input_contents; shape "
            f"{list(shape)} needs {count} elements.)"
        )
    expected = CONTENTS_FIELD.get(datatype)
    given = ", ".join(field.name for field, _ in fields)
    if expected is None or len(fields) > 1 or fields[0][0].name != expected:
        # Triton's text (infer_handler.cc, InferGRPCToInputHelper), then what would be right
        hint = (
            f"datatype {datatype} has no typed contents field; send it in raw_input_contents"
            if expected is None
            else f"datatype {datatype} expects contents.{expected}"
        )
        raise InvalidArgument(
            f"unexpected explicit tensor data for input tensor '{name}' for model '{model}' of "
            f"type '{_FIELD_TYPE[fields[0][0].name]}', expected datatype '{datatype}' "
            f"(contents.{given} given; {hint})"
        )
    values = fields[0][1]
    if len(values) != count:
        raise InvalidArgument(
            f"input '{name}': shape {list(shape)} needs {count} elements but "
            f"contents.{expected} holds {len(values)}"
        )
    if datatype == "BYTES":
        array = np.empty(count, dtype=object)
        for i, value in enumerate(values):
            array[i] = value
        return array.reshape(shape)
    narrowed = _NARROWED.get(datatype)
    if narrowed is None:
        return np.array(values, dtype=dtype).reshape(shape)
    wide, lowest, highest = narrowed
    array = np.array(values, dtype=wide)
    if count:
        low, high = int(array.min()), int(array.max())
        if low < lowest or high > highest:
            bad = low if low < lowest else high
            raise InvalidArgument(
                f"input '{name}': datatype {datatype} cannot hold the value {bad} "
                f"(range {lowest}..{highest})"
            )
    return array.astype(dtype).reshape(shape)


def parameters_from_proto(
    parameters: Mapping[str, pb.InferParameter], where: str
) -> dict[str, Parameter]:
    """``map<string, InferParameter>`` → plain values (``uint64_param`` becomes an ``int``)."""
    if not parameters:
        return {}
    out: dict[str, Parameter] = {}
    for key, parameter in parameters.items():
        choice = parameter.WhichOneof("parameter_choice")
        if choice is None:
            raise InvalidArgument(f"{where}: parameter '{key}' has no value")
        value: Parameter = getattr(parameter, choice)
        out[key] = value
    return out


# -- responses --------------------------------------------------------------------------------


def infer_response_to_proto(
    response: InferenceResponse, extra_parameters: Mapping[str, Parameter] | None = None
) -> pb.ModelInferResponse:
    """Encode a response: raw contents for every output, in order; ``id`` always echoed."""
    outputs: list[pb.ModelInferResponse.InferOutputTensor] = []
    raw: list[bytes] = []
    for tensor in response.outputs:
        output = pb.ModelInferResponse.InferOutputTensor(
            name=tensor.name, datatype=tensor.datatype, shape=tensor.shape
        )
        if tensor.parameters:
            _set_parameters(output.parameters, tensor.parameters)
        outputs.append(output)
        data = array_to_raw(tensor.data)
        raw.append(data if isinstance(data, bytes) else data.tobytes())
    message = pb.ModelInferResponse(
        model_name=response.model_name,
        model_version=response.model_version,
        id=response.id,
        outputs=outputs,
        raw_output_contents=raw,
    )
    if response.parameters:
        _set_parameters(message.parameters, response.parameters)
    if extra_parameters:
        _set_parameters(message.parameters, extra_parameters)
    return message


def parameter_to_proto(value: Parameter) -> pb.InferParameter:
    if isinstance(value, bool):
        return pb.InferParameter(bool_param=value)
    if isinstance(value, int):
        if _INT64_MIN <= value <= _INT64_MAX:
            return pb.InferParameter(int64_param=value)
        if 0 <= value <= _UINT64_MAX:
            return pb.InferParameter(uint64_param=value)
        return pb.InferParameter(string_param=str(value))
    if isinstance(value, float):
        return pb.InferParameter(double_param=value)
    return pb.InferParameter(string_param=str(value))


def _set_parameters(target: Any, parameters: Mapping[str, Parameter]) -> None:
    for key, value in parameters.items():
        target[key].CopyFrom(parameter_to_proto(value))
