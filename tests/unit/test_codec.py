"""In-memory tests of the REST codec: binary framing, raw tensors, compression, classification."""

from __future__ import annotations

import gzip
import json
import struct
import zlib
from typing import Any
from unittest.mock import ANY

import ml_dtypes
import numpy as np
import pytest

from oipserve import classification
from oipserve.errors import InvalidArgument, PayloadTooLarge
from oipserve.protocol import codec
from oipserve.protocol.binary import array_from_raw, array_to_raw, bytes_to_raw
from oipserve.protocol.nesting import MAX_JSON_DEPTH
from oipserve.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    OutputTensor,
    RequestedOutput,
    TensorMetadata,
)
from oipserve.transport.http import compression

# -- helpers ------------------------------------------------------------------------------------


def frame(header: dict[str, Any], *chunks: bytes) -> tuple[bytes, int]:
    """A binary-extension body and its Inference-Header-Content-Length."""
    head = json.dumps(header).encode()
    return head + b"".join(chunks), len(head)


def binary_input(name: str, datatype: str, shape: list[int], size: int) -> dict[str, Any]:
    return {
        "name": name,
        "datatype": datatype,
        "shape": shape,
        "parameters": {"binary_data_size": size},
    }


def decode(body: bytes, header_length: int | None) -> InferenceRequest:
    return codec.decode_infer_request(body, "m", "", header_length)


def split_response(header: bytes, chunks: list[bytes | memoryview]) -> tuple[Any, list[bytes]]:
    return json.loads(header), [bytes(c) for c in chunks]


ALL_TYPES: list[tuple[str, np.ndarray]] = [
    ("BOOL", np.array([[True, False, True]])),
    ("UINT8", np.array([[0, 7, 255]], dtype=np.uint8)),
    ("UINT16", np.array([[0, 7, 65535]], dtype=np.uint16)),
    ("UINT32", np.array([[0, 7, 2**32 - 1]], dtype=np.uint32)),
    ("UINT64", np.array([[0, 7, 2**64 - 1]], dtype=np.uint64)),
    ("INT8", np.array([[-128, 0, 127]], dtype=np.int8)),
    ("INT16", np.array([[-(2**15), 0, 2**15 - 1]], dtype=np.int16)),
    ("INT32", np.array([[-(2**31), 0, 2**31 - 1]], dtype=np.int32)),
    ("INT64", np.array([[-(2**63), 0, 2**63 - 1]], dtype=np.int64)),
    ("FP16", np.array([[0.5, -1.25, 65504.0]], dtype=np.float16)),
    ("FP32", np.array([[0.5, -1.25, 3.0e38]], dtype=np.float32)),
    ("FP64", np.array([[0.1, -1.25, 1e300]], dtype=np.float64)),
    ("BF16", np.array([[1.0, -2.5, 3.140625]], dtype=ml_dtypes.bfloat16)),
    ("BYTES", np.array([[b"a", b"", b"\xff\x00zz"]], dtype=np.object_)),
]


# -- Inference-Header-Content-Length ------------------------------------------------------------


def test_header_length_absent_and_valid() -> None:
    assert codec.parse_header_length(None, 10) is None
    assert codec.parse_header_length("4", 10) == 4
    assert codec.parse_header_length(" 10 ", 10) == 10  # equal to the body: perf_analyzer


@pytest.mark.parametrize("value", ["abc", "", "1_0", "+5", "4.0", "0x10", "١٢"])
def test_header_length_not_an_integer(value: str) -> None:
    with pytest.raises(InvalidArgument, match="must be an integer"):
        codec.parse_header_length(value, 100)


@pytest.mark.parametrize("value", ["-1", "11", "99999999999999999999999"])
def test_header_length_out_of_range(value: str) -> None:
    with pytest.raises(InvalidArgument, match=r"should be in range \(0, 10\)"):
        codec.parse_header_length(value, 10)


def test_header_length_zero_is_raw_binary_mode() -> None:
    assert codec.parse_header_length("0", 10) == 0
    assert codec.parse_header_length("0", 0) == 0


# -- raw binary requests (Inference-Header-Content-Length: 0) ----------------------------------


def _spec(datatype: str, *shape: int) -> TensorMetadata:
    return TensorMetadata("x", datatype, list(shape))


def test_raw_request_fixed_shape_batched() -> None:
    body = np.arange(4, dtype=np.float32).tobytes()
    request = codec.decode_raw_infer_request(body, "m", "", [_spec("FP32", -1, 4)], batched=True)
    (tensor,) = request.inputs
    assert tensor.shape == (1, 4)
    assert np.array_equal(tensor.data, np.arange(4, dtype=np.float32).reshape(1, 4))
    assert request.parameters == {"binary_data_output": True}  # every output binary
    assert request.outputs == []


def test_raw_request_variable_dimension_from_the_byte_count() -> None:
    body = np.arange(12, dtype=np.int16).tobytes()
    request = codec.decode_raw_infer_request(body, "m", "1", [_spec("INT16", 3, -1)], False)
    assert request.inputs[0].shape == (3, 4)
    assert request.model_version == "1"


def test_raw_request_bytes_is_one_element() -> None:
    request = codec.decode_raw_infer_request(b"\x00raw", "m", "", [_spec("BYTES", -1, 1)], True)
    (tensor,) = request.inputs
    assert tensor.shape == (1, 1)
    assert tensor.data[0, 0] == b"\x00raw"


@pytest.mark.parametrize(
    ("inputs", "batched", "body", "message"),
    [
        ([], False, b"", "must only have 1 input .* got 0 inputs in 'm'"),
        ([_spec("FP32", 4), _spec("FP32", 4)], False, b"", "got 2 inputs"),
        ([_spec("FP32", -1, -1)], False, b"\0" * 8, "more than one variable-sized dimension"),
        ([_spec("BYTES", 2)], False, b"ab", "must have input shape \\[1\\]"),
        ([_spec("BYTES", -1)], False, b"ab", "must have input shape \\[1\\]"),
        (
            [_spec("FP32", -1, 4)],
            True,
            b"\0" * 15,
            "15 bytes of data do not match shape \\[1, 4\\]",
        ),
        ([_spec("FP32", -1)], False, b"\0" * 6, "6 bytes do not make whole elements"),
        ([_spec("FP32", 0, -1)], False, b"\0" * 4, "do not make whole elements"),
    ],
)
def test_raw_request_refusals(
    inputs: list[TensorMetadata], batched: bool, body: bytes, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message):
        codec.decode_raw_infer_request(body, "m", "", inputs, batched)


# -- nesting depth ---------------------------------------------------------------------------


@pytest.mark.parametrize("depth", [102, 1000, 5000, 100_000])
def test_deep_infer_body_is_invalid_argument(depth: int) -> None:
    """'data' deeper than the limit, or anything deeper than msgspec's recursion guard (an
    unknown key is skipped, not built, so only the guard bounds it): 400, never a 500."""
    deep = b"[" * depth + b"1" + b"]" * depth
    for body in (
        b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":' + deep + b"}]}",
        b'{"unknown":'
        + deep
        + b',"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}',
    ):
        if depth < 5000 and body.startswith(b'{"unknown"'):
            continue
        with pytest.raises(InvalidArgument, match="nested"):
            codec.decode_infer_request(body, "m")


@pytest.mark.parametrize("depth", [100, 101, 5000, 100_000])
def test_deep_control_body_is_invalid_argument(depth: int) -> None:
    body = b'{"parameters":' + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}"
    if depth <= MAX_JSON_DEPTH:
        assert codec.decode_json_object(body, "repository load") == {"parameters": ANY}
        return
    with pytest.raises(InvalidArgument, match="repository load request is nested too deeply"):
        codec.decode_json_object(body, "repository load")


def test_control_body_must_be_an_object() -> None:
    assert codec.decode_json_object(b"  ", "x") == {}
    with pytest.raises(InvalidArgument, match="must be a JSON object"):
        codec.decode_json_object(b"[1]", "x")
    with pytest.raises(InvalidArgument, match="invalid JSON in the x request"):
        codec.decode_json_object(b"{", "x")


# -- request framing ----------------------------------------------------------------------------


def test_binary_inputs_are_views_of_the_body() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, 2], dtype=np.int64)
    body, length = frame(
        {
            "inputs": [
                binary_input("A", "FP32", [2, 3], a.nbytes),
                binary_input("B", "INT64", [2], b.nbytes),
            ]
        },
        a.tobytes(),
        b.tobytes(),
    )
    request = decode(body, length)
    got_a, got_b = (t.data for t in request.inputs)
    np.testing.assert_array_equal(got_a, a)
    np.testing.assert_array_equal(got_b, b)
    whole = np.frombuffer(body, dtype=np.uint8)
    assert np.shares_memory(got_a, whole)  # no copy
    assert np.shares_memory(got_b, whole)
    assert request.inputs[0].parameters == {}  # binary_data_size is the codec's, not the model's


def test_mixed_json_and_binary_inputs() -> None:
    b = np.array([7, 8, 9], dtype=np.int32)
    body, length = frame(
        {
            "inputs": [
                {"name": "J", "datatype": "FP32", "shape": [2], "data": [1.5, 2.5]},
                binary_input("B", "INT32", [3], b.nbytes),
                {"name": "K", "datatype": "BYTES", "shape": [1], "data": ["x"]},
            ]
        },
        b.tobytes(),
    )
    request = decode(body, length)
    np.testing.assert_array_equal(request.inputs[0].data, [1.5, 2.5])
    np.testing.assert_array_equal(request.inputs[1].data, b)
    assert request.inputs[2].data.tolist() == [b"x"]


def test_header_equal_to_whole_body() -> None:
    body, length = frame({"inputs": [{"name": "J", "datatype": "INT8", "shape": [1], "data": [3]}]})
    assert length == len(body)
    assert decode(body, length).inputs[0].data.tolist() == [3]


def test_zero_size_binary_input() -> None:
    body, length = frame({"inputs": [binary_input("E", "FP32", [0, 4], 0)]})
    request = decode(body, length)
    assert request.inputs[0].data.shape == (0, 4)
    # no bytes follow, so no header is needed either
    assert decode(body, None).inputs[0].data.shape == (0, 4)


def test_short_binary_data() -> None:
    body, length = frame({"inputs": [binary_input("A", "FP32", [4], 16)]}, b"\0" * 12)
    with pytest.raises(InvalidArgument, match="unexpected size for input 'A', expecting 16"):
        decode(body, length)


def test_surplus_binary_data() -> None:
    body, length = frame(
        {"inputs": [{"name": "J", "datatype": "INT8", "shape": [1], "data": [3]}]}, b"\0" * 5
    )
    with pytest.raises(InvalidArgument, match="unexpected additional input data for model 'm'"):
        decode(body, length)


def test_binary_size_does_not_match_shape() -> None:
    body, length = frame({"inputs": [binary_input("A", "FP32", [4], 12)]}, b"\0" * 12)
    with pytest.raises(InvalidArgument, match=r"12 bytes .* shape \[4\] of FP32 \(16 bytes"):
        decode(body, length)


def test_data_and_binary_for_one_input() -> None:
    entry = binary_input("A", "INT8", [1], 1)
    entry["data"] = [1]
    body, length = frame({"inputs": [entry]}, b"\x01")
    with pytest.raises(InvalidArgument, match="both 'data' and binary_data_size"):
        decode(body, length)


def test_binary_without_header() -> None:
    body, _ = frame({"inputs": [binary_input("A", "INT8", [1], 1)]}, b"\x01")
    with pytest.raises(InvalidArgument, match="Inference-Header-Content-Length"):
        decode(body, None)
    # valid JSON declaring binary data, but no header
    body, _ = frame({"inputs": [binary_input("A", "INT8", [1], 1)]})
    with pytest.raises(InvalidArgument, match="Inference-Header-Content-Length"):
        decode(body, None)


@pytest.mark.parametrize("size", [-1, 1.5, "4", True])
def test_bad_binary_data_size(size: Any) -> None:
    body, length = frame({"inputs": [binary_input("A", "INT8", [4], size)]}, b"\0" * 4)
    with pytest.raises(InvalidArgument, match="'A'"):
        decode(body, length)


def test_header_length_cutting_the_json() -> None:
    body, length = frame({"inputs": [binary_input("A", "INT8", [1], 1)]}, b"\x01")
    with pytest.raises(InvalidArgument, match="malformed JSON"):
        decode(body, length - 3)


@pytest.mark.parametrize(
    ("where", "value"),
    [("request", "yes"), ("request", 1), ("output", "false"), ("output", 0)],
)
def test_binary_flags_must_be_booleans(where: str, value: Any) -> None:
    header: dict[str, Any] = {
        "inputs": [{"name": "J", "datatype": "INT8", "shape": [1], "data": [3]}]
    }
    if where == "request":
        header["parameters"] = {"binary_data_output": value}
    else:
        header["outputs"] = [{"name": "J", "parameters": {"binary_data": value}}]
    body, length = frame(header)
    with pytest.raises(InvalidArgument, match="must be a boolean"):
        decode(body, length)


# -- raw tensors --------------------------------------------------------------------------------


@pytest.mark.parametrize(("datatype", "array"), ALL_TYPES, ids=[t for t, _ in ALL_TYPES])
def test_raw_round_trip_every_datatype(datatype: str, array: np.ndarray) -> None:
    raw = bytes(array_to_raw(array))
    back = array_from_raw("x", datatype, array.shape, raw)
    assert back.shape == array.shape
    if datatype == "BYTES":
        assert back.tolist() == array.tolist()
    else:
        assert back.dtype == array.dtype
        np.testing.assert_array_equal(back, array)
        assert len(raw) == array.nbytes


def test_raw_layout_is_little_endian_and_bf16_is_truncated_fp32() -> None:
    assert bytes(array_to_raw(np.array([1, 2], dtype=">i4"))) == struct.pack("<2i", 1, 2)
    assert bytes(array_to_raw(np.array([True, False]))) == b"\x01\x00"
    values = np.array([1.0, -2.5, 3.140625], dtype=np.float32)
    expected = b"".join(struct.pack("<f", v)[2:4] for v in values)  # what tritonclient sends
    assert bytes(array_to_raw(values.astype(ml_dtypes.bfloat16))) == expected
    back = array_from_raw("x", "BF16", (3,), expected)
    np.testing.assert_array_equal(back.astype(np.float32), values)


def test_raw_output_is_a_view_not_a_copy() -> None:
    array = np.arange(1000, dtype=np.float32).reshape(10, 100)
    raw = array_to_raw(array)
    assert isinstance(raw, memoryview)
    assert np.shares_memory(np.frombuffer(raw, dtype=np.uint8), array)
    assert array_to_raw(np.empty((0, 3), dtype=np.float32)) == b""


def test_bytes_length_prefixes() -> None:
    array = np.array([b"ab", b"", "é"], dtype=object)
    assert bytes_to_raw(array) == b"\x02\0\0\0ab" + b"\0\0\0\0" + b"\x02\0\0\0\xc3\xa9"
    back = array_from_raw("s", "BYTES", (3,), bytes_to_raw(array))
    assert back.tolist() == [b"ab", b"", "é".encode()]


@pytest.mark.parametrize(
    ("raw", "shape", "message"),
    [
        (b"\x05\0\0\0abc", (1,), "element 0 declares 5 bytes but only 3 remain"),
        (b"\x01\0\0\0a\x01\0", (2,), "cannot hold 2 BYTES elements"),
        (b"\x01\0\0\0a\0\0\0", (2,), "ends after 1 of 2 elements"),
        (b"\x01\0\0\0a\x00\x00\x00\x00\x01", (2,), "1 bytes left over"),
        (b"\x02\0\0\0ab\x01\0", (2,), "ends after 1 of 2 elements"),
        (b"\x01\0\0\0a\x00\x00", (1,), "2 bytes left over"),
        # refused before allocating (a shape over --max-tensor-elements is 413: test_tensor.py)
        (b"", (2**20,), "cannot hold"),
    ],
)
def test_truncated_or_oversized_bytes(raw: bytes, shape: tuple[int, ...], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        array_from_raw("s", "BYTES", shape, raw)


def test_bytes_ending_between_elements() -> None:
    raw = b"\x01\0\0\0a" + b"\x09\0\0"  # 8 bytes: enough for 2 prefixes, but the 2nd is cut
    with pytest.raises(InvalidArgument, match="ends after 1 of 2 elements"):
        array_from_raw("s", "BYTES", (2,), raw)


# -- response encoding --------------------------------------------------------------------------


def _response(*arrays: tuple[str, np.ndarray]) -> InferenceResponse:
    outputs = [
        OutputTensor(name, dt, a.shape, a)
        for name, a in arrays
        for dt in [{"f": "FP32", "i": "INT32", "O": "BYTES"}[a.dtype.kind]]
    ]
    return InferenceResponse("m", "1", outputs=outputs)


def test_response_binary_order_and_zero_size() -> None:
    a = np.arange(3, dtype=np.float32)
    empty = np.empty((0, 2), dtype=np.int32)
    s = np.array([b"xy"], dtype=object)
    response = _response(("B", s), ("E", empty), ("A", a))
    request = InferenceRequest("m", parameters={"binary_data_output": True})
    header, chunks = codec.encode_infer_response(response, request)
    head, raw = split_response(header, chunks)
    assert [o["name"] for o in head["outputs"]] == ["B", "E", "A"]
    assert [o["parameters"]["binary_data_size"] for o in head["outputs"]] == [6, 0, 12]
    assert raw == [b"\x02\0\0\0xy", a.tobytes()]  # the empty output adds no chunk
    assert all("data" not in o for o in head["outputs"])


def test_response_per_output_flag_beats_request_wide() -> None:
    a = np.arange(3, dtype=np.float32)
    b = np.arange(2, dtype=np.int32)
    response = _response(("A", a), ("B", b))
    request = InferenceRequest(
        "m",
        parameters={"binary_data_output": True},
        outputs=[RequestedOutput("A", {"binary_data": False}), RequestedOutput("B")],
    )
    head, raw = split_response(*codec.encode_infer_response(response, request))
    assert head["outputs"][0] == {"name": "A", "datatype": "FP32", "shape": [3], "data": [0, 1, 2]}
    assert head["outputs"][1]["parameters"] == {"binary_data_size": 8}
    assert raw == [b.tobytes()]

    request = InferenceRequest("m", outputs=[RequestedOutput("B", {"binary_data": True})])
    head, raw = split_response(*codec.encode_infer_response(response, request))
    assert "data" in head["outputs"][0]  # default: JSON
    assert head["outputs"][1]["parameters"] == {"binary_data_size": 8}


def test_json_outputs_carry_no_parameters() -> None:
    response = _response(("A", np.arange(2, dtype=np.float32)))
    response.outputs[0].parameters = {"note": "x"}
    head, raw = split_response(*codec.encode_infer_response(response, InferenceRequest("m")))
    assert "parameters" not in head["outputs"][0]
    assert raw == []


def test_response_chunks_are_views_of_the_outputs() -> None:
    a = np.arange(20000, dtype=np.float32).reshape(1000, 20)
    response = _response(("A", a))
    _, chunks = codec.encode_infer_response(
        response, InferenceRequest("m", parameters={"binary_data_output": True})
    )
    assert np.shares_memory(np.frombuffer(chunks[0], dtype=np.uint8), a)


# -- compression --------------------------------------------------------------------------------

PAYLOAD = b'{"inputs": []}' * 100


@pytest.mark.parametrize(
    ("coding", "body"),
    [
        ("gzip", gzip.compress(PAYLOAD)),
        ("GZIP", gzip.compress(PAYLOAD)),
        ("x-gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),  # zlib-wrapped, as tritonclient sends
        ("deflate", zlib.compress(PAYLOAD)[2:-4]),  # raw deflate
        ("gzip", zlib.compress(PAYLOAD)),  # zlib data labelled gzip: auto-detected
        ("gzip", gzip.compress(PAYLOAD[:700]) + gzip.compress(PAYLOAD[700:])),  # two members
        ("gzip", gzip.compress(PAYLOAD) + b"\0\0\0"),  # zero padding after the stream
        ("identity", PAYLOAD),
        ("", PAYLOAD),
    ],
)
def test_decompress(coding: str, body: bytes) -> None:
    assert compression.decompress(body, coding, 1 << 20) == PAYLOAD


def test_decompress_raw_deflate_of_every_level() -> None:
    for level in range(10):
        deflater = zlib.compressobj(level, zlib.DEFLATED, -zlib.MAX_WBITS)
        raw = deflater.compress(PAYLOAD) + deflater.flush()
        assert compression.decompress(raw, "deflate", 1 << 20) == PAYLOAD


@pytest.mark.parametrize("coding", ["br", "compress", "zstd", "gzip, br"])
def test_unsupported_coding(coding: str) -> None:
    with pytest.raises(compression.UnsupportedEncoding, match="unsupported Content-Encoding"):
        compression.decompress(PAYLOAD, coding, 1 << 20)


@pytest.mark.parametrize(
    ("coding", "body", "message"),
    [
        ("gzip", b"not gzip at all", "corrupt gzip"),
        ("gzip", gzip.compress(PAYLOAD)[:-10], "truncated"),
        ("gzip", gzip.compress(PAYLOAD)[:-4] + b"\0\0\0\0", "corrupt gzip"),  # bad length
        ("gzip", b"", "truncated"),
        ("deflate", b"\x78\x9c garbage", "corrupt deflate"),
        ("deflate", b"\xff\xff\xff\xff", "corrupt deflate"),
        ("gzip", gzip.compress(PAYLOAD) + b"trailing junk", "trailing data"),
    ],
)
def test_corrupt_streams(coding: str, body: bytes, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        compression.decompress(body, coding, 1 << 20)


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_bomb_is_refused_within_the_limit(coding: str) -> None:
    zeros = b"\0" * (10 << 20)
    bomb = gzip.compress(zeros) if coding == "gzip" else zlib.compress(zeros)
    assert len(bomb) < 20_000
    with pytest.raises(PayloadTooLarge, match="exceeds the limit of 1048576 bytes"):
        compression.decompress(bomb, coding, 1 << 20)
    # multi-member: the limit holds over all members together
    half = gzip.compress(b"\0" * 600_000)
    with pytest.raises(PayloadTooLarge):
        compression.decompress(half + half, "gzip", 1 << 20)


def test_limit_is_inclusive() -> None:
    exact = b"a" * 1000
    assert compression.decompress(gzip.compress(exact), "gzip", 1000) == exact
    with pytest.raises(PayloadTooLarge):
        compression.decompress(gzip.compress(exact), "gzip", 999)


@pytest.mark.parametrize(
    ("header", "chosen"),
    [
        ("gzip", "gzip"),
        ("deflate", "deflate"),
        ("identity", None),
        ("br", None),
        ("*", None),
        ("", None),
        ("gzip, deflate", "gzip"),  # tie: the earlier one
        ("deflate, gzip", "deflate"),
        ("deflate;q=0.5, gzip;q=0.8", "gzip"),
        ("gzip;q=0.5, deflate;q=0.5", "gzip"),
        ("identity, gzip", None),  # tie with identity listed first
        ("identity;q=0.5, gzip", "gzip"),
        ("gzip;q=0.2, identity;q=0.9", None),
        ("gzip;q=0, deflate;q=0", None),
        ("br;q=1.0, deflate;q=0.1", "deflate"),
        ("GZip ; Q=0.7 , deflate;q=0.6", "gzip"),
        ("gzip;level=1;q=0.3, deflate;q=0.4", "deflate"),
        ("gzip;q=abc, deflate;q=0.1", "deflate"),
        ("gzip;q=2, deflate;q=0.1", "deflate"),
        ("x-gzip", "gzip"),
    ],
)
def test_accept_encoding_choice(header: str, chosen: str | None) -> None:
    assert compression.choose(header) == chosen


@pytest.mark.parametrize("coding", ["gzip", "deflate"])
def test_compress_round_trip(coding: str) -> None:
    packed = compression.compress(PAYLOAD, coding)
    assert len(packed) < len(PAYLOAD)
    assert compression.decompress(packed, coding, 1 << 20) == PAYLOAD
    if coding == "deflate":
        assert zlib.decompress(packed) == PAYLOAD  # zlib-wrapped, what clients expect


# -- classification -----------------------------------------------------------------------------


def test_classify_float_unbatched() -> None:
    scores = np.array([0.1, 3.3, 2.0, -1.0], dtype=np.float32)
    out = classification.classify(scores, 2)
    assert out.shape == (2,)
    assert out.tolist() == [b"3.300000:1", b"2.000000:2"]


def test_classify_integers_are_plain() -> None:
    out = classification.classify(np.array([3, 10, 7], dtype=np.int64), 3)
    assert out.tolist() == [b"10:1", b"7:2", b"3:0"]
    big = np.array([2**64 - 1, 5], dtype=np.uint64)
    assert classification.classify(big, 1).tolist() == [b"18446744073709551615:0"]
    small = np.array([-128, 127], dtype=np.int8)
    assert classification.classify(small, 2).tolist() == [b"127:1", b"-128:0"]


def test_classify_labels_and_missing_labels() -> None:
    scores = np.array([0.2, 0.5, 0.3, 0.9], dtype=np.float64)
    out = classification.classify(scores, 4, ["cat", "dog", "", "bird"][:3])
    assert out.tolist() == [b"0.900000:3", b"0.500000:1:dog", b"0.300000:2", b"0.200000:0:cat"]


def test_classify_batched() -> None:
    scores = np.array([[[1.0, 4.0], [2.0, 3.0]], [[9.0, 0.0], [0.0, 8.0]]], dtype=np.float32)
    out = classification.classify(scores, 3, ["a", "b", "c", "d"], batched=True)
    assert out.shape == (2, 3)
    assert out.tolist() == [
        [b"4.000000:1:b", b"3.000000:3:d", b"2.000000:2:c"],
        [b"9.000000:0:a", b"8.000000:3:d", b"0.000000:1:b"],
    ]
    # the same array unbatched: one ranking over all 8 elements
    assert classification.classify(scores, 1).tolist() == [b"9.000000:4"]


def test_classify_k_above_elements_and_empty_batch() -> None:
    out = classification.classify(np.array([[1, 2]], dtype=np.int32), 10, batched=True)
    assert out.shape == (1, 2)
    empty = classification.classify(np.empty((0, 5), dtype=np.float32), 2, batched=True)
    assert empty.shape == (0, 2)


def test_classify_ties_keep_index_order_and_nan_last() -> None:
    out = classification.classify(np.array([1.0, 2.0, 1.0, 2.0], dtype=np.float64), 4)
    assert out.tolist() == [b"2.000000:1", b"2.000000:3", b"1.000000:0", b"1.000000:2"]
    out = classification.classify(np.array([np.nan, 0.5, -np.inf], dtype=np.float32), 3)
    assert out.tolist()[0] == b"0.500000:1"
    assert {v.split(b":")[1] for v in out.tolist()[1:]} == {b"0", b"2"}


def test_classify_six_decimals_like_std_to_string() -> None:
    values = np.array([1e-7, 123456.789, 1e20], dtype=np.float64)
    assert classification.classify(values, 3).tolist() == [
        b"100000000000000000000.000000:2",
        b"123456.789000:1",
        b"0.000000:0",
    ]


@pytest.mark.parametrize(
    "array",
    [
        np.array([0.5], dtype=np.float16),
        np.array([0.5], dtype=ml_dtypes.bfloat16),
        np.array([True]),
        np.array([b"x"], dtype=object),
    ],
)
def test_classify_refuses_non_numeric(array: np.ndarray) -> None:
    with pytest.raises(InvalidArgument, match="classification does not support"):
        classification.classify(array, 1, name="OUT")


@pytest.mark.parametrize("value", [-1, 1.5, "3", True, 2.0])
def test_classification_count_validation(value: Any) -> None:
    with pytest.raises(InvalidArgument, match="'classification' must be a non-negative integer"):
        classification.parse_count("OUT", value)


def test_apply_zero_means_no_classification() -> None:
    array = np.array([1.0, 2.0])
    assert classification.apply("OUT", array, 0, None, batched=False) is array
    assert classification.apply("OUT", array, 1, None, batched=False).tolist() == [b"2.000000:1"]
