"""The model configuration extension (PROTOCOL.md §3.1) over REST and gRPC, for every runtime.

Checked through tritonclient (http and grpc), raw HTTP and raw gRPC: the JSON has Triton's shape
(the keys perf_analyzer reads), agrees with the model metadata, and the gRPC message is the same
configuration as the REST JSON.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oipserve.protocol.messages import pb
from oipserve.repository.triton import message_to_json
from tests.serving import ROOT, RunningServer, serve

TIMEOUT_S = 30.0
SERVICE = "inference.GRPCInferenceService"

#: model folder written by ``examples/make_models.py --all-formats`` → (backend, its modules)
RUNTIMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "iris-sklearn": ("sklearn", ("sklearn",)),
    "iris-xgboost": ("xgboost", ("sklearn", "xgboost")),
    "iris-lightgbm": ("lightgbm", ("sklearn", "lightgbm")),
    "iris-onnx": ("onnxruntime", ("sklearn", "skl2onnx", "onnxruntime")),
    "iris-torch": ("pytorch", ("sklearn", "torch")),
    "iris-torchscript": ("pytorch", ("sklearn", "torch")),
    "echo": ("python", ()),
}

ECHO = (
    "import oipserve\n\n\nclass Echo(oipserve.Model):\n"
    "    def infer(self, requests):\n"
    "        return [oipserve.InferResponse(dict(r.inputs)) for r in requests]\n"
)

#: keys every rendered config has (PROTOCOL.md §3.1 "Rec:" list and perf_analyzer's reads)
TOP_KEYS = {
    "name",
    "platform",
    "backend",
    "max_batch_size",
    "input",
    "output",
    "version_policy",
    "instance_group",
    "parameters",
    "model_transaction_policy",
}


def _model_config_rpc(server: RunningServer, name: str, version: str = "") -> Any:
    with grpc.insecure_channel(server.grpc_url) as channel:
        stub = channel.unary_unary(
            f"/{SERVICE}/ModelConfig",
            request_serializer=pb.ModelConfigRequest.SerializeToString,
            response_deserializer=pb.ModelConfigResponse.FromString,
        )
        return stub(pb.ModelConfigRequest(name=name, version=version), timeout=TIMEOUT_S)


def _rest_config(server: RunningServer, path: str) -> httpx.Response:
    return httpx.get(f"{server.base_url}{path}", timeout=TIMEOUT_S)


def _assert_matches_metadata(config: dict[str, Any], metadata: dict[str, Any]) -> None:
    """Config dims are the metadata shapes without the batch dimension; TYPE_x is datatype x."""
    lead = 1 if config["max_batch_size"] > 0 else 0
    for key, config_key in (("inputs", "input"), ("outputs", "output")):
        expected = [
            (t["name"], "TYPE_" + t["datatype"].replace("BYTES", "STRING"), t["shape"][lead:])
            for t in metadata[key]
        ]
        assert [(t["name"], t["data_type"], t["dims"]) for t in config[config_key]] == expected


# -- the examples ---------------------------------------------------------------------------------


def test_rest_config_of_iris_has_tritons_shape(server: RunningServer) -> None:
    response = _rest_config(server, "/v2/models/iris/config")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    config = response.json()
    assert set(config) >= TOP_KEYS
    assert config["name"] == "iris"
    assert config["backend"] == "sklearn"
    assert config["max_batch_size"] == 64
    assert config["input"] == [
        {
            "name": "input-0",
            "data_type": "TYPE_FP32",
            "format": "FORMAT_NONE",
            "dims": [4],
            "is_shape_tensor": False,
            "allow_ragged_batch": False,
            "optional": False,
            "is_non_linear_format_io": False,
        }
    ]
    assert [(o["name"], o["data_type"], o["dims"]) for o in config["output"]] == [
        ("predict", "TYPE_INT64", []),
    ]
    assert config["dynamic_batching"]["max_queue_delay_microseconds"] == 200
    assert "sequence_batching" not in config
    assert config["version_policy"] == {"latest": {"num_versions": 1}}
    assert config["instance_group"][0]["name"] == "iris_0"
    assert config["instance_group"][0]["kind"] == "KIND_CPU"
    assert config["instance_group"][0]["count"] == 1
    assert config["model_transaction_policy"] == {"decoupled": False}
    assert config["parameters"] == {}
    metadata = httpx.get(f"{server.base_url}/v2/models/iris", timeout=TIMEOUT_S).json()
    _assert_matches_metadata(config, metadata)


def test_rest_config_without_dynamic_batching(server: RunningServer) -> None:
    config = _rest_config(server, "/v2/models/simple/versions/1/config").json()
    assert config["name"] == "simple"
    assert config["backend"] == "python"
    assert config["max_batch_size"] == 8
    assert "dynamic_batching" not in config
    assert [i["dims"] for i in config["input"]] == [[16], [16]]


def test_tritonclient_http_get_model_config(server: RunningServer) -> None:
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        config = client.get_model_config("iris")
        assert config == _rest_config(server, "/v2/models/iris/config").json()
        assert client.get_model_config("iris", "1") == config
        with pytest.raises(InferenceServerException, match="Request for unknown model: 'nope'"):
            client.get_model_config("nope")
    finally:
        client.close()


def test_tritonclient_grpc_get_model_config(server: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        response = client.get_model_config("iris")
        assert response.config.name == "iris"
        assert response.config.max_batch_size == 64
        assert [i.name for i in response.config.input] == ["input-0"]
        assert response.config.HasField("dynamic_batching")
        as_json = client.get_model_config("iris", "1", as_json=True)
        assert as_json["config"]["input"][0]["data_type"] == "TYPE_FP32"
        with pytest.raises(InferenceServerException, match="Request for unknown model"):
            client.get_model_config("nope")
    finally:
        client.close()


@pytest.mark.parametrize("name", ["iris", "simple", "identity"])
def test_grpc_config_is_the_rest_config(server: RunningServer, name: str) -> None:
    rest = _rest_config(server, f"/v2/models/{name}/config").json()
    message = _model_config_rpc(server, name).config
    assert message_to_json(message) == rest


@pytest.mark.parametrize(
    "path",
    ["/v2/models/nope/config", "/v2/models/iris/versions/7/config", "/v2/models/..%2Fx/config"],
)
def test_rest_config_of_unknown_model_or_version_is_404(server: RunningServer, path: str) -> None:
    response = _rest_config(server, path)
    assert response.status_code == 404
    assert response.json()["error"].startswith("Request for unknown model")


def test_rest_config_wrong_method_is_405(server: RunningServer) -> None:
    response = httpx.post(f"{server.base_url}/v2/models/iris/config", timeout=TIMEOUT_S)
    assert response.status_code == 405


@pytest.mark.parametrize(("name", "version"), [("nope", ""), ("iris", "9")])
def test_grpc_config_of_unknown_model_is_not_found(
    server: RunningServer, name: str, version: str
) -> None:
    with pytest.raises(grpc.RpcError) as info:
        _model_config_rpc(server, name, version)
    error: Any = info.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    assert "Request for unknown model" in error.details()


def test_server_metadata_advertises_model_configuration(server: RunningServer) -> None:
    extensions = httpx.get(f"{server.base_url}/v2", timeout=TIMEOUT_S).json()["extensions"]
    assert "model_configuration" in extensions


# -- every runtime ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def every_runtime(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One model per runtime installed here (``make_models.py --all-formats``) and a Python one."""
    root = tmp_path_factory.mktemp("all-formats")
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py"), "--all-formats", str(root)],
        check=True,
        capture_output=True,
    )
    (root / "echo").mkdir()
    (root / "echo" / "model.py").write_text(ECHO)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("all-formats-server")) as running:
        yield running


@pytest.mark.parametrize("name", sorted(RUNTIMES))
def test_config_of_every_runtime(every_runtime: RunningServer, name: str) -> None:
    backend, modules = RUNTIMES[name]
    for module in modules:
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed")
    response = _rest_config(every_runtime, f"/v2/models/{name}/config")
    assert response.status_code == 200, response.text
    config = response.json()
    assert set(config) >= TOP_KEYS
    assert config["name"] == name
    assert config["backend"] == backend
    assert "dynamic_batching" not in config
    metadata = httpx.get(f"{every_runtime.base_url}/v2/models/{name}", timeout=TIMEOUT_S).json()
    assert config["platform"] in ("", metadata["platform"])
    _assert_matches_metadata(config, metadata)
    assert message_to_json(_model_config_rpc(every_runtime, name).config) == config
    client = httpclient.InferenceServerClient(every_runtime.http_url)
    try:
        assert client.get_model_config(name) == config
    finally:
        client.close()
