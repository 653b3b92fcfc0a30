"""Raw tensor bytes ↔ numpy arrays (PROTOCOL.md §1.1 binary layout).

Shared by the REST binary tensor data extension and gRPC ``raw_input_contents`` /
``raw_output_contents``. Fixed-size datatypes become arrays with ``np.frombuffer`` (no copy);
``BYTES`` elements are 4-byte little-endian length prefixed.
"""

from __future__ import annotations

import struct

import numpy as np

from oipserve.errors import InvalidArgument
from oipserve.protocol.datatypes import dtype_of
from oipserve.protocol.tensor import element_count

_LENGTH = struct.Struct("<I")


def array_from_raw(
    name: str, datatype: str, shape: tuple[int, ...], buffer: bytes | memoryview
) -> np.ndarray:
    """Interpret ``buffer`` as a tensor of ``shape``; its size must match exactly."""
    count = element_count(name, shape, datatype)
    if datatype == "BYTES":
        return _bytes_from_raw(name, shape, count, memoryview(buffer))
    dtype = dtype_of(datatype)
    expected = count * dtype.itemsize
    if len(buffer) != expected:
        raise InvalidArgument(
            f"input '{name}': {len(buffer)} bytes of data do not match shape {list(shape)} "
            f"of {datatype} ({expected} bytes expected)"
        )
    return np.frombuffer(buffer, dtype=dtype).reshape(shape)


def _bytes_from_raw(name: str, shape: tuple[int, ...], count: int, view: memoryview) -> np.ndarray:
    size = len(view)
    if count * 4 > size:
        # checked before allocating: every element needs at least its 4-byte length
        raise InvalidArgument(
            f"input '{name}': {size} bytes cannot hold {count} BYTES elements "
            f"(shape {list(shape)}; each needs a 4-byte length prefix)"
        )
    out = np.empty(count, dtype=object)
    offset = 0
    for i in range(count):
        if offset + 4 > size:
            raise InvalidArgument(
                f"input '{name}': BYTES data ends after {i} of {count} elements "
                f"(shape {list(shape)})"
            )
        (length,) = _LENGTH.unpack_from(view, offset)
        offset += 4
        if offset + length > size:
            raise InvalidArgument(
                f"input '{name}': BYTES element {i} declares {length} bytes but only "
                f"{size - offset} remain"
            )
        out[i] = bytes(view[offset : offset + length])
        offset += length
    if offset != size:
        raise InvalidArgument(
            f"input '{name}': {size - offset} bytes left over after {count} BYTES elements "
            f"(shape {list(shape)})"
        )
    return out.reshape(shape)


def array_to_raw(array: np.ndarray) -> bytes | memoryview:
    """The raw little-endian bytes of an array (BYTES: length-prefixed elements)."""
    if array.dtype.kind in "OSU":
        return bytes_to_raw(array)
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    return array.reshape(-1).view(np.uint8).data if array.size else b""


def bytes_to_raw(array: np.ndarray) -> bytes:
    parts: list[bytes] = []
    for item in array.ravel():
        if isinstance(item, bytes):
            data = item
        elif isinstance(item, bytearray | memoryview):
            data = bytes(item)
        else:
            data = str(item).encode()
        parts.append(_LENGTH.pack(len(data)))
        parts.append(data)
    return b"".join(parts)


def raw_size(array: np.ndarray) -> int:
    """Byte size of :func:`array_to_raw` without building it for fixed-size datatypes."""
    if array.dtype.kind in "OSU":
        return len(bytes_to_raw(array))
    return int(array.nbytes)
