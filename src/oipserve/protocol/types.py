"""The protocol as data, shared by every transport.

Transports decode their wire format into these types and encode these types back; the
dataplane never sees JSON, HTTP or protobuf. Tensor payloads are numpy arrays from the moment
they are decoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import msgspec
import numpy as np

from oipserve.model import Parameter


@dataclass(slots=True)
class InputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    """Already shaped to ``shape`` with the datatype's dtype."""
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(slots=True)
class RequestedOutput:
    name: str
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceRequest:
    model_name: str
    model_version: str = ""
    id: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    inputs: list[InputTensor] = field(default_factory=list)
    outputs: list[RequestedOutput] = field(default_factory=list)
    """Empty: every output of the model."""


@dataclass(slots=True)
class OutputTensor:
    name: str
    datatype: str
    shape: tuple[int, ...]
    data: np.ndarray
    parameters: dict[str, Parameter] = field(default_factory=dict)


@dataclass(slots=True)
class InferenceResponse:
    model_name: str
    model_version: str
    id: str = ""
    parameters: dict[str, Parameter] = field(default_factory=dict)
    outputs: list[OutputTensor] = field(default_factory=list)
    final: bool = True
    """Whether this is the last response to its request (always, except in a stream from a
    decoupled model: Triton's ``triton_final_response``)."""


class TensorMetadata(msgspec.Struct):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(msgspec.Struct):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(msgspec.Struct):
    name: str
    version: str
    extensions: list[str]
