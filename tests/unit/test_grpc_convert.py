"""gRPC messages ↔ protocol types, in memory: every datatype raw and typed, every bad input."""

from __future__ import annotations

import struct
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from oipserve.errors import InvalidArgument, Unsupported
from oipserve.model import Parameter
from oipserve.protocol.binary import array_to_raw
from oipserve.protocol.messages import pb
from oipserve.protocol.types import InferenceResponse, OutputTensor
from oipserve.transport.grpc.convert import (
    CONTENTS_FIELD,
    infer_request_from_proto,
    infer_response_to_proto,
    parameter_to_proto,
    parameters_from_proto,
)

InputTensor = pb.ModelInferRequest.InferInputTensor


def _samples() -> dict[str, np.ndarray]:
    """A 2x3 array of every datatype, with values at the edges of each range."""
    return {
        "BOOL": np.array([[True, False, True], [False, False, True]]),
        "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
        "UINT16": np.array([[0, 1, 65535], [7, 8, 9]], dtype=np.uint16),
        "UINT32": np.array([[0, 1, 2**32 - 1], [7, 8, 9]], dtype=np.uint32),
        "UINT64": np.array([[0, 1, 2**64 - 1], [7, 8, 9]], dtype=np.uint64),
        "INT8": np.array([[-128, 0, 127], [-1, 2, 3]], dtype=np.int8),
        "INT16": np.array([[-32768, 0, 32767], [-1, 2, 3]], dtype=np.int16),
        "INT32": np.array([[-(2**31), 0, 2**31 - 1], [-1, 2, 3]], dtype=np.int32),
        "INT64": np.array([[-(2**63), 0, 2**63 - 1], [-1, 2, 3]], dtype=np.int64),
        "FP16": np.array([[0.5, -1.25, 65504], [1, 2, 3]], dtype=np.float16),
        "FP32": np.array([[0.5, -1.25, 3.4e38], [1, 2, 3]], dtype=np.float32),
        "FP64": np.array([[0.5, -1.25, 1e300], [1, 2, 3]], dtype=np.float64),
        "BF16": np.array([[0.5, -1.25, 256], [1, 2, 3]], dtype=ml_dtypes.bfloat16),
        "BYTES": np.array([[b"", b"a", b"\x00\xff"], [b"xyz", "é".encode(), b"q"]], dtype=object),
    }


SAMPLES = _samples()
DATATYPES = sorted(SAMPLES)
TYPED_DATATYPES = sorted(CONTENTS_FIELD)


def _raw_request(*tensors: tuple[str, str, np.ndarray]) -> pb.ModelInferRequest:
    request = pb.ModelInferRequest(model_name="m")
    for name, datatype, array in tensors:
        request.inputs.add(name=name, datatype=datatype, shape=array.shape)
        raw = array_to_raw(array)
        request.raw_input_contents.append(raw if isinstance(raw, bytes) else raw.tobytes())
    return request


def _typed_input(name: str, datatype: str, shape: tuple[int, ...], **contents: Any) -> InputTensor:
    return InputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def _typed_contents(datatype: str, array: np.ndarray) -> dict[str, Any]:
    return {CONTENTS_FIELD[datatype]: array.ravel().tolist()}


def _assert_same(got: np.ndarray, expected: np.ndarray) -> None:
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tolist() == expected.tolist()


def _bad(request: pb.ModelInferRequest, *words: str) -> str:
    with pytest.raises(InvalidArgument) as info:
        infer_request_from_proto(request)
    message = str(info.value)
    for word in words:
        assert word in message, message
    return message


# -- requests: good ---------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_raw_input_of_every_datatype(datatype: str) -> None:
    array = SAMPLES[datatype]
    request = infer_request_from_proto(_raw_request(("x", datatype, array)))
    (tensor,) = request.inputs
    assert (tensor.name, tensor.datatype, tensor.shape) == ("x", datatype, (2, 3))
    _assert_same(tensor.data, array)


@pytest.mark.parametrize("datatype", TYPED_DATATYPES)
def test_typed_input_of_every_datatype(datatype: str) -> None:
    array = SAMPLES[datatype]
    message = pb.ModelInferRequest(
        model_name="m",
        inputs=[_typed_input("x", datatype, array.shape, **_typed_contents(datatype, array))],
    )
    (tensor,) = infer_request_from_proto(message).inputs
    _assert_same(tensor.data, array)


def test_raw_buffers_map_to_inputs_in_order() -> None:
    a = np.arange(4, dtype=np.int32)
    b = np.array([b"hello", b"w"], dtype=object)
    c = np.ones((2, 2), dtype=np.float64)
    request = infer_request_from_proto(
        _raw_request(("a", "INT32", a), ("b", "BYTES", b), ("c", "FP64", c))
    )
    assert [t.name for t in request.inputs] == ["a", "b", "c"]
    for tensor, array in zip(request.inputs, [a, b, c], strict=True):
        _assert_same(tensor.data, array)


def test_request_fields_and_parameters() -> None:
    message = _raw_request(("x", "INT32", np.zeros(2, dtype=np.int32)))
    message.model_version = "1"
    message.id = "req-7"
    message.parameters["priority"].uint64_param = 3
    message.parameters["timeout"].int64_param = 1000
    message.parameters["flag"].bool_param = True
    message.parameters["name"].string_param = "n"
    message.parameters["ratio"].double_param = 0.25
    message.parameters["triton_enable_empty_final_response"].bool_param = True
    message.inputs[0].parameters["hint"].string_param = "np"
    message.outputs.add(name="y").parameters["classification"].int64_param = 2
    request = infer_request_from_proto(message)
    assert (request.model_name, request.model_version, request.id) == ("m", "1", "req-7")
    assert request.parameters == {
        "priority": 3,
        "timeout": 1000,
        "flag": True,
        "name": "n",
        "ratio": 0.25,
        "triton_enable_empty_final_response": True,
    }
    assert request.inputs[0].parameters == {"hint": "np"}
    assert [(o.name, o.parameters) for o in request.outputs] == [("y", {"classification": 2})]


def test_parameter_without_a_value() -> None:
    message = pb.ModelInferRequest(model_name="m")
    message.parameters["empty"].CopyFrom(pb.InferParameter())
    _bad(message, "request", "parameter 'empty' has no value")


def test_parameters_from_proto_keeps_types() -> None:
    values: dict[str, Parameter] = {"b": False, "i": -5, "u": 2**64 - 1, "d": 1.5, "s": ""}
    proto = {key: parameter_to_proto(value) for key, value in values.items()}
    assert proto["u"].WhichOneof("parameter_choice") == "uint64_param"
    assert proto["i"].WhichOneof("parameter_choice") == "int64_param"
    got = parameters_from_proto(proto, "request")
    assert got == values
    assert [type(v) for v in got.values()] == [bool, int, int, float, str]


def test_zero_element_input_needs_no_data() -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[InputTensor(name="x", datatype="FP32", shape=[0, 3])]
    )
    (tensor,) = infer_request_from_proto(message).inputs
    assert tensor.data.shape == (0, 3)
    assert tensor.data.dtype == np.float32


def test_zero_element_raw_input() -> None:
    (tensor,) = infer_request_from_proto(
        _raw_request(("x", "BYTES", np.empty((2, 0), dtype=object)))
    ).inputs
    assert tensor.data.shape == (2, 0)


# -- requests: bad ----------------------------------------------------------------------------


@pytest.mark.parametrize("datatype", TYPED_DATATYPES)
def test_typed_count_must_match_shape(datatype: str) -> None:
    array = SAMPLES[datatype]
    contents = {CONTENTS_FIELD[datatype]: array.ravel().tolist()[:5]}
    message = pb.ModelInferRequest(
        model_name="m", inputs=[_typed_input("x", datatype, (2, 3), **contents)]
    )
    _bad(message, "input 'x'", "[2, 3]", "needs 6 elements", "holds 5")


@pytest.mark.parametrize("datatype", sorted(set(DATATYPES) - {"BYTES"}))
def test_raw_size_must_match_shape(datatype: str) -> None:
    message = _raw_request(("x", datatype, SAMPLES[datatype]))
    message.raw_input_contents[0] = message.raw_input_contents[0] + b"\x00"
    _bad(message, "input 'x'", "do not match shape [2, 3]")


@pytest.mark.parametrize(
    "raw",
    [
        struct.pack("<I", 1) + b"a",  # one element of two
        struct.pack("<I", 1) + b"a" + struct.pack("<I", 5) + b"b",  # second element cut short
        struct.pack("<II", 0, 0) + b"!",  # bytes left over
    ],
)
def test_raw_bytes_must_match_shape(raw: bytes) -> None:
    """The wording is binary.py's (shared with REST); here: rejected, naming the input."""
    message = pb.ModelInferRequest(
        model_name="m",
        inputs=[InputTensor(name="s", datatype="BYTES", shape=[2])],
        raw_input_contents=[raw],
    )
    _bad(message, "input 's'")


def test_raw_and_typed_contents_in_one_request() -> None:
    message = _raw_request(("a", "INT32", np.zeros(2, dtype=np.int32)))
    message.inputs.append(_typed_input("b", "INT32", (2,), int_contents=[1, 2]))
    _bad(message, "input 'b'", "contents field must not be specified", "raw_input_contents")


def test_raw_and_typed_contents_on_one_input() -> None:
    message = _raw_request(("a", "INT32", np.zeros(2, dtype=np.int32)))
    message.inputs[0].contents.int_contents.extend([1, 2])
    _bad(message, "input 'a'", "contents field must not be specified")


def test_surplus_raw_buffers() -> None:
    message = _raw_request(("a", "INT32", np.zeros(2, dtype=np.int32)))
    message.raw_input_contents.append(b"\x00" * 8)
    _bad(message, "2 raw_input_contents entries", "only 1 inputs", "1 surplus")


def test_too_few_raw_buffers() -> None:
    message = _raw_request(("a", "INT32", np.zeros(2, dtype=np.int32)))
    message.inputs.add(name="b", datatype="INT32", shape=[2])
    _bad(message, "unable to find data for input tensor 'b'")


def test_no_data_for_an_input() -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[InputTensor(name="x", datatype="FP32", shape=[2])]
    )
    _bad(
        message,
        "unable to find data for input tensor 'x' for model 'm' in request.",  # Triton's text
        "needs 2 elements",
    )


@pytest.mark.parametrize(
    ("datatype", "field"),
    [
        ("FP32", "fp64_contents"),
        ("INT64", "int_contents"),
        ("UINT64", "uint_contents"),
        ("INT8", "uint_contents"),
        ("BYTES", "int_contents"),
        ("BOOL", "int_contents"),
    ],
)
def test_contents_field_must_match_datatype(datatype: str, field: str) -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[_typed_input("x", datatype, (1,), **{field: [1]})]
    )
    given = {"fp64_contents": "FP64", "int_contents": "INT32", "uint_contents": "UINT32"}[field]
    _bad(
        message,
        # Triton's text (infer_handler.cc), then what would be right
        f"unexpected explicit tensor data for input tensor 'x' for model 'm' of type '{given}', "
        f"expected datatype '{datatype}'",
        f"contents.{field}",
        f"datatype {datatype}",
        CONTENTS_FIELD[datatype],
    )


def test_two_contents_fields() -> None:
    message = pb.ModelInferRequest(
        model_name="m",
        inputs=[_typed_input("x", "FP32", (1,), fp32_contents=[1.0], fp64_contents=[1.0])],
    )
    _bad(message, "fp32_contents, fp64_contents", "expects contents.fp32_contents")


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_has_no_typed_contents(datatype: str) -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[_typed_input("x", datatype, (1,), fp32_contents=[1.0])]
    )
    _bad(message, f"datatype {datatype} has no typed contents field", "raw_input_contents")


@pytest.mark.parametrize(
    ("datatype", "field", "value"),
    [
        ("INT8", "int_contents", 128),
        ("INT8", "int_contents", -129),
        ("INT16", "int_contents", 32768),
        ("INT16", "int_contents", -32769),
        ("UINT8", "uint_contents", 256),
        ("UINT16", "uint_contents", 65536),
    ],
)
def test_narrowed_contents_are_range_checked(datatype: str, field: str, value: int) -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[_typed_input("x", datatype, (2,), **{field: [0, value]})]
    )
    _bad(message, "input 'x'", f"datatype {datatype} cannot hold the value {value}")


@pytest.mark.parametrize("datatype", ["FP8", "fp32", "STRING", ""])
def test_unknown_datatype(datatype: str) -> None:
    message = pb.ModelInferRequest(
        model_name="m",
        inputs=[InputTensor(name="x", datatype=datatype, shape=[1])],
        raw_input_contents=[b"\x00" * 4],
    )
    _bad(message, "input 'x'", f"unknown datatype '{datatype}'", "FP32")


def test_negative_dimension() -> None:
    message = pb.ModelInferRequest(
        model_name="m",
        inputs=[InputTensor(name="x", datatype="FP32", shape=[-1, 2])],
        raw_input_contents=[b"\x00" * 8],
    )
    _bad(message, "input 'x'", "negative dimension")


def test_shared_memory_is_unsupported() -> None:
    message = pb.ModelInferRequest(
        model_name="m", inputs=[InputTensor(name="x", datatype="FP32", shape=[1])]
    )
    message.inputs[0].parameters["shared_memory_region"].string_param = "r"
    with pytest.raises(Unsupported, match=r"input 'x'.*shared memory"):
        infer_request_from_proto(message)
    message = _raw_request(("x", "FP32", np.zeros(1, dtype=np.float32)))
    message.outputs.add(name="y").parameters["shared_memory_region"].string_param = "r"
    with pytest.raises(Unsupported, match=r"output 'y'.*shared memory"):
        infer_request_from_proto(message)


# -- responses --------------------------------------------------------------------------------


def test_response_is_always_raw_one_entry_per_output_in_order() -> None:
    outputs = [
        OutputTensor(f"OUT_{datatype}", datatype, SAMPLES[datatype].shape, SAMPLES[datatype])
        for datatype in DATATYPES
    ]
    outputs.append(OutputTensor("EMPTY", "FP32", (0,), np.empty(0, dtype=np.float32)))
    message = infer_response_to_proto(InferenceResponse("m", "1", "id-1", outputs=outputs))
    assert (message.model_name, message.model_version, message.id) == ("m", "1", "id-1")
    assert [o.name for o in message.outputs] == [o.name for o in outputs]
    assert len(message.raw_output_contents) == len(outputs)
    for output, tensor, raw in zip(
        outputs, message.outputs, message.raw_output_contents, strict=True
    ):
        assert tensor.datatype == output.datatype
        assert list(tensor.shape) == list(output.shape)
        assert not tensor.HasField("contents")
        expected = array_to_raw(output.data)
        assert raw == (expected if isinstance(expected, bytes) else expected.tobytes())
    assert message.raw_output_contents[-1] == b""
    bytes_raw = message.raw_output_contents[DATATYPES.index("BYTES")]
    assert bytes_raw.startswith(struct.pack("<I", 0) + struct.pack("<I", 1) + b"a")


def test_response_sets_empty_fields_and_parameters() -> None:
    data = np.arange(3, dtype=np.int64)
    response = InferenceResponse(
        "m",
        "2",
        parameters={"flag": True, "count": 2**63, "ratio": 0.5, "note": "x"},
        outputs=[OutputTensor("y", "INT64", (3,), data, parameters={"k": 1})],
    )
    message = infer_response_to_proto(response, {"triton_final_response": True})
    assert message.id == ""
    assert message.model_version == "2"
    assert parameters_from_proto(message.parameters, "response") == {
        "flag": True,
        "count": 2**63,
        "ratio": 0.5,
        "note": "x",
        "triton_final_response": True,
    }
    assert message.parameters["count"].WhichOneof("parameter_choice") == "uint64_param"
    assert parameters_from_proto(message.outputs[0].parameters, "output") == {"k": 1}
    assert np.frombuffer(message.raw_output_contents[0], dtype="<i8").tolist() == [0, 1, 2]


def test_response_of_non_contiguous_and_big_endian_arrays() -> None:
    data = np.arange(6, dtype=">i4").reshape(2, 3).T
    message = infer_response_to_proto(
        InferenceResponse("m", "1", outputs=[OutputTensor("y", "INT32", data.shape, data)])
    )
    got = np.frombuffer(message.raw_output_contents[0], dtype="<i4").reshape(3, 2)
    assert got.tolist() == data.tolist()
