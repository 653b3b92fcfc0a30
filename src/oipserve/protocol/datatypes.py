"""The 14 tensor datatypes of the protocol and their numpy and model-config equivalents.

``BYTES`` tensors are numpy ``object`` arrays whose elements are :class:`bytes`; ``BF16``
tensors use ``ml_dtypes.bfloat16``. Raw (binary) layout is little-endian, C order, as
PROTOCOL.md §1.1 says.
"""

from __future__ import annotations

from typing import Final

import ml_dtypes
import numpy as np

from oipserve.errors import InvalidArgument

BFLOAT16: Final = np.dtype(ml_dtypes.bfloat16)

#: protocol datatype → numpy dtype (little-endian where it matters)
DTYPES: Final[dict[str, np.dtype[np.generic]]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype("<u1"),
    "UINT16": np.dtype("<u2"),
    "UINT32": np.dtype("<u4"),
    "UINT64": np.dtype("<u8"),
    "INT8": np.dtype("<i1"),
    "INT16": np.dtype("<i2"),
    "INT32": np.dtype("<i4"),
    "INT64": np.dtype("<i8"),
    "FP16": np.dtype("<f2"),
    "FP32": np.dtype("<f4"),
    "FP64": np.dtype("<f8"),
    "BF16": BFLOAT16,
    "BYTES": np.dtype(np.object_),
}

DATATYPES: Final = tuple(DTYPES)

#: model-config enum names (Triton's ``DataType``), by protocol datatype
CONFIG_NAMES: Final[dict[str, str]] = {
    "BOOL": "TYPE_BOOL",
    "UINT8": "TYPE_UINT8",
    "UINT16": "TYPE_UINT16",
    "UINT32": "TYPE_UINT32",
    "UINT64": "TYPE_UINT64",
    "INT8": "TYPE_INT8",
    "INT16": "TYPE_INT16",
    "INT32": "TYPE_INT32",
    "INT64": "TYPE_INT64",
    "FP16": "TYPE_FP16",
    "FP32": "TYPE_FP32",
    "FP64": "TYPE_FP64",
    "BYTES": "TYPE_STRING",
    "BF16": "TYPE_BF16",
}
_FROM_CONFIG_NAME: Final = {v: k for k, v in CONFIG_NAMES.items()}

#: model-config enum numbers (used by the gRPC ModelConfig message)
CONFIG_NUMBERS: Final[dict[str, int]] = {
    "BOOL": 1,
    "UINT8": 2,
    "UINT16": 3,
    "UINT32": 4,
    "UINT64": 5,
    "INT8": 6,
    "INT16": 7,
    "INT32": 8,
    "INT64": 9,
    "FP16": 10,
    "FP32": 11,
    "FP64": 12,
    "BYTES": 13,
    "BF16": 14,
}

INTEGER_DATATYPES: Final = frozenset(
    {"UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"}
)
FLOAT_DATATYPES: Final = frozenset({"FP16", "FP32", "FP64", "BF16"})
#: what a tabular framework converts to a float matrix itself: every datatype but BYTES and BF16
#: (numpy has no bfloat16; the frameworks refuse object arrays of bytes)
NUMERIC_DATATYPES: Final = frozenset({"BOOL", *INTEGER_DATATYPES, "FP16", "FP32", "FP64"})

_BY_DTYPE: Final = {dt: name for name, dt in DTYPES.items()}


def dtype_of(datatype: str) -> np.dtype[np.generic]:
    """The numpy dtype of a protocol datatype; :class:`InvalidArgument` if unknown."""
    try:
        return DTYPES[datatype]
    except KeyError:
        raise InvalidArgument(
            f"unknown datatype '{datatype}', expected one of {', '.join(DATATYPES)}"
        ) from None


def element_size(datatype: str) -> int:
    """Bytes per element; 0 for the variable-size ``BYTES``."""
    if datatype == "BYTES":
        return 0
    return dtype_of(datatype).itemsize


def datatype_of(array: np.ndarray) -> str:
    """The protocol datatype of a numpy array (``object`` and string arrays are ``BYTES``)."""
    dtype = array.dtype
    name = _BY_DTYPE.get(dtype)
    if name is not None:
        return name
    if dtype.kind in "OSU":
        return "BYTES"
    name = _BY_DTYPE.get(dtype.newbyteorder("<"))
    if name is not None:
        return name
    raise InvalidArgument(f"numpy dtype {dtype} has no protocol datatype")


def from_config_name(name: str) -> str:
    """``TYPE_FP32`` or ``FP32`` → ``FP32`` (``TYPE_STRING`` → ``BYTES``)."""
    upper = name.upper()
    if upper in _FROM_CONFIG_NAME:
        return _FROM_CONFIG_NAME[upper]
    if upper in DTYPES:
        return upper
    if upper == "STRING":
        return "BYTES"
    raise InvalidArgument(f"unknown data_type '{name}'")
