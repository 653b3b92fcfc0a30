"""The classification extension (PROTOCOL.md §3.4): an output replaced by its top-k entries.

A requested output with the parameter ``"classification": K`` comes back as a ``BYTES`` tensor of
``"<value>:<index>[:<label>]"`` strings, sorted by value descending, shape ``[B, k]`` when the model
batches and ``[k]`` otherwise, ``k = min(K, elements per batch item)``. Values are formatted as
Triton formats them (C++ ``std::to_string``): floats with six decimals, integers plain. ``K = 0``
asks for no classification (the output is returned as it is), as in Triton.

Everything here is a pure function of arrays, so every transport can share it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from oipserve.errors import InvalidArgument
from oipserve.model import Parameter
from oipserve.protocol.datatypes import FLOAT_DATATYPES, INTEGER_DATATYPES, datatype_of

PARAMETER = "classification"

#: datatypes whose values can be ranked (Triton: every integer type, FP32, FP64)
CLASSIFIABLE = INTEGER_DATATYPES | (FLOAT_DATATYPES - {"FP16", "BF16"})


def parse_count(output_name: str, value: Parameter) -> int:
    """The ``classification`` parameter of an output: a non-negative integer K."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(
            f"output '{output_name}': 'classification' must be a non-negative integer, "
            f"got {value!r}"
        )
    if value < 0:
        raise InvalidArgument(
            f"output '{output_name}': 'classification' must be a non-negative integer, got {value}"
        )
    return value


def classify(
    array: np.ndarray,
    k: int,
    labels: Sequence[str] | None = None,
    *,
    batched: bool = False,
    name: str = "",
) -> np.ndarray:
    """The top-``k`` entries of ``array`` as a ``BYTES`` (object of :class:`bytes`) array.

    ``batched``: the first dimension is the batch, and each batch item is classified on its own.
    """
    if k < 0:
        raise InvalidArgument(f"output '{name}': classification count must be non-negative")
    datatype = datatype_of(array)
    if datatype not in CLASSIFIABLE:
        raise InvalidArgument(
            f"output '{name}' has datatype {datatype}, which classification does not support "
            f"(it needs one of {', '.join(sorted(CLASSIFIABLE))})"
        )
    if batched and array.ndim >= 1:
        batch = array.shape[0]
        per_item = int(np.prod(array.shape[1:], dtype=np.int64))
        rows = array.reshape(batch, per_item)
    else:
        per_item = int(array.size)
        rows = array.reshape(1, per_item)
    count = min(k, per_item)
    order = _descending(rows)[:, :count]
    top = np.take_along_axis(rows, order, axis=1)
    is_float = array.dtype.kind == "f"
    names = labels or ()
    out = np.empty(order.shape, dtype=object)
    for r in range(order.shape[0]):
        for c in range(count):
            index = int(order[r, c])
            value = float(top[r, c]) if is_float else int(top[r, c])
            text = f"{value:f}:{index}" if is_float else f"{value}:{index}"
            if index < len(names) and names[index]:
                text = f"{text}:{names[index]}"
            out[r, c] = text.encode()
    if batched and array.ndim >= 1:
        return out
    return out.reshape(count)


def _descending(rows: np.ndarray) -> np.ndarray:
    """Column indices sorting each row by value descending; ties keep index order, NaN last."""
    keys = rows
    if rows.dtype.kind == "f":
        keys = np.where(np.isnan(rows), -np.inf, rows)
    width = rows.shape[1]
    # a stable ascending sort of the reversed row, read backwards: descending, ties by index
    reversed_order = np.argsort(keys[:, ::-1], axis=1, kind="stable")[:, ::-1]
    result: np.ndarray = (width - 1) - reversed_order
    return result


def apply(
    output_name: str,
    array: np.ndarray,
    parameter: Parameter,
    labels: Sequence[str] | None,
    *,
    batched: bool,
) -> np.ndarray:
    """What the dataplane returns for an output requested with ``classification``."""
    k = parse_count(output_name, parameter)
    if k == 0:
        return array
    return classify(array, k, labels, batched=batched, name=output_name)
