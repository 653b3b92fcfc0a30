"""Numeric JSON arrays straight into numpy: no Python float per element.

The request decoder hands each input's ``data`` over as its raw JSON text (``msgspec.Raw``, already
validated as JSON by msgspec). For a floating-point tensor whose text holds only numbers, commas,
brackets and whitespace, :func:`floats_from_json` deletes the brackets and whitespace (one
``bytes.translate``) and parses the comma-separated numbers with ``np.fromstring`` into float64 in
C, then the caller narrows to the tensor's dtype: the values a client sees are exactly those of the
general path (numbers parsed as doubles, then cast), several times faster for 20,000 numbers
(``docs/performance.md``).

Whenever the result could differ from the general path by a single bit it returns ``None`` and the
caller decodes the text the general way (``tensor.array_from_json``): anything that is not a number
(``true``, ``null``, strings), an empty nested list, nesting deeper than the general path accepts,
integers too large for a double to hold exactly (the general path keeps them exact or refuses
them), an integer ``-0`` (an integer zero has no sign), and numbers out of a double's range (the
general path refuses them).
"""

from __future__ import annotations

import re
import warnings
from typing import Final

import numpy as np

MAX_NESTING: Final = 100
"""Deeper nesting goes the general way, which enforces its own limit."""

_DELETE: Final = b" \t\n\r[]"
_NUMBER_BYTES: Final = b"0123456789+-.eE,"
_NOT_BRACKETS: Final = bytes(b for b in range(256) if b not in b"[]")
_EXACT_INTEGER_LIMIT: Final = float(1 << 53)
_INTEGER_MINUS_ZERO: Final = re.compile(rb"(?:^|,)-0(?:,|$)")


def floats_from_json(raw: bytes | memoryview) -> np.ndarray | None:
    """The numbers of a JSON number or (nested) array of numbers as a flat float64 array.

    ``None`` when the text holds anything else or when the result could differ from parsing each
    number as a Python value first (see the module docstring).
    """
    text = bytes(raw)
    if text.count(b"[") > MAX_NESTING and _depth(text) > MAX_NESTING:
        return None
    digits = text.translate(None, _DELETE)
    if not digits or digits.translate(None, _NUMBER_BYTES):
        return None  # an empty array, or something other than numbers
    if b",," in digits or digits[0] == 0x2C or digits[-1] == 0x2C:
        return None  # an empty nested list ("[1,[],2]")
    if b"-0" in digits and _INTEGER_MINUS_ZERO.search(digits):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a partial parse would warn: take the general way instead
        try:
            values = np.fromstring(digits, dtype=np.float64, sep=",")
        except (ValueError, DeprecationWarning):
            return None
    if values.size != digits.count(b",") + 1:
        return None
    largest = np.abs(values).max()
    if not largest < _EXACT_INTEGER_LIMIT:  # also catches inf and nan
        return None
    return values


def _depth(text: bytes) -> int:
    """The deepest nesting of brackets in ``text`` (valid JSON with no strings)."""
    brackets = np.frombuffer(text.translate(None, _NOT_BRACKETS), dtype=np.uint8)
    steps = np.where(brackets == ord("["), 1, -1)
    return int(np.cumsum(steps).max(initial=0))
