"""JSON ``data`` → numpy: every datatype, flat and nested, and every way data can be wrong."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import pytest

from oipserve.errors import InvalidArgument, PayloadTooLarge
from oipserve.protocol.datatypes import BFLOAT16, DTYPES, datatype_of, from_config_name
from oipserve.protocol.tensor import array_from_json, array_to_json, element_count, set_limits


@pytest.mark.parametrize(
    ("datatype", "data", "expected"),
    [
        ("BOOL", [True, False], np.array([True, False])),
        ("UINT8", [0, 255], np.array([0, 255], dtype=np.uint8)),
        ("UINT16", [0, 65535], np.array([0, 65535], dtype=np.uint16)),
        ("UINT32", [0, 2**32 - 1], np.array([0, 2**32 - 1], dtype=np.uint32)),
        ("UINT64", [0, 2**64 - 1], np.array([0, 2**64 - 1], dtype=np.uint64)),
        ("INT8", [-128, 127], np.array([-128, 127], dtype=np.int8)),
        ("INT16", [-(2**15), 2**15 - 1], np.array([-(2**15), 2**15 - 1], dtype=np.int16)),
        ("INT32", [-(2**31), 2**31 - 1], np.array([-(2**31), 2**31 - 1], dtype=np.int32)),
        ("INT64", [-(2**63), 2**63 - 1], np.array([-(2**63), 2**63 - 1], dtype=np.int64)),
        ("FP16", [0.5, 2], np.array([0.5, 2], dtype=np.float16)),
        ("FP32", [0.5, 2], np.array([0.5, 2], dtype=np.float32)),
        ("FP64", [0.1, -3], np.array([0.1, -3], dtype=np.float64)),
        ("BF16", [0.5, 2.0], np.array([0.5, 2.0], dtype=BFLOAT16)),
        ("BYTES", ["a", "é"], np.array([b"a", "é".encode()], dtype=object)),
    ],
)
def test_every_datatype(datatype: str, data: list[Any], expected: np.ndarray) -> None:
    array = array_from_json("x", datatype, (2,), data)
    assert array.dtype == DTYPES[datatype]
    assert array.shape == (2,)
    np.testing.assert_array_equal(array, expected)
    assert datatype_of(array) == datatype


def test_nested_and_flat_give_the_same_array() -> None:
    flat = array_from_json("x", "INT32", (2, 3), [1, 2, 3, 4, 5, 6])
    nested = array_from_json("x", "INT32", (2, 3), [[1, 2, 3], [4, 5, 6]])
    np.testing.assert_array_equal(flat, nested)
    assert nested.shape == (2, 3)
    # Triton counts leaves only; nesting need not follow the shape
    odd = array_from_json("x", "INT32", (2, 3), [[1, 2], [3, 4], [5, 6]])
    np.testing.assert_array_equal(odd, flat)
    ragged = array_from_json("x", "INT32", (2, 3), [[1], [2, 3, 4], [5, 6]])
    np.testing.assert_array_equal(ragged, flat)


def test_empty_tensor() -> None:
    array = array_from_json("x", "FP32", (0, 4), [])
    assert array.shape == (0, 4)
    assert array.dtype == np.float32


@pytest.mark.parametrize(
    ("datatype", "shape", "data", "message"),
    [
        ("FP32", (2,), ["a", "b"], "cannot hold strings"),
        ("UINT8", (2,), [1, 300], "300"),
        ("UINT8", (2,), [1, -1], "-1"),
        ("INT32", (2,), [1, 1.5], "non-integer"),
        ("INT64", (1,), [2**64], "18446744073709551616"),
        ("BOOL", (2,), [1, 0], "cannot hold integers"),
        ("INT32", (2,), [True, False], "cannot hold booleans"),
        ("BYTES", (2,), ["a", 1], "strings expected"),
        ("FP32", (2,), [1.0, None], "cannot hold"),
        ("FP32", (3,), [1.0, 2.0], "needs 3 elements but 'data' holds 2"),
        ("FP32", (1,), [1.0, 2.0], "needs 1 elements but 'data' holds 2"),
        ("FP32", (2, 2), [[1.0, 2.0], [3.0]], "holds 3"),
        ("FP32", (0,), [1.0], "holds 1"),
        ("FP32", (2, -1), [1.0], "negative"),
        ("FP32", (2**30, 2**30, 2**30), [1.0], "too large"),
        ("FLOAT", (1,), [1.0], "unknown datatype"),
    ],
)
def test_bad_data(datatype: str, shape: tuple[int, ...], data: Any, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        array_from_json("x", datatype, shape, data)


def test_huge_shape_with_tiny_data_allocates_nothing() -> None:
    # 2**39 float32 elements would be 2 TiB; the count check must come first: over the tensor
    # limit it is 413, under it a count mismatch
    with pytest.raises(PayloadTooLarge, match="--max-tensor-elements"):
        array_from_json("x", "FP32", (2**39,), [1.0])
    with pytest.raises(InvalidArgument, match="needs 8388608 elements"):
        array_from_json("x", "FP32", (2**23,), [1.0])


def test_tensor_limits() -> None:
    set_limits(100, 400)
    try:
        assert element_count("x", (10, 10), "FP32") == 100
        with pytest.raises(PayloadTooLarge, match="101 elements"):
            element_count("x", (101,))
        with pytest.raises(PayloadTooLarge, match="--max-tensor-mb"):
            element_count("x", (60,), "FP64")
        assert element_count("x", (100,), "BYTES") == 100  # variable size: elements only
    finally:
        set_limits(1 << 24, 64 * 1024 * 1024)


def test_deep_nesting_is_refused() -> None:
    data: Any = [1.0]
    for _ in range(150):
        data = [data]
    with pytest.raises(InvalidArgument, match="nested deeper"):
        array_from_json("x", "FP32", (2,), [data, 2.0])


def test_element_count() -> None:
    assert element_count("x", (2, 3, 4)) == 24
    assert element_count("x", ()) == 1
    assert element_count("x", (5, 0)) == 0


def test_to_json() -> None:
    def numbers(array: np.ndarray) -> Any:
        encoded = array_to_json("y", array)
        assert isinstance(encoded, msgspec.Raw)
        return json.loads(bytes(encoded))

    assert numbers(np.array([[1, 2], [3, 4]], dtype=np.int8)) == [1, 2, 3, 4]
    assert array_to_json("y", np.array([b"a", b"b"], dtype=object)) == ["a", "b"]
    assert numbers(np.array([0.5], dtype=np.float16)) == [0.5]
    assert numbers(np.array([1.5], dtype=BFLOAT16)) == [1.5]
    assert numbers(np.array([0.1], dtype=np.float32)) == [0.1]  # float32's own shortest form
    assert numbers(np.array([True, False])) == [True, False]
    assert numbers(np.array([2**64 - 1], dtype=np.uint64)) == [2**64 - 1]
    assert numbers(np.arange(6, dtype=">i4").reshape(2, 3).T) == [0, 3, 1, 4, 2, 5]
    assert numbers(np.zeros((0, 3), dtype=np.float32)) == []
    raw = array_to_json("y", np.array([1.0, np.nan, np.inf], dtype=np.float32))
    assert not isinstance(raw, list)
    assert bytes(raw) == b"[1.0, NaN, Infinity]"
    with pytest.raises(InvalidArgument, match="not UTF-8"):
        array_to_json("y", np.array([b"\xff"], dtype=object))


def test_config_datatype_names() -> None:
    assert from_config_name("TYPE_FP32") == "FP32"
    assert from_config_name("FP32") == "FP32"
    assert from_config_name("TYPE_STRING") == "BYTES"
    with pytest.raises(InvalidArgument):
        from_config_name("TYPE_FLOAT")
