"""The gRPC dialect (PROTOCOL.md §4): each operation as a :class:`GrpcCall`, with its parser.

Messages are oipserve's own (``oipserve.protocol.messages``), wire-compatible with Triton's and
MLServer's ``inference.GRPCInferenceService``. Requests carry every input in
``raw_input_contents``; responses are read from ``raw_output_contents`` (oipserve, Triton) or
from the typed ``contents`` (MLServer), whichever the server filled. Importing this module loads
protobuf, not grpc: the channel lives in ``_transports.py``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from oipserve.client._calls import GrpcCall
from oipserve.client._tensors import Inputs, Outputs, tensors
from oipserve.client._types import (
    IndexEntry,
    InferResult,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
)
from oipserve.model import Parameter
from oipserve.protocol.binary import array_from_raw, array_to_raw
from oipserve.protocol.messages import SERVICE_NAME, int64_as_numbers, pb
from oipserve.transport.grpc.convert import (
    CONTENTS_FIELD,
    parameter_to_proto,
    parameters_from_proto,
)

__all__ = ["SERVICE_NAME", "GrpcDialect", "infer_request", "message_to_dict"]


def message_to_dict(message: Any) -> dict[str, Any]:
    """A message as the JSON the REST endpoints answer: proto field names, every field printed,
    64-bit integers as numbers (protobuf's JSON mapping would print them as strings)."""
    from google.protobuf import json_format

    data = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    int64_as_numbers(message.DESCRIPTOR, data)
    return data


def infer_request(
    model: str,
    inputs: Inputs,
    outputs: Outputs = None,
    *,
    version: str = "",
    id: str = "",
    parameters: dict[str, Parameter] | None = None,
) -> pb.ModelInferRequest:
    message = pb.ModelInferRequest(model_name=model, model_version=version, id=id)
    for tensor in tensors(inputs):
        message.inputs.add(name=tensor.name, datatype=tensor.datatype, shape=tensor.shape)
        raw = array_to_raw(tensor.array)
        message.raw_input_contents.append(raw if isinstance(raw, bytes) else raw.tobytes())
    for name in outputs or ():
        message.outputs.add(name=name)
    for key, value in (parameters or {}).items():
        message.parameters[key].CopyFrom(parameter_to_proto(value))
    return message


def infer_result(message: pb.ModelInferResponse) -> InferResult:
    raw = message.raw_output_contents
    arrays: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    for index, output in enumerate(message.outputs):
        shape = tuple(output.shape)
        if index < len(raw):
            array = array_from_raw(output.name, output.datatype, shape, raw[index])
        else:
            array = _from_contents(output, shape)
        arrays[output.name] = array
        datatypes[output.name] = output.datatype
    return InferResult(
        message.model_name,
        message.model_version,
        arrays,
        datatypes,
        message.id,
        parameters_from_proto(message.parameters, "response"),
    )


def _from_contents(output: Any, shape: tuple[int, ...]) -> np.ndarray:
    from oipserve.protocol.datatypes import dtype_of

    values = getattr(output.contents, CONTENTS_FIELD.get(output.datatype, "bytes_contents"))
    if output.datatype == "BYTES":
        array = np.empty(len(values), dtype=object)
        for i, value in enumerate(values):
            array[i] = bytes(value)
        return array.reshape(shape)
    return np.array(values).astype(dtype_of(output.datatype)).reshape(shape)


def _index_entries(message: pb.RepositoryIndexResponse) -> list[IndexEntry]:
    return [IndexEntry(m.name, m.version, m.state, m.reason) for m in message.models]


def _server_metadata(message: pb.ServerMetadataResponse) -> ServerMetadata:
    return ServerMetadata(message.name, message.version, list(message.extensions))


def _model_metadata(message: pb.ModelMetadataResponse) -> ModelMetadata:
    def tensor(t: Any) -> TensorMetadata:
        return TensorMetadata(t.name, t.datatype, list(t.shape))

    return ModelMetadata(
        message.name,
        list(message.versions),
        message.platform,
        [tensor(t) for t in message.inputs],
        [tensor(t) for t in message.outputs],
    )


def _flag(name: str) -> Any:
    def parse(message: Any) -> bool:
        return message is not None and bool(getattr(message, name))

    return parse


def _nothing(message: Any) -> None:
    return None


class GrpcDialect:
    """Builds the gRPC calls; ``metadata`` travels with every call (the API key)."""

    def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
        self.metadata = metadata

    def _call(
        self, rpc: str, request: Any, response: Any, parse: Any, readiness: bool = False
    ) -> GrpcCall[Any]:
        return GrpcCall(rpc, request, response, parse, self.metadata, readiness)

    def server_live(self) -> GrpcCall[bool]:
        return self._call(
            "ServerLive", pb.ServerLiveRequest(), pb.ServerLiveResponse, _flag("live"), True
        )

    def server_ready(self) -> GrpcCall[bool]:
        return self._call(
            "ServerReady", pb.ServerReadyRequest(), pb.ServerReadyResponse, _flag("ready"), True
        )

    def model_ready(self, model: str, version: str) -> GrpcCall[bool]:
        request = pb.ModelReadyRequest(name=model, version=version)
        return self._call("ModelReady", request, pb.ModelReadyResponse, _flag("ready"), True)

    def server_metadata(self) -> GrpcCall[ServerMetadata]:
        return self._call(
            "ServerMetadata",
            pb.ServerMetadataRequest(),
            pb.ServerMetadataResponse,
            _server_metadata,
        )

    def model_metadata(self, model: str, version: str) -> GrpcCall[ModelMetadata]:
        request = pb.ModelMetadataRequest(name=model, version=version)
        return self._call("ModelMetadata", request, pb.ModelMetadataResponse, _model_metadata)

    def model_config(self, model: str, version: str) -> GrpcCall[dict[str, Any]]:
        request = pb.ModelConfigRequest(name=model, version=version)
        return self._call(
            "ModelConfig", request, pb.ModelConfigResponse, lambda m: message_to_dict(m.config)
        )

    def statistics(self, model: str, version: str) -> GrpcCall[dict[str, Any]]:
        request = pb.ModelStatisticsRequest(name=model, version=version)
        return self._call("ModelStatistics", request, pb.ModelStatisticsResponse, message_to_dict)

    def repository_index(self, ready: bool) -> GrpcCall[list[IndexEntry]]:
        request = pb.RepositoryIndexRequest(ready=ready)
        return self._call("RepositoryIndex", request, pb.RepositoryIndexResponse, _index_entries)

    def load(
        self, model: str, config: str | None, files: dict[str, bytes] | None
    ) -> GrpcCall[None]:
        request = pb.RepositoryModelLoadRequest(model_name=model)
        if config is not None:
            request.parameters["config"].string_param = config
        for path, data in (files or {}).items():
            request.parameters[f"file:{path}"].bytes_param = data
        return self._call("RepositoryModelLoad", request, pb.RepositoryModelLoadResponse, _nothing)

    def unload(self, model: str, unload_dependents: bool) -> GrpcCall[None]:
        request = pb.RepositoryModelUnloadRequest(model_name=model)
        if unload_dependents:
            request.parameters["unload_dependents"].bool_param = True
        return self._call(
            "RepositoryModelUnload", request, pb.RepositoryModelUnloadResponse, _nothing
        )

    def infer(
        self,
        model: str,
        inputs: Inputs,
        outputs: Outputs,
        *,
        version: str,
        id: str,
        parameters: dict[str, Parameter] | None,
        binary: bool,
    ) -> GrpcCall[InferResult]:
        request = infer_request(
            model, inputs, outputs, version=version, id=id, parameters=parameters
        )
        return self._call("ModelInfer", request, pb.ModelInferResponse, infer_result)
