"""Inputs from the command line: ``NAME=FILE`` (.npy, .json, .csv) or ``NAME=VALUE`` (a JSON or
plain literal), shaped and typed from the model's metadata; ``--example`` builds them all."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from oipserve.cli._remote import InputError
from oipserve.client import ModelMetadata, TensorMetadata
from oipserve.errors import InvalidArgument
from oipserve.protocol.datatypes import dtype_of

FILE_SUFFIXES = (".npy", ".json", ".csv")


def parse_inputs(specs: tuple[str, ...], metadata: ModelMetadata) -> dict[str, np.ndarray]:
    declared = {t.name: t for t in metadata.inputs}
    inputs: dict[str, np.ndarray] = {}
    for spec in specs:
        name, sep, value = spec.partition("=")
        if not sep or not name:
            raise InputError(f"--input {spec!r}: write NAME=FILE or NAME=VALUE")
        if name not in declared:
            known = ", ".join(declared) or "none"
            raise InputError(f"model '{metadata.name}' has no input '{name}' (its inputs: {known})")
        if name in inputs:
            raise InputError(f"input '{name}' is given twice")
        inputs[name] = shaped(declared[name], read_value(name, value))
    missing = [n for n in declared if n not in inputs]
    if missing and inputs:
        raise InputError(
            f"model '{metadata.name}' also needs input {', '.join(repr(m) for m in missing)} "
            "(give it with --input, or use --example)"
        )
    if not inputs:
        raise InputError("give the inputs with --input NAME=FILE|VALUE, or use --example")
    return inputs


def read_value(name: str, value: str) -> Any:
    path = Path(value)
    if path.suffix.lower() in FILE_SUFFIXES and path.is_file():
        return read_file(name, path)
    if path.suffix.lower() in FILE_SUFFIXES and not value.lstrip().startswith(("[", '"')):
        raise InputError(f"input '{name}': file {value} does not exist")
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string, for a BYTES input


def read_file(name: str, path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            if "allow_pickle" in str(exc):
                raise InputError(
                    f"input '{name}': {path} holds Python objects, which would need unpickling; "
                    "oipserve loads .npy files without pickles (save a numeric or string array)"
                ) from None
            raise InputError(f"input '{name}': {path} is not a valid .npy file: {exc}") from None
    if suffix == ".json":
        try:
            return json.loads(path.read_text())
        except ValueError as exc:
            raise InputError(f"input '{name}': {path} is not valid JSON: {exc}") from None
    return read_csv(name, path)


def read_csv(name: str, path: Path) -> list[list[str]]:
    """A row per batch element; every row must have as many values as the first."""
    with path.open(newline="") as handle:
        rows = [row for row in csv.reader(handle) if row]
    if not rows:
        raise InputError(f"input '{name}': {path} has no rows")
    width = len(rows[0])
    for number, row in enumerate(rows, start=1):
        if len(row) != width:
            raise InputError(
                f"input '{name}': {path} row {number} has {len(row)} values but row 1 has "
                f"{width} (CSV rows are batch elements and must all be the same length)"
            )
    return rows


def shaped(tensor: TensorMetadata, value: Any) -> np.ndarray:
    """``value`` as an array of the input's datatype; one missing leading (batch) dimension is
    added when the model declares a variable first dimension."""
    try:
        array = np.asarray(value)
        if tensor.datatype == "BYTES":
            flat = [v if isinstance(v, bytes) else str(v).encode() for v in array.ravel()]
            objects = np.empty(len(flat), dtype=object)
            objects[:] = flat
            array = objects.reshape(array.shape)
        else:
            array = array.astype(dtype_of(tensor.datatype))
    except (ValueError, TypeError, InvalidArgument) as exc:
        raise InputError(
            f"input '{tensor.name}': the values do not fit datatype {tensor.datatype}: {exc}"
        ) from None
    if tensor.shape and tensor.shape[0] == -1 and array.ndim == len(tensor.shape) - 1:
        array = array[np.newaxis]
    return array


def example_inputs(metadata: ModelMetadata) -> dict[str, np.ndarray]:
    """One example per input: a batch of one where the first dimension varies, every other
    variable dimension 1; numbers are ones, BYTES elements b"example"."""
    inputs: dict[str, np.ndarray] = {}
    for tensor in metadata.inputs:
        shape = tuple(1 if dim < 0 else dim for dim in tensor.shape)
        if tensor.datatype == "BYTES":
            array = np.full(shape, b"example", dtype=object)
        else:
            array = np.ones(shape, dtype=dtype_of(tensor.datatype))
        inputs[tensor.name] = array
    return inputs
