"""numpy in: the arrays a caller passes, checked and given their protocol datatype."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np

from oipserve.errors import InvalidArgument
from oipserve.protocol.datatypes import datatype_of

Inputs: TypeAlias = Mapping[str, Any]
"""Input name → array (anything ``np.asarray`` takes; ``str`` / ``bytes`` arrays are ``BYTES``)."""
Outputs: TypeAlias = Sequence[str] | None
"""The outputs to return; ``None``: every output of the model."""


@dataclass(frozen=True, slots=True)
class Tensor:
    name: str
    datatype: str
    array: np.ndarray

    @property
    def shape(self) -> list[int]:
        return list(self.array.shape)


def tensors(inputs: Inputs) -> list[Tensor]:
    if not inputs:
        raise InvalidArgument("an inference request needs at least one input")
    out: list[Tensor] = []
    for name, value in inputs.items():
        array = value if isinstance(value, np.ndarray) else np.asarray(value)
        if array.dtype.kind == "U":
            array = np.vectorize(str.encode, otypes=[object])(array) if array.size else array
        elif array.dtype.kind == "S":
            array = array.astype(object)
        elif array.dtype.kind == "O":
            bad = next((v for v in array.ravel() if not isinstance(v, bytes | str)), None)
            if bad is not None:
                raise InvalidArgument(
                    f"input '{name}': an object array may hold only str or bytes, not "
                    f"{type(bad).__name__}"
                )
        try:
            datatype = datatype_of(array)
        except InvalidArgument as exc:
            raise InvalidArgument(f"input '{name}': {exc}") from None
        out.append(Tensor(name, datatype, array))
    return out
