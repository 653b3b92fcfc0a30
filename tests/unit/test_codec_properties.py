"""Property tests of the JSON and binary codecs (issue 13): tensors round-trip exactly, and
arbitrary bytes raise only the protocol's own errors (an OIPServeError a transport renders as 400
or 413), never anything else."""

from __future__ import annotations

import contextlib
import json
from typing import Any, Literal

import numpy as np
import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from oipserve.errors import OIPServeError
from oipserve.protocol import binary, codec
from oipserve.protocol.datatypes import dtype_of

NUMERIC = ["BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
           "FP16", "FP32", "FP64"]  # fmt: skip
SHAPES = hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=5)
PROFILE = settings(max_examples=150, deadline=None, database=None)


@st.composite
def tensors(draw: Any) -> tuple[str, np.ndarray]:
    datatype = draw(st.sampled_from(NUMERIC))
    dtype = dtype_of(datatype)
    elements = None
    if dtype.kind == "f":
        width: Literal[16, 32, 64] = (
            16 if dtype.itemsize == 2 else 32 if dtype.itemsize == 4 else 64
        )
        elements = st.floats(allow_nan=False, allow_infinity=False, width=width)
    array = draw(hnp.arrays(dtype, draw(SHAPES), elements=elements))
    return datatype, array


@PROFILE
@given(tensors())
def test_binary_round_trip(tensor: tuple[str, np.ndarray]) -> None:
    datatype, array = tensor
    raw = bytes(binary.array_to_raw(array))
    back = binary.array_from_raw("x", datatype, array.shape, raw)
    assert back.dtype == array.dtype
    np.testing.assert_array_equal(back, array)


@PROFILE
@given(st.lists(st.binary(max_size=20), max_size=12))
def test_bytes_round_trip(items: list[bytes]) -> None:
    array = np.array([*items, b""], dtype=object)[: len(items)]
    raw = binary.bytes_to_raw(array)
    back = binary.array_from_raw("x", "BYTES", array.shape, raw)
    assert list(back) == items


@PROFILE
@given(tensors())
def test_json_round_trip(tensor: tuple[str, np.ndarray]) -> None:
    datatype, array = tensor
    body = orjson.dumps(
        {
            "inputs": [
                {"name": "x", "shape": list(array.shape), "datatype": datatype,
                 "data": array.tolist()}
            ]
        }
    )  # fmt: skip
    request = codec.decode_infer_request(body, "m")
    (decoded,) = request.inputs
    assert decoded.datatype == datatype
    assert tuple(decoded.shape) == array.shape
    np.testing.assert_array_equal(np.asarray(decoded.data).astype(array.dtype), array)


@PROFILE
@given(st.binary(max_size=512), st.one_of(st.none(), st.integers(min_value=0, max_value=512)))
def test_arbitrary_bytes_raise_only_protocol_errors(body: bytes, header: int | None) -> None:
    try:
        header_length = codec.parse_header_length(
            None if header is None else str(header), len(body)
        )
        codec.decode_infer_request(body, "m", "", header_length)
    except OIPServeError:
        pass


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=30,
)


@PROFILE
@given(
    st.fixed_dictionaries(
        {},
        optional={
            "id": JSON_VALUES,
            "parameters": JSON_VALUES,
            "outputs": JSON_VALUES,
            "inputs": st.lists(
                st.fixed_dictionaries(
                    {},
                    optional={
                        "name": JSON_VALUES,
                        "shape": JSON_VALUES | st.lists(st.integers(-3, 10), max_size=3),
                        "datatype": JSON_VALUES | st.sampled_from([*NUMERIC, "BYTES", "BF16"]),
                        "data": JSON_VALUES,
                        "parameters": JSON_VALUES,
                    },
                ),
                max_size=3,
            ),
        },
    )
)
def test_arbitrary_json_requests_raise_only_protocol_errors(request: dict[str, Any]) -> None:
    with contextlib.suppress(OIPServeError):
        codec.decode_infer_request(json.dumps(request).encode(), "m")


@PROFILE
@given(st.sampled_from([*NUMERIC, "BYTES"]), SHAPES, st.binary(max_size=256))
def test_arbitrary_raw_bytes_raise_only_protocol_errors(
    datatype: str, shape: tuple[int, ...], raw: bytes
) -> None:
    try:
        array = binary.array_from_raw("x", datatype, shape, raw)
    except OIPServeError:
        return
    assert array.shape == shape
