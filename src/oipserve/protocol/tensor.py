"""Tensor data in JSON (``data``) ↔ numpy arrays, with every check the protocol needs.

Numeric data is converted by one ``np.asarray`` call in C; the element count implied by the shape is
checked against the data before anything shaped like the request is allocated, so a huge declared
shape with tiny data costs nothing.
"""

from __future__ import annotations

import json
from typing import Any

import msgspec
import numpy as np
import orjson

from oipserve.errors import InvalidArgument, PayloadTooLarge
from oipserve.protocol.datatypes import BFLOAT16, INTEGER_DATATYPES, dtype_of

#: a tensor may not hold more elements than this (2**40: far beyond any body we accept)
MAX_ELEMENTS = 1 << 40
_MAX_NESTING = 100


_limits = {"elements": 1 << 24, "bytes": 64 * 1024 * 1024}
"""The server's tensor limits (``--max-tensor-elements``, ``--max-tensor-mb``), set once at
start-up by :func:`set_limits`; every decoder (JSON, binary, gRPC) counts through
:func:`element_count`."""


def set_limits(max_elements: int, max_bytes: int) -> None:
    """Set the largest input tensor accepted: elements, and bytes of a fixed-size datatype."""
    _limits["elements"] = max_elements
    _limits["bytes"] = max_bytes


def element_count(name: str, shape: tuple[int, ...] | list[int], datatype: str = "") -> int:
    """Product of ``shape``, refusing negative dims (400) and tensors over the server's limits
    (413 / ``RESOURCE_EXHAUSTED``): elements, and with ``datatype`` bytes too."""
    count = 1
    for dim in shape:
        if dim < 0:
            raise InvalidArgument(f"input '{name}': shape {list(shape)} has a negative dimension")
        count *= dim
    if count > MAX_ELEMENTS:
        raise InvalidArgument(f"input '{name}': shape {list(shape)} is too large")
    if count > _limits["elements"]:
        raise PayloadTooLarge(
            f"input '{name}': shape {list(shape)} holds {count} elements, over the limit of "
            f"{_limits['elements']} (raise it with --max-tensor-elements)"
        )
    if datatype and datatype != "BYTES" and count:
        size = count * dtype_of(datatype).itemsize
        if size > _limits["bytes"]:
            raise PayloadTooLarge(
                f"input '{name}': {size} bytes of {datatype}, over the limit of "
                f"{_limits['bytes']} bytes (raise it with --max-tensor-mb)"
            )
    return count


def _leaf_count(data: Any, depth: int = 0) -> int:
    if depth > _MAX_NESTING:
        raise InvalidArgument(f"'data' is nested deeper than {_MAX_NESTING} levels")
    if isinstance(data, list):
        return sum(_leaf_count(item, depth + 1) for item in data)
    return 1


def _flatten(data: list[Any], out: list[Any], depth: int = 0) -> None:
    if depth > _MAX_NESTING:
        raise InvalidArgument(f"'data' is nested deeper than {_MAX_NESTING} levels")
    for item in data:
        if isinstance(item, list):
            _flatten(item, out, depth + 1)
        else:
            out.append(item)


def _count_mismatch(name: str, shape: tuple[int, ...], expected: int, got: int) -> InvalidArgument:
    return InvalidArgument(
        f"input '{name}': shape {list(shape)} needs {expected} elements but 'data' holds {got}"
    )


def array_from_json(name: str, datatype: str, shape: tuple[int, ...], data: Any) -> np.ndarray:
    """Turn a JSON ``data`` value (flat or nested list) into an array of ``shape``."""
    dtype = dtype_of(datatype)
    expected = element_count(name, shape, datatype)
    if not isinstance(data, list):
        data = [data]
    if len(data) > expected:
        # more items than elements: too many, unless they are empty lists (shape [1, 0] is
        # [[]]; found by tests/unit/test_codec_properties.py)
        leaves = _leaf_count(data)
        if leaves != expected:
            raise _count_mismatch(name, shape, expected, leaves)
    if datatype == "BYTES":
        return _bytes_from_json(name, shape, expected, data)
    if expected == 0:
        if _leaf_count(data) != 0:
            raise _count_mismatch(name, shape, expected, _leaf_count(data))
        return np.empty(shape, dtype=dtype)
    try:
        array = np.asarray(data)
    except (ValueError, OverflowError):
        # ragged nesting (or an integer beyond 64 bits)
        flat: list[Any] = []
        _flatten(data, flat)
        if len(flat) != expected:
            raise _count_mismatch(name, shape, expected, len(flat)) from None
        try:
            array = np.asarray(flat)
        except OverflowError:
            raise _type_error(name, datatype, "an integer out of range") from None
    if array.size != expected:
        raise _count_mismatch(name, shape, expected, array.size)
    if datatype in INTEGER_DATATYPES and array.dtype.kind in "fO":
        # numpy falls back to float64 / object when ints span beyond int64 (UINT64 data)
        array = _exact_integers(name, datatype, data, dtype)
    return _coerce(name, datatype, array, dtype).reshape(shape)


def _exact_integers(name: str, datatype: str, data: list[Any], dtype: np.dtype[Any]) -> np.ndarray:
    flat: list[Any] = []
    _flatten(data, flat)
    if not all(type(v) is int for v in flat):
        raise _type_error(name, datatype, "non-integer numbers")
    info = np.iinfo(dtype)
    low, high = min(flat), max(flat)
    if low < info.min or high > info.max:
        bad = low if low < info.min else high
        raise _type_error(name, datatype, f"the value {bad} (range {info.min}..{info.max})")
    return np.array(flat, dtype=dtype)


def _type_error(name: str, datatype: str, what: str) -> InvalidArgument:
    return InvalidArgument(f"input '{name}': datatype {datatype} cannot hold {what}")


def _coerce(name: str, datatype: str, array: np.ndarray, dtype: np.dtype[Any]) -> np.ndarray:
    kind = array.dtype.kind
    if datatype == "BOOL":
        if kind != "b":
            raise _type_error(name, datatype, _describe(kind))
        return array
    if kind not in "iuf":
        raise _type_error(name, datatype, _describe(kind))
    if datatype in INTEGER_DATATYPES:
        if kind == "f":
            raise _type_error(name, datatype, "non-integer numbers")
        info = np.iinfo(dtype)
        low, high = array.min(), array.max()
        if low < info.min or high > info.max:
            bad = low if low < info.min else high
            raise _type_error(name, datatype, f"the value {bad} (range {info.min}..{info.max})")
        return array.astype(dtype, copy=False)
    if dtype == BFLOAT16:
        return array.astype(np.float32).astype(BFLOAT16)
    return array.astype(dtype, copy=False)


def _describe(kind: str) -> str:
    return {
        "b": "booleans",
        "U": "strings",
        "S": "strings",
        "O": "mixed or non-numeric values",
        "f": "non-integer numbers",
        "i": "integers",
        "u": "integers",
    }.get(kind, "these values")


def _bytes_from_json(
    name: str, shape: tuple[int, ...], expected: int, data: list[Any]
) -> np.ndarray:
    flat: list[Any] = []
    _flatten(data, flat)
    if len(flat) != expected:
        raise _count_mismatch(name, shape, expected, len(flat))
    array = np.empty(expected, dtype=object)
    for i, item in enumerate(flat):
        if isinstance(item, str):
            array[i] = item.encode()
        else:
            raise _type_error(name, "BYTES", f"{type(item).__name__} values (strings expected)")
    return array.reshape(shape)


def array_to_json(name: str, array: np.ndarray) -> list[Any] | msgspec.Raw:
    """The array's elements as a flat JSON array (row-major), as Triton emits: a list of strings
    for BYTES, encoded JSON (``msgspec.Raw``) for every numeric datatype."""
    kind = array.dtype.kind
    if kind in "OSU":
        out: list[Any] = []
        for item in array.ravel():
            if isinstance(item, bytes | bytearray | memoryview):
                try:
                    out.append(bytes(item).decode())
                except UnicodeDecodeError:
                    raise InvalidArgument(
                        f"output '{name}' holds bytes that are not UTF-8; request it as binary "
                        "data (binary_data: true)"
                    ) from None
            else:
                out.append(str(item))
        return out
    if array.dtype == BFLOAT16:
        array = array.astype(np.float32)
    if kind == "f" and not np.isfinite(array).all():
        # orjson would write null; write the bare NaN / Infinity tokens Triton writes
        return msgspec.Raw(json.dumps(array.ravel().tolist()).encode())
    # orjson writes the numbers straight from the array (floats in their own shortest form:
    # a float32 prints as 0.1, not 0.10000000149011612), with no Python object per element
    flat = np.ascontiguousarray(array.reshape(-1), dtype=array.dtype.newbyteorder("="))
    return msgspec.Raw(orjson.dumps(flat, option=orjson.OPT_SERIALIZE_NUMPY))
