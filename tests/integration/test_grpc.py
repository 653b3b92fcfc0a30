"""The gRPC API of a real server: through tritonclient.grpc and through raw grpcio stubs."""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import ml_dtypes
import numpy as np
import pytest
import tritonclient.grpc as triton
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from tritonclient.utils import InferenceServerException

from oipserve.protocol.messages import pb
from tests.serving import RunningServer, serve

SERVICE = "inference.GRPCInferenceService"
CORE_RPCS = {
    "ServerLive",
    "ServerReady",
    "ModelReady",
    "ServerMetadata",
    "ModelMetadata",
    "ModelInfer",
    "ModelStreamInfer",
    "ModelStatistics",
    "ModelConfig",
    "RepositoryIndex",
    "RepositoryModelLoad",
    "RepositoryModelUnload",
    "LogSettings",  # tests/integration/test_logging_and_tracing.py
    "TraceSetting",
}
UNIMPLEMENTED_RPCS = sorted(
    m.name
    for m in pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods
    if m.name not in CORE_RPCS
)
MAX = 2**31 - 1
OPTIONS = [("grpc.max_send_message_length", MAX), ("grpc.max_receive_message_length", MAX)]
TIMEOUT_S = 30.0
InputTensor = pb.ModelInferRequest.InferInputTensor

StreamResult = tuple[Any, InferenceServerException | None]


# -- helpers ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(server.grpc_url, options=OPTIONS) as opened:
        yield opened


@pytest.fixture
def client(server: RunningServer) -> Iterator[Any]:
    opened = triton.InferenceServerClient(server.grpc_url)
    yield opened
    opened.close()


def _call(channel: grpc.Channel, rpc: str, request: Message) -> Any:
    method = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name[rpc]
    response_type = getattr(pb, method.output_type.name)
    stub = channel.unary_unary(
        f"/{SERVICE}/{rpc}",
        request_serializer=type(request).SerializeToString,
        response_deserializer=response_type.FromString,
    )
    return stub(request, timeout=TIMEOUT_S)


def _rpc_error(call: Callable[[], object]) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as info:
        call()
    error: Any = info.value  # a grpc.Call as well as a grpc.RpcError
    code: grpc.StatusCode = error.code()
    details: str = error.details() or ""
    return code, details


def _raw(array: np.ndarray) -> bytes:
    if array.dtype == object:
        return b"".join(len(item).to_bytes(4, "little") + item for item in array.ravel())
    return np.ascontiguousarray(array).astype(array.dtype.newbyteorder("<")).tobytes()


def _simple_request(request_id: str = "") -> pb.ModelInferRequest:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.full((1, 16), 2, dtype=np.int32)
    return pb.ModelInferRequest(
        model_name="simple",
        id=request_id,
        inputs=[
            InputTensor(name="INPUT0", datatype="INT32", shape=[1, 16]),
            InputTensor(name="INPUT1", datatype="INT32", shape=[1, 16]),
        ],
        raw_input_contents=[_raw(a), _raw(b)],
    )


def _assert_serving(channel: grpc.Channel) -> None:
    """The server still answers a good request normally."""
    response = _call(channel, "ModelInfer", _simple_request("after"))
    assert response.id == "after"
    out0 = np.frombuffer(response.raw_output_contents[0], dtype="<i4")
    assert out0.tolist() == [i + 2 for i in range(16)]


def _triton_input(name: str, array: np.ndarray, datatype: str) -> Any:
    tensor = triton.InferInput(name, list(array.shape), datatype)
    tensor.set_data_from_numpy(array)
    return tensor


def _samples() -> dict[str, np.ndarray]:
    """A 2x3 array of every datatype, as tritonclient takes it (BF16 as ml_dtypes.bfloat16)."""
    return {
        "BOOL": np.array([[True, False, True], [False, False, True]]),
        "UINT8": np.array([[0, 1, 255], [7, 8, 9]], dtype=np.uint8),
        "UINT16": np.array([[0, 1, 65535], [7, 8, 9]], dtype=np.uint16),
        "UINT32": np.array([[0, 1, 2**32 - 1], [7, 8, 9]], dtype=np.uint32),
        "UINT64": np.array([[0, 1, 2**64 - 1], [7, 8, 9]], dtype=np.uint64),
        "INT8": np.array([[-128, 0, 127], [-1, 2, 3]], dtype=np.int8),
        "INT16": np.array([[-32768, 0, 32767], [-1, 2, 3]], dtype=np.int16),
        "INT32": np.array([[-(2**31), 0, 2**31 - 1], [-1, 2, 3]], dtype=np.int32),
        "INT64": np.array([[-(2**63), 0, 2**63 - 1], [-1, 2, 3]], dtype=np.int64),
        "FP16": np.array([[0.5, -1.25, 65504], [1, 2, 3]], dtype=np.float16),
        "FP32": np.array([[0.5, -1.25, 3.4e38], [1, 2, 3]], dtype=np.float32),
        "FP64": np.array([[0.5, -1.25, 1e300], [1, 2, 3]], dtype=np.float64),
        "BF16": np.array([[0.5, -1.25, 256], [1, 2, -3]], dtype=ml_dtypes.bfloat16),
        "BYTES": np.array([[b"", b"a", b"\x00\xff"], [b"xyz", "é".encode(), b"q"]], dtype=object),
    }


SAMPLES = _samples()
TYPED_FIELDS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


# -- tritonclient.grpc ------------------------------------------------------------------------


def test_tritonclient_health_and_metadata(client: Any) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("simple")
    assert client.is_model_ready("simple", "1")
    metadata = client.get_server_metadata(as_json=True)
    assert metadata["name"] == "oipserve"
    assert "binary_tensor_data" in metadata["extensions"]
    model = client.get_model_metadata("iris", as_json=True)
    assert model["name"] == "iris"
    assert model["versions"] == ["1"]
    assert model["inputs"] == [{"name": "input-0", "datatype": "FP32", "shape": ["-1", "4"]}]
    assert [o["name"] for o in model["outputs"]] == ["predict"]  # its model.toml lists one


def test_tritonclient_unknown_model(client: Any) -> None:
    calls: list[Callable[[], object]] = [
        lambda: client.is_model_ready("nope"),
        lambda: client.get_model_metadata("nope"),
        lambda: client.is_model_ready("simple", "9"),
    ]
    for call in calls:
        with pytest.raises(InferenceServerException) as info:
            call()
        assert info.value.status() == "StatusCode.NOT_FOUND"
        assert "Request for unknown model: " in info.value.message()


def test_tritonclient_infer_simple(client: Any) -> None:
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.ones((1, 16), dtype=np.int32)
    result = client.infer(
        "simple",
        [_triton_input("INPUT0", a, "INT32"), _triton_input("INPUT1", b, "INT32")],
        request_id="req-1",
        priority=1,
        timeout=10_000_000,
        parameters={"custom": "x", "count": 3, "flag": True},
    )
    response = result.get_response()
    assert (response.id, response.model_name, response.model_version) == ("req-1", "simple", "1")
    assert [o.name for o in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + b)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - b)


def test_tritonclient_infer_iris(client: Any) -> None:
    rows = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
    outputs = [triton.InferRequestedOutput("predict")]
    result = client.infer("iris", [_triton_input("input-0", rows, "FP32")], outputs=outputs)
    assert result.as_numpy("predict").tolist() == [0, 2]
    one = client.infer("iris", [_triton_input("input-0", rows[:1], "FP32")])
    assert [o.name for o in one.get_response().outputs] == ["predict"]
    assert one.as_numpy("predict").tolist() == [0]
    assert [o.name for o in one.get_response().outputs] == ["predict"]


@pytest.mark.parametrize("datatype", sorted(SAMPLES))
def test_identity_round_trips_every_datatype(client: Any, datatype: str) -> None:
    array = SAMPLES[datatype]
    scalar = np.array([7], dtype=np.int64)
    result = client.infer(
        "identity",
        [_triton_input("INPUT0", array, datatype), _triton_input("INPUT1", scalar, "INT64")],
        request_id=f"id-{datatype}",
    )
    response = result.get_response()
    assert response.id == f"id-{datatype}"
    assert [(o.name, o.datatype, list(o.shape)) for o in response.outputs] == [
        ("OUTPUT0", datatype, [2, 3]),
        ("OUTPUT1", "INT64", [1]),
    ]
    assert len(response.raw_output_contents) == 2
    got = result.as_numpy("OUTPUT0")
    assert got.dtype == array.dtype
    assert got.tolist() == array.tolist()
    assert result.as_numpy("OUTPUT1").tolist() == [7]


def test_tritonclient_stream(client: Any) -> None:
    results: queue.Queue[StreamResult] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        a = np.arange(16, dtype=np.int32).reshape(1, 16)
        good = [_triton_input("INPUT0", a, "INT32"), _triton_input("INPUT1", a, "INT32")]
        bad = [_triton_input("INPUT0", a, "INT32")]  # INPUT1 missing
        client.async_stream_infer("simple", good, request_id="s1")
        client.async_stream_infer("simple", bad, request_id="s2")
        client.async_stream_infer("nope", good, request_id="s3")
        client.async_stream_infer("simple", good, request_id="s4", enable_empty_final_response=True)
        got = [results.get(timeout=TIMEOUT_S) for _ in range(4)]
    finally:
        client.stop_stream()
    (r1, e1), (r2, e2), (r3, e3), (r4, e4) = got
    assert e1 is None
    assert r1.get_response().id == "s1"
    np.testing.assert_array_equal(r1.as_numpy("OUTPUT0"), a + a)
    assert r2 is None
    assert e2 is not None
    assert "INPUT1" in e2.message()
    assert r3 is None
    assert e3 is not None
    assert "Request for unknown model: 'nope'" in e3.message()
    assert e4 is None
    assert r4.get_response().id == "s4"
    np.testing.assert_array_equal(r4.as_numpy("OUTPUT1"), a - a)


# -- raw grpcio stubs -------------------------------------------------------------------------


def test_raw_core_rpcs(channel: grpc.Channel, server: RunningServer) -> None:
    assert _call(channel, "ServerLive", pb.ServerLiveRequest()).live
    assert _call(channel, "ServerReady", pb.ServerReadyRequest()).ready
    assert _call(channel, "ModelReady", pb.ModelReadyRequest(name="iris")).ready
    assert _call(channel, "ModelReady", pb.ModelReadyRequest(name="iris", version="1")).ready
    metadata = _call(channel, "ServerMetadata", pb.ServerMetadataRequest())
    rest = httpx.get(f"{server.base_url}/v2", timeout=TIMEOUT_S).json()
    assert metadata.name == rest["name"] == "oipserve"
    assert metadata.version == rest["version"]
    assert list(metadata.extensions) == rest["extensions"]
    model = _call(channel, "ModelMetadata", pb.ModelMetadataRequest(name="simple", version="1"))
    assert (model.name, list(model.versions)) == ("simple", ["1"])
    assert [(t.name, t.datatype, list(t.shape)) for t in model.inputs] == [
        ("INPUT0", "INT32", [-1, 16]),
        ("INPUT1", "INT32", [-1, 16]),
    ]
    response = _call(channel, "ModelInfer", _simple_request("raw-1"))
    assert (response.id, response.model_name, response.model_version) == ("raw-1", "simple", "1")
    assert [o.name for o in response.outputs] == ["OUTPUT0", "OUTPUT1"]
    assert all(not o.HasField("contents") for o in response.outputs)
    out1 = np.frombuffer(response.raw_output_contents[1], dtype="<i4")
    assert out1.tolist() == [i - 2 for i in range(16)]


def test_raw_empty_id_is_echoed_as_empty(channel: grpc.Channel) -> None:
    response = _call(channel, "ModelInfer", _simple_request(""))
    assert response.id == ""
    assert response.model_version == "1"


@pytest.mark.parametrize("rpc", UNIMPLEMENTED_RPCS)
def test_raw_unimplemented_rpcs(channel: grpc.Channel, rpc: str) -> None:
    method = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"].methods_by_name[rpc]
    request = getattr(pb, method.input_type.name)()
    code, details = _rpc_error(lambda: _call(channel, rpc, request))
    assert code == grpc.StatusCode.UNIMPLEMENTED
    assert details.startswith(f"{rpc} is not implemented")


def test_raw_unknown_rpc(channel: grpc.Channel) -> None:
    stub = channel.unary_unary(
        f"/{SERVICE}/NoSuchRpc",
        request_serializer=pb.ServerLiveRequest.SerializeToString,
        response_deserializer=pb.ServerLiveResponse.FromString,
    )
    code, _ = _rpc_error(lambda: stub(pb.ServerLiveRequest(), timeout=TIMEOUT_S))
    assert code == grpc.StatusCode.UNIMPLEMENTED


def test_raw_model_ready_unknown(channel: grpc.Channel) -> None:
    code, details = _rpc_error(
        lambda: _call(channel, "ModelReady", pb.ModelReadyRequest(name="nope"))
    )
    assert code == grpc.StatusCode.NOT_FOUND
    assert details == "Request for unknown model: 'nope' is not found"


@pytest.mark.parametrize("datatype", sorted(TYPED_FIELDS))
def test_raw_typed_contents_round_trip(channel: grpc.Channel, datatype: str) -> None:
    array = SAMPLES[datatype]
    contents = pb.InferTensorContents(**{TYPED_FIELDS[datatype]: array.ravel().tolist()})
    request = pb.ModelInferRequest(
        model_name="identity",
        inputs=[InputTensor(name="INPUT0", datatype=datatype, shape=[2, 3], contents=contents)],
    )
    response = _call(channel, "ModelInfer", request)
    (output,) = response.outputs
    assert (output.name, output.datatype, list(output.shape)) == ("OUTPUT0", datatype, [2, 3])
    assert not output.HasField("contents")
    assert response.raw_output_contents[0] == _raw(array)


def test_raw_parameters_accepted(channel: grpc.Channel) -> None:
    request = _simple_request("params")
    request.parameters["priority"].uint64_param = 2
    request.parameters["timeout"].int64_param = 5_000_000
    request.parameters["triton_enable_empty_final_response"].bool_param = True
    request.parameters["custom_bool"].bool_param = False
    request.parameters["custom_int"].int64_param = -4
    request.parameters["custom_double"].double_param = 0.5
    request.parameters["custom_string"].string_param = "s"
    request.inputs[0].parameters["input_hint"].string_param = "x"
    request.inputs[1].parameters["input_flag"].bool_param = True
    response = _call(channel, "ModelInfer", request)
    assert response.id == "params"
    assert len(response.raw_output_contents) == 2


def test_raw_stream_answers_in_order_and_survives_errors(channel: grpc.Channel) -> None:
    stream = channel.stream_stream(
        f"/{SERVICE}/ModelStreamInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelStreamInferResponse.FromString,
    )
    bad = _simple_request("bad")
    bad.raw_input_contents[0] = b"\x00" * 3
    requests = [_simple_request(f"r{i}") for i in range(6)]
    requests.insert(2, bad)
    requests[0].parameters["triton_enable_empty_final_response"].bool_param = True
    responses = list(stream(iter(requests), timeout=TIMEOUT_S))
    assert [r.infer_response.id for r in responses] == [r.id for r in requests]
    for request, response in zip(requests, responses, strict=True):
        if request.id == "bad":
            assert "input 'INPUT0'" in response.error_message
            assert response.infer_response == pb.ModelInferResponse(id="bad")
        else:
            assert response.error_message == ""
            assert response.infer_response.model_name == "simple"
            assert len(response.infer_response.raw_output_contents) == 2
            final = response.infer_response.parameters["triton_final_response"]
            assert final.bool_param


def test_raw_stream_grpc_error_mode_ends_the_stream(channel: grpc.Channel) -> None:
    stream = channel.stream_stream(
        f"/{SERVICE}/ModelStreamInfer",
        request_serializer=pb.ModelInferRequest.SerializeToString,
        response_deserializer=pb.ModelStreamInferResponse.FromString,
    )
    requests = [_simple_request("ok"), pb.ModelInferRequest(model_name="nope", id="x")]
    call = stream(iter(requests), timeout=TIMEOUT_S, metadata=(("triton_grpc_error", "true"),))
    responses = iter(call)
    first = next(responses)
    assert first.infer_response.id == "ok"
    code, details = _rpc_error(lambda: next(responses))
    assert code == grpc.StatusCode.NOT_FOUND
    assert "nope" in details
    _assert_serving(channel)


def test_health_service(channel: grpc.Channel) -> None:
    check = channel.unary_unary(
        "/grpc.health.v1.Health/Check",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    serving = health_pb2.HealthCheckResponse.SERVING
    assert check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S).status == serving
    named = health_pb2.HealthCheckRequest(service=SERVICE)
    assert check(named, timeout=TIMEOUT_S).status == serving
    code, _ = _rpc_error(
        lambda: check(health_pb2.HealthCheckRequest(service="other"), timeout=TIMEOUT_S)
    )
    assert code == grpc.StatusCode.NOT_FOUND
    watch = channel.unary_stream(
        "/grpc.health.v1.Health/Watch",
        request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
        response_deserializer=health_pb2.HealthCheckResponse.FromString,
    )
    call: Any = watch(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S)
    assert next(iter(call)).status == serving
    call.cancel()


# -- bad input --------------------------------------------------------------------------------


def _identity(*inputs: InputTensor, raw: list[bytes] | None = None) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(model_name="identity", inputs=inputs, raw_input_contents=raw or [])


def _typed(name: str, datatype: str, shape: list[int], **contents: Any) -> InputTensor:
    return InputTensor(
        name=name, datatype=datatype, shape=shape, contents=pb.InferTensorContents(**contents)
    )


def _bad_requests() -> dict[str, tuple[pb.ModelInferRequest, grpc.StatusCode, str]]:
    invalid, not_found = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
    int32 = InputTensor(name="INPUT0", datatype="INT32", shape=[2])
    unknown_version = _simple_request()
    unknown_version.model_version = "9"
    unknown_output = _simple_request()
    unknown_output.outputs.add(name="OUTPUT9")
    wrong_shape = _simple_request()
    wrong_shape.inputs[1].shape[:] = [1, 8]
    wrong_shape.raw_input_contents[1] = b"\x00" * 32
    return {
        "typed count mismatch": (
            _identity(_typed("INPUT0", "FP32", [3], fp32_contents=[1.0, 2.0])),
            invalid,
            "input 'INPUT0': shape [3] needs 3 elements but contents.fp32_contents holds 2",
        ),
        "raw size mismatch": (
            _identity(int32, raw=[b"\x00" * 7]),
            invalid,
            "input 'INPUT0': 7 bytes of data do not match shape [2] of INT32",
        ),
        "raw and typed": (
            _identity(int32, _typed("INPUT1", "INT32", [1], int_contents=[1]), raw=[b"\x00" * 8]),
            invalid,
            "input 'INPUT1': contents field must not be specified when using raw_input_contents",
        ),
        "surplus raw": (
            _identity(int32, raw=[b"\x00" * 8, b"\x00" * 8]),
            invalid,
            "2 raw_input_contents entries but only 1 inputs take raw data (1 surplus)",
        ),
        "missing data": (
            _identity(InputTensor(name="INPUT0", datatype="FP32", shape=[2])),
            invalid,
            "unable to find data for input tensor 'INPUT0' for model 'identity' in request.",
        ),
        "wrong contents field": (
            _identity(_typed("INPUT0", "FP32", [1], int64_contents=[1])),
            invalid,
            "datatype FP32 expects contents.fp32_contents",
        ),
        "unknown datatype": (
            _identity(InputTensor(name="INPUT0", datatype="FLOAT", shape=[1]), raw=[b"\0" * 4]),
            invalid,
            "input 'INPUT0': unknown datatype 'FLOAT'",
        ),
        "negative dimension": (
            _identity(InputTensor(name="INPUT0", datatype="FP32", shape=[-1]), raw=[b""]),
            invalid,
            "negative dimension",
        ),
        "unknown model": (
            pb.ModelInferRequest(model_name="nope"),
            not_found,
            "Request for unknown model: 'nope' is not found",
        ),
        "unknown version": (
            unknown_version,
            not_found,
            "Request for unknown model: 'simple' version '9' is not found",
        ),
        "unknown requested output": (
            unknown_output,
            invalid,
            "unexpected inference output 'OUTPUT9' for model 'simple'",
        ),
        "wrong shape for the model": (
            wrong_shape,
            invalid,
            "input 'INPUT1' has shape [1, 8], but model 'simple' expects [-1, 16]",
        ),
    }


BAD_REQUESTS = _bad_requests()


@pytest.mark.parametrize("case", sorted(BAD_REQUESTS))
def test_bad_input(channel: grpc.Channel, case: str) -> None:
    request, expected_code, expected_text = BAD_REQUESTS[case]
    code, details = _rpc_error(lambda: _call(channel, "ModelInfer", request))
    assert code == expected_code, details
    assert expected_text in details
    _assert_serving(channel)


def test_oversize_message_is_resource_exhausted(examples_repository: Path, tmp_path: Path) -> None:
    with (
        serve(examples_repository, "--grpc-max-message-mb", "1", tmp_dir=tmp_path) as small,
        grpc.insecure_channel(small.grpc_url, options=OPTIONS) as channel,
    ):
        big = np.zeros(300_000, dtype=np.float32)  # 1.2 MB of data
        request = _identity(InputTensor(name="INPUT0", datatype="FP32", shape=[big.size]))
        request.raw_input_contents.append(_raw(big))
        code, _ = _rpc_error(lambda: _call(channel, "ModelInfer", request))
        assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
        _assert_serving(channel)
        fits = np.ones(200_000, dtype=np.float32)  # 0.8 MB: under the limit both ways
        request = _identity(InputTensor(name="INPUT0", datatype="FP32", shape=[fits.size]))
        request.raw_input_contents.append(_raw(fits))
        response = _call(channel, "ModelInfer", request)
        assert response.raw_output_contents[0] == _raw(fits)


# -- a server that is not ready, and a model that fails ---------------------------------------

BROKEN_MODEL = """
import oipserve


class Broken(oipserve.Model):
    def load(self, ctx):
        raise RuntimeError("cannot load")

    def infer(self, requests):
        return []
"""

FAULTY_MODEL = """
import oipserve


class Faulty(oipserve.Model):
    def infer(self, requests):
        raise ValueError("bad luck")
"""


def test_not_ready_server_and_failing_model(tmp_path: Path) -> None:
    repository = tmp_path / "repository"
    for name, source in (("broken", BROKEN_MODEL), ("faulty", FAULTY_MODEL)):
        (repository / name / "1").mkdir(parents=True)
        (repository / name / "1" / "model.py").write_text(source)
    with (
        serve(repository, tmp_dir=tmp_path) as running,
        grpc.insecure_channel(running.grpc_url, options=OPTIONS) as channel,
    ):
        assert _call(channel, "ServerLive", pb.ServerLiveRequest()).live
        assert not _call(channel, "ServerReady", pb.ServerReadyRequest()).ready
        assert not _call(channel, "ModelReady", pb.ModelReadyRequest(name="broken")).ready
        assert _call(channel, "ModelReady", pb.ModelReadyRequest(name="faulty")).ready
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        status = check(health_pb2.HealthCheckRequest(), timeout=TIMEOUT_S).status
        assert status == health_pb2.HealthCheckResponse.NOT_SERVING

        request = _identity(InputTensor(name="x", datatype="INT32", shape=[1]), raw=[b"\0" * 4])
        request.model_name = "faulty"
        code, details = _rpc_error(lambda: _call(channel, "ModelInfer", request))
        assert code == grpc.StatusCode.INTERNAL
        assert "faulty" in details
        assert "bad luck" in details
        code, details = _rpc_error(
            lambda: _call(channel, "ModelInfer", pb.ModelInferRequest(model_name="broken"))
        )
        assert code == grpc.StatusCode.UNAVAILABLE, details  # fix 7: the load error
        assert "broken" in details
        assert "cannot load" in details

        stream = channel.stream_stream(
            f"/{SERVICE}/ModelStreamInfer",
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )
        request.id = "f1"
        (response,) = list(stream(iter([request]), timeout=TIMEOUT_S))
        assert "bad luck" in response.error_message
        assert response.infer_response.id == "f1"
        assert _call(channel, "ServerLive", pb.ServerLiveRequest()).live
