"""What the client returns: plain values, numpy arrays for tensors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import msgspec
import numpy as np

from oipserve.model import Parameter


class TensorMetadata(msgspec.Struct, frozen=True):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(msgspec.Struct, frozen=True):
    """A model's metadata; fields a server leaves out (MLServer omits some) are empty."""

    name: str
    versions: list[str] = []
    platform: str = ""
    inputs: list[TensorMetadata] = []
    outputs: list[TensorMetadata] = []


class ServerMetadata(msgspec.Struct, frozen=True):
    name: str
    version: str = ""
    extensions: list[str] = []


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of the repository index: ``version``, ``state`` and ``reason`` when known."""

    name: str
    version: str = ""
    state: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True, eq=False)
class InferResult(Mapping[str, np.ndarray]):
    """An inference response: a read-only mapping from output name to numpy array.

    ``BYTES`` outputs are ``object`` arrays of :class:`bytes`, whichever encoding carried them.
    """

    model_name: str
    model_version: str
    outputs: dict[str, np.ndarray]
    datatypes: dict[str, str] = field(default_factory=dict)
    id: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.outputs[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.outputs)

    def __len__(self) -> int:
        return len(self.outputs)

    def as_numpy(self, name: str) -> np.ndarray:
        """tritonclient's spelling of ``result[name]``."""
        return self.outputs[name]
