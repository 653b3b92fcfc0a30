"""The REST dialect (PROTOCOL.md §2-3): each operation as a :class:`RestCall`, with its parser.

Inference bodies are JSON, or JSON followed by raw tensor bytes (the binary tensor data
extension) when the server advertises ``binary_tensor_data`` in its metadata, as oipserve and
Triton do; MLServer does not, and gets JSON. Responses are read either way: outputs with a
``binary_data_size`` parameter are cut out of the body after the JSON header's
``Inference-Header-Content-Length`` bytes (as tritonclient's ``http/_infer_result.py`` does).
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote

import msgspec
import numpy as np

from oipserve.client._calls import RestCall, RestReply
from oipserve.client._tensors import Inputs, Outputs, tensors
from oipserve.client._types import IndexEntry, InferResult, ModelMetadata, ServerMetadata
from oipserve.errors import InternalError
from oipserve.model import Parameter
from oipserve.protocol.binary import array_from_raw, array_to_raw
from oipserve.protocol.tensor import array_from_json, array_to_json

HEADER_LENGTH = "inference-header-content-length"
_JSON = {"content-type": "application/json"}
_encoder = msgspec.json.Encoder()


class _WireOutput(msgspec.Struct):
    name: str
    datatype: str
    shape: list[int]
    parameters: dict[str, Parameter] | None = None
    data: Any = None


class _WireResponse(msgspec.Struct):
    model_name: str = ""
    model_version: str = ""
    id: str = ""
    parameters: dict[str, Parameter] | None = None
    outputs: list[_WireOutput] = []


class _WireIndexEntry(msgspec.Struct):
    name: str
    version: str = ""
    state: str = ""
    reason: str = ""


_response_decoder = msgspec.json.Decoder(_WireResponse)
_server_decoder = msgspec.json.Decoder(ServerMetadata)
_model_decoder = msgspec.json.Decoder(ModelMetadata)
_index_decoder = msgspec.json.Decoder(list[_WireIndexEntry])


def _model_path(model: str, version: str) -> str:
    path = f"/v2/models/{quote(model, safe='')}"
    return f"{path}/versions/{quote(version, safe='')}" if version else path


def _ok(reply: RestReply) -> bool:
    return reply.status == 200


def _json(reply: RestReply) -> Any:
    return msgspec.json.decode(reply.content) if reply.content else {}


def _nothing(reply: RestReply) -> None:
    return None


def encode_infer_request(
    inputs: Inputs,
    outputs: Outputs = None,
    *,
    binary: bool,
    id: str = "",
    parameters: dict[str, Parameter] | None = None,
) -> tuple[dict[str, str], bytes]:
    """The headers and body of an inference request (also used by ``oipserve bench``)."""
    wire_inputs: list[dict[str, Any]] = []
    chunks: list[bytes | memoryview] = []
    for tensor in tensors(inputs):
        item: dict[str, Any] = {
            "name": tensor.name,
            "shape": tensor.shape,
            "datatype": tensor.datatype,
        }
        if binary:
            raw = array_to_raw(tensor.array)
            item["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            item["data"] = array_to_json(tensor.name, tensor.array)
        wire_inputs.append(item)
    body: dict[str, Any] = {"inputs": wire_inputs}
    if id:
        body["id"] = id
    request_parameters = dict(parameters or {})
    if binary:
        request_parameters["binary_data_output"] = True
    if request_parameters:
        body["parameters"] = request_parameters
    if outputs is not None:
        body["outputs"] = [{"name": name} for name in outputs]
    header = _encoder.encode(body)
    if not binary:
        return dict(_JSON), header
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(header))}
    return headers, b"".join([header, *chunks])


def decode_infer_response(reply: RestReply) -> InferResult:
    length_text = reply.headers.get(HEADER_LENGTH)
    content = reply.content
    header_length = int(length_text) if length_text else len(content)
    try:
        wire = _response_decoder.decode(content[:header_length])
    except msgspec.DecodeError as exc:
        raise InternalError(f"the server sent an invalid inference response: {exc}") from None
    view = memoryview(content)
    offset = header_length
    arrays: dict[str, np.ndarray] = {}
    datatypes: dict[str, str] = {}
    for output in wire.outputs:
        shape = tuple(output.shape)
        size = (output.parameters or {}).get("binary_data_size")
        if isinstance(size, int) and not isinstance(size, bool):
            array = array_from_raw(
                output.name, output.datatype, shape, view[offset : offset + size]
            )
            offset += size
        else:
            array = array_from_json(output.name, output.datatype, shape, output.data)
        if output.datatype == "BYTES":
            array = _as_bytes(array)
        arrays[output.name] = array
        datatypes[output.name] = output.datatype
    return InferResult(
        wire.model_name, wire.model_version, arrays, datatypes, wire.id, dict(wire.parameters or {})
    )


def _as_bytes(array: np.ndarray) -> np.ndarray:
    flat = array.ravel()
    for i, item in enumerate(flat):
        if isinstance(item, str):
            flat[i] = item.encode()
    return flat.reshape(array.shape)


class RestDialect:
    """Builds the REST calls; holds nothing but the request headers every call carries."""

    def __init__(self, headers: dict[str, str]) -> None:
        self.headers = headers

    def _call(self, method: str, path: str, parse: Any, **options: Any) -> RestCall[Any]:
        headers = {**self.headers, **options.pop("headers", {})}
        return RestCall(method, path, parse, headers=headers, **options)

    def server_live(self) -> RestCall[bool]:
        return self._call("GET", "/v2/health/live", _ok, raise_for_status=False)

    def server_ready(self) -> RestCall[bool]:
        return self._call("GET", "/v2/health/ready", _ok, raise_for_status=False)

    def model_ready(self, model: str, version: str) -> RestCall[bool]:
        path = _model_path(model, version) + "/ready"
        return self._call("GET", path, _ok, raise_for_status=False)

    def server_metadata(self) -> RestCall[ServerMetadata]:
        return self._call("GET", "/v2", lambda r: _server_decoder.decode(r.content))

    def model_metadata(self, model: str, version: str) -> RestCall[ModelMetadata]:
        parse = lambda r: _model_decoder.decode(r.content)  # noqa: E731
        return self._call("GET", _model_path(model, version), parse)

    def model_config(self, model: str, version: str) -> RestCall[dict[str, Any]]:
        return self._call("GET", _model_path(model, version) + "/config", _json)

    def statistics(self, model: str, version: str) -> RestCall[dict[str, Any]]:
        path = _model_path(model, version) + "/stats" if model else "/v2/models/stats"
        return self._call("GET", path, _json)

    def repository_index(self, ready: bool) -> RestCall[list[IndexEntry]]:
        def parse(reply: RestReply) -> list[IndexEntry]:
            entries = _index_decoder.decode(reply.content)
            return [IndexEntry(e.name, e.version, e.state, e.reason) for e in entries]

        body = _encoder.encode({"ready": ready})
        return self._call("POST", "/v2/repository/index", parse, content=body, headers=dict(_JSON))

    def load(
        self, model: str, config: str | None, files: dict[str, bytes] | None
    ) -> RestCall[None]:
        parameters: dict[str, str] = {}
        if config is not None:
            parameters["config"] = config
        for path, data in (files or {}).items():
            parameters[f"file:{path}"] = base64.b64encode(data).decode()
        body = _encoder.encode({"parameters": parameters} if parameters else {})
        path = f"/v2/repository/models/{quote(model, safe='')}/load"
        return self._call("POST", path, _nothing, content=body, headers=dict(_JSON))

    def unload(self, model: str, unload_dependents: bool) -> RestCall[None]:
        body = _encoder.encode(
            {"parameters": {"unload_dependents": True}} if unload_dependents else {}
        )
        path = f"/v2/repository/models/{quote(model, safe='')}/unload"
        return self._call("POST", path, _nothing, content=body, headers=dict(_JSON))

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
    ) -> RestCall[InferResult]:
        headers, body = encode_infer_request(
            inputs, outputs, binary=binary, id=id, parameters=parameters
        )
        path = _model_path(model, version) + "/infer"
        return self._call("POST", path, decode_infer_response, content=body, headers=headers)
