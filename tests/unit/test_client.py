"""oipserve.client in memory: its public names, its import weight, the reversed error tables and
both codecs against the server's own codecs."""

from __future__ import annotations

import subprocess
import sys

import grpc
import ml_dtypes
import numpy as np
import pytest

import oipserve.client
from oipserve import errors
from oipserve.client._calls import RestReply
from oipserve.client._config import parse_url
from oipserve.client._errors import ConnectError, from_grpc, from_http
from oipserve.client._grpc import infer_request, infer_result
from oipserve.client._rest import decode_infer_response, encode_infer_request
from oipserve.client._tensors import tensors
from oipserve.errors import ErrorKind
from oipserve.protocol import codec
from oipserve.protocol.messages import pb
from oipserve.protocol.types import InferenceResponse, OutputTensor, RequestedOutput
from oipserve.transport.grpc import convert
from oipserve.transport.grpc.errors import code_of
from oipserve.transport.http.errors import status_of


def test_public_names_are_pinned_and_sorted() -> None:
    assert oipserve.client.__all__ == [
        "AsyncClient",
        "Client",
        "ConnectError",
        "IndexEntry",
        "InferResult",
        "ModelMetadata",
        "ServerMetadata",
        "TensorMetadata",
    ]
    assert sorted(oipserve.client.__all__) == oipserve.client.__all__


def test_import_does_not_load_grpc_or_the_server() -> None:
    code = "import sys, oipserve.client; print('\\n'.join(sys.modules))"
    loaded = set(
        subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        ).stdout.split()
    )
    assert not loaded & {"grpc", "uvicorn", "oipserve.dataplane", "oipserve.registry", "torch"}


@pytest.mark.parametrize("kind", list(ErrorKind), ids=[k.value for k in ErrorKind])
def test_statuses_come_back_as_the_servers_classes(kind: ErrorKind) -> None:
    over_http = from_http(status_of(kind), b'{"error": "boom"}', {})
    assert over_http.message == "boom"
    assert status_of(over_http.kind) == status_of(kind)  # same status; the first kind of it
    over_grpc = from_grpc(code_of(kind), "boom", "grpc://x:1")
    assert code_of(over_grpc.kind) == code_of(kind)
    if kind.value in grpc.StatusCode.__members__:
        assert over_grpc.kind is kind
    assert type(over_grpc).__module__ == "oipserve.errors"


def test_error_refinements() -> None:
    assert type(from_http(400, b'{"error": "x"}', {})) is errors.InvalidArgument
    assert type(from_http(503, b'{"error": "x"}', {})) is errors.Unavailable
    full = from_http(503, b'{"error": "queue full"}', {"retry-after": "3"})
    assert isinstance(full, errors.QueueFull)
    assert full.retry_after_s == 3
    unknown = from_http(404, b"{\"error\": \"Request for unknown model: 'm' version '2' x\"}", {})
    assert isinstance(unknown, errors.ModelNotFound)
    assert (unknown.model, unknown.version) == ("m", "2")
    assert str(unknown) == "Request for unknown model: 'm' version '2' x"
    assert type(from_http(404, b'{"error": "Not Found"}', {})) is errors.NotFound
    # FastAPI's validation errors (MLServer): another 4xx is the client's mistake
    fastapi = from_http(422, b'{"detail": [{"msg": "field required"}]}', {})
    assert isinstance(fastapi, errors.InvalidArgument)
    assert "field required" in fastapi.message
    assert isinstance(from_http(502, b"bad gateway", {}), errors.InternalError)
    refused = from_grpc(grpc.StatusCode.UNAVAILABLE, "failed to connect to all addresses", "g")
    assert isinstance(refused, ConnectError)
    assert isinstance(refused, errors.Unavailable)
    assert type(from_grpc(grpc.StatusCode.UNAVAILABLE, "loading", "g")) is errors.Unavailable


def test_urls() -> None:
    assert parse_url("localhost:9000").base_url == "http://localhost:9000"
    assert parse_url("https://h").port == 8080
    grpc_url = parse_url("grpcs://[::1]:7")
    assert (grpc_url.wire, grpc_url.tls, grpc_url.authority) == ("grpc", True, "[::1]:7")
    for bad in ("ftp://h", "http://h/v2", "http://h:99999", "http://"):
        with pytest.raises(errors.InvalidArgument):
            parse_url(bad)


def _arrays() -> dict[str, np.ndarray]:
    return {
        "f32": np.arange(6, dtype=np.float32).reshape(2, 3),
        "i8": np.array([[-1, 2]], dtype=np.int8),
        "b": np.array([True, False]),
        "s": np.array(["a", "ü"]),
        "bf16": np.array([1.5, -2], dtype=ml_dtypes.bfloat16),
    }


@pytest.mark.parametrize("binary", [True, False])
def test_rest_request_is_what_the_server_decodes(binary: bool) -> None:
    arrays = _arrays()
    if not binary:
        del arrays["bf16"]  # JSON carries BF16 as numbers; compared separately below
    headers, body = encode_infer_request(arrays, ["out"], binary=binary, id="7")
    length = codec.parse_header_length(headers.get("inference-header-content-length"), len(body))
    decoded = codec.decode_infer_request(body, "m", "", length)
    assert decoded.id == "7"
    assert [o.name for o in decoded.outputs] == ["out"]
    for tensor in decoded.inputs:
        expected = arrays[tensor.name]
        if tensor.name == "s":
            expected = np.array([b"a", "ü".encode()], dtype=object)
        np.testing.assert_array_equal(tensor.data, expected)


@pytest.mark.parametrize("binary", [True, False])
def test_rest_response_is_what_the_server_encoded(binary: bool) -> None:
    outputs = [
        OutputTensor("p", "FP64", (2, 2), np.array([[0.25, 0.75], [1, 0]])),
        OutputTensor("c", "BYTES", (2,), np.array([b"x", b"yz"], dtype=object)),
        OutputTensor("h", "FP16", (1,), np.array([0.5], dtype=np.float16)),
    ]
    response = InferenceResponse("m", "1", "id", {}, outputs)
    request = codec.decode_infer_request(
        b'{"inputs":[{"name":"a","shape":[1],"datatype":"INT32","data":[1]}]}', "m"
    )
    if binary:
        request.outputs = [RequestedOutput(o.name, {"binary_data": True}) for o in outputs]
    header, chunks = codec.encode_infer_response(response, request)
    headers = {"inference-header-content-length": str(len(header))} if chunks else {}
    result = decode_infer_response(RestReply(200, headers, b"".join([header, *chunks])))
    assert (result.model_name, result.model_version, result.id) == ("m", "1", "id")
    for output in outputs:
        np.testing.assert_array_equal(result[output.name], output.data)
        assert result.datatypes[output.name] == output.datatype
    assert result["c"].dtype == object
    assert list(result) == ["p", "c", "h"]


def test_grpc_round_trip_through_the_servers_converters() -> None:
    arrays = _arrays()
    message = infer_request("m", arrays, ["o"], version="2", parameters={"k": 1})
    decoded = convert.infer_request_from_proto(
        pb.ModelInferRequest.FromString(message.SerializeToString())
    )
    assert (decoded.model_name, decoded.model_version, decoded.parameters) == ("m", "2", {"k": 1})
    for tensor in decoded.inputs:
        expected = arrays[tensor.name]
        if tensor.name == "s":
            expected = np.array([b"a", "ü".encode()], dtype=object)
        np.testing.assert_array_equal(tensor.data, expected)
    outputs = [
        OutputTensor(n, t.datatype, tuple(t.shape), t.data)
        for n, t in ((t.name, t) for t in decoded.inputs)
    ]
    reply = convert.infer_response_to_proto(InferenceResponse("m", "2", "", {}, outputs))
    result = infer_result(reply)
    for tensor in decoded.inputs:
        np.testing.assert_array_equal(result[tensor.name], tensor.data)


def test_grpc_typed_contents_as_mlserver_sends_them() -> None:
    output = pb.ModelInferResponse.InferOutputTensor(name="predict", datatype="INT64", shape=[2])
    output.contents.int64_contents.extend([0, 2])
    text = pb.ModelInferResponse.InferOutputTensor(name="t", datatype="BYTES", shape=[1])
    text.contents.bytes_contents.append(b"setosa")
    result = infer_result(pb.ModelInferResponse(model_name="iris", outputs=[output, text]))
    np.testing.assert_array_equal(result["predict"], np.array([0, 2], dtype=np.int64))
    assert result["predict"].dtype == np.int64
    assert result["t"].tolist() == [b"setosa"]


def test_inputs_that_cannot_be_sent() -> None:
    with pytest.raises(errors.InvalidArgument, match="object array may hold only"):
        tensors({"x": np.array([1, None], dtype=object)})
    with pytest.raises(errors.InvalidArgument, match="at least one input"):
        tensors({})
    with pytest.raises(errors.InvalidArgument, match="input 'c'"):
        tensors({"c": np.array([1 + 2j])})
