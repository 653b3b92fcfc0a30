"""Triton Python-backend models run unchanged: the shapes of Triton's python_backend examples
(add_sub, auto_complete, bls sync/async, decoupled square_int, PyTorch inside execute),
their failure cases, through tritonclient.http and tritonclient.grpc (streaming).

Configs are ``model.toml`` files with Triton's fields until the ``config.pbtxt`` reader lands;
``backend = "python"`` (Triton's spelling) and ``backend = "triton_python"`` both select the
Python backend for a ``model.py`` defining ``TritonPythonModel``.
"""

from __future__ import annotations

import json
import queue
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import RunningServer, serve

TIMEOUT_S = 30.0

# python_backend examples/add_sub/model.py, as published
ADD_SUB = """
import json

import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = model_config = json.loads(args["model_config"])
        output0_config = pb_utils.get_output_config_by_name(model_config, "OUTPUT0")
        output1_config = pb_utils.get_output_config_by_name(model_config, "OUTPUT1")
        self.output0_dtype = pb_utils.triton_string_to_numpy(output0_config["data_type"])
        self.output1_dtype = pb_utils.triton_string_to_numpy(output1_config["data_type"])

    def execute(self, requests):
        output0_dtype = self.output0_dtype
        output1_dtype = self.output1_dtype
        responses = []
        for request in requests:
            in_0 = pb_utils.get_input_tensor_by_name(request, "INPUT0")
            in_1 = pb_utils.get_input_tensor_by_name(request, "INPUT1")
            out_0, out_1 = (
                in_0.as_numpy() + in_1.as_numpy(),
                in_0.as_numpy() - in_1.as_numpy(),
            )
            out_tensor_0 = pb_utils.Tensor("OUTPUT0", out_0.astype(output0_dtype))
            out_tensor_1 = pb_utils.Tensor("OUTPUT1", out_1.astype(output1_dtype))
            inference_response = pb_utils.InferenceResponse(
                output_tensors=[out_tensor_0, out_tensor_1]
            )
            responses.append(inference_response)
        return responses

    def finalize(self):
        print("Cleaning up...")
"""

ADD_SUB_TOML = """
backend = "{backend}"
[[input]]
name = "INPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[input]]
name = "INPUT1"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT1"
data_type = "TYPE_FP32"
dims = [4]
[[instance_group]]
kind = "KIND_CPU"
count = 2
"""

# python_backend examples/auto_complete/model.py (the batching variant)
AUTO_COMPLETE = """
import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    @staticmethod
    def auto_complete_config(auto_complete_model_config):
        inputs = [{"name": "INPUT0", "data_type": "TYPE_FP32", "dims": [4]},
                  {"name": "INPUT1", "data_type": "TYPE_FP32", "dims": [4]}]
        outputs = [{"name": "OUTPUT0", "data_type": "TYPE_FP32", "dims": [4]},
                   {"name": "OUTPUT1", "data_type": "TYPE_FP32", "dims": [4]}]
        config = auto_complete_model_config.as_dict()
        input_names = [i["name"] for i in config["input"]]
        output_names = [o["name"] for o in config["output"]]
        for input in inputs:
            if input["name"] not in input_names:
                auto_complete_model_config.add_input(input)
        for output in outputs:
            if output["name"] not in output_names:
                auto_complete_model_config.add_output(output)
        auto_complete_model_config.set_max_batch_size(4)
        auto_complete_model_config.set_dynamic_batching()
        return auto_complete_model_config

    def execute(self, requests):
        responses = []
        for request in requests:
            a = pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()
            b = pb_utils.get_input_tensor_by_name(request, "INPUT1").as_numpy()
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("OUTPUT0", a + b), pb_utils.Tensor("OUTPUT1", a - b)]))
        return responses
"""

# python_backend examples/decoupled/square_model.py, shortened (threads as in the example)
SQUARE = """
import json
import threading

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.model_config = model_config = json.loads(args["model_config"])
        if not pb_utils.using_decoupled_model_transaction_policy(model_config):
            raise pb_utils.TritonModelException(
                "model '{}' requires decoupled transaction policy".format(args["model_name"]))
        out_config = pb_utils.get_output_config_by_name(model_config, "OUT")
        self.out_dtype = pb_utils.triton_string_to_numpy(out_config["data_type"])
        self.inflight = 0
        self.lock = threading.Lock()

    def execute(self, requests):
        for request in requests:
            self.process_request(request)
        return None

    def process_request(self, request):
        in_input = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
        thread = threading.Thread(
            target=self.response_thread,
            args=(request.get_response_sender(), in_input[0]),
        )
        thread.daemon = True
        with self.lock:
            self.inflight += 1
        thread.start()

    def response_thread(self, response_sender, in_input):
        for idx in range(in_input):
            out_output = pb_utils.Tensor("OUT", np.array([in_input], self.out_dtype))
            response_sender.send(pb_utils.InferenceResponse(output_tensors=[out_output]))
        response_sender.send(flags=pb_utils.TRITONSERVER_RESPONSE_COMPLETE_FINAL)
        with self.lock:
            self.inflight -= 1
"""

SQUARE_TOML = """
backend = "python"
[model_transaction_policy]
decoupled = true
[[input]]
name = "IN"
data_type = "TYPE_INT32"
dims = [1]
[[output]]
name = "OUT"
data_type = "TYPE_INT32"
dims = [1]
"""

# python_backend examples/bls/sync_model.py and async_model.py, the same shape: MODEL_NAME picks
# the model to call with INPUT0 / INPUT1; the async one runs two calls at once
BLS_SYNC = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            model_name = pb_utils.get_input_tensor_by_name(request, "MODEL_NAME").as_numpy()
            name = model_name[0].decode()
            infer_request = pb_utils.InferenceRequest(
                model_name=name,
                requested_output_names=["OUTPUT0", "OUTPUT1"],
                inputs=[pb_utils.get_input_tensor_by_name(request, "INPUT0"),
                        pb_utils.get_input_tensor_by_name(request, "INPUT1")])
            infer_response = infer_request.exec()
            if infer_response.has_error():
                raise pb_utils.TritonModelException(infer_response.error().message())
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.get_output_tensor_by_name(infer_response, "OUTPUT0"),
                pb_utils.get_output_tensor_by_name(infer_response, "OUTPUT1")]))
        return responses
"""

BLS_ASYNC = """
import asyncio

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    async def execute(self, requests):
        responses = []
        for request in requests:
            name = pb_utils.get_input_tensor_by_name(request, "MODEL_NAME").as_numpy()[0].decode()
            inputs = [pb_utils.get_input_tensor_by_name(request, "INPUT0"),
                      pb_utils.get_input_tensor_by_name(request, "INPUT1")]
            calls = [pb_utils.InferenceRequest(model_name=name, inputs=inputs,
                                               requested_output_names=["OUTPUT0", "OUTPUT1"])
                     for _ in range(2)]
            first, second = await asyncio.gather(*(c.async_exec() for c in calls))
            for r in (first, second):
                if r.has_error():
                    raise pb_utils.TritonModelException(r.error().message())
            # the decoupled square model through BLS: the sum of what it streams
            n = int(pb_utils.get_input_tensor_by_name(request, "INPUT0").as_numpy()[0])
            square = pb_utils.InferenceRequest(
                model_name="square_int", requested_output_names=["OUT"],
                inputs=[pb_utils.Tensor("IN", np.array([n], np.int32))])
            total = 0
            async for part in await square.async_exec(decoupled=True):
                if part.has_error():
                    raise pb_utils.TritonModelException(part.error().message())
                out = pb_utils.get_output_tensor_by_name(part, "OUT")
                if out is not None:
                    total += int(out.as_numpy()[0])
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.get_output_tensor_by_name(first, "OUTPUT0"),
                pb_utils.get_output_tensor_by_name(second, "OUTPUT1"),
                pb_utils.Tensor("SQUARES", np.array([total], np.int32))]))
        return responses
"""

BLS_TOML = """
backend = "python"
[[input]]
name = "MODEL_NAME"
data_type = "TYPE_STRING"
dims = [1]
[[input]]
name = "INPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[input]]
name = "INPUT1"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT1"
data_type = "TYPE_FP32"
dims = [4]
"""

BLS_ASYNC_TOML = (
    BLS_TOML
    + """
[[output]]
name = "SQUARES"
data_type = "TYPE_INT32"
dims = [1]
"""
)

# a PyTorch model inside execute (python_backend examples/pytorch/model.py's shape)
TORCH = """
import numpy as np
import torch
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        torch.manual_seed(0)
        self.net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=-1)).eval()

    def execute(self, requests):
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "INPUT0")
            with torch.no_grad():
                y = self.net(torch.from_dlpack(x.to_dlpack()))
            out = pb_utils.Tensor.from_dlpack("OUTPUT0", torch.utils.dlpack.to_dlpack(y))
            responses.append(pb_utils.InferenceResponse(output_tensors=[out]))
        return responses
"""

TORCH_TOML = """
backend = "triton_python"
max_batch_size = 8
[[input]]
name = "INPUT0"
data_type = "TYPE_FP32"
dims = [4]
[[output]]
name = "OUTPUT0"
data_type = "TYPE_FP32"
dims = [3]
"""

# what Triton passes to initialize, echoed back; failures of every kind
ARGS = """
import json

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.args = args

    def execute(self, requests):
        responses = []
        for request in requests:
            mode = pb_utils.get_input_tensor_by_name(request, "MODE").as_numpy()[0].decode()
            if mode == "raise":
                raise ValueError("execute was told to raise")
            if mode == "error":
                responses.append(pb_utils.InferenceResponse(
                    output_tensors=[],
                    error=pb_utils.TritonError("bad mode", pb_utils.TritonError.INVALID_ARG)))
                continue
            if mode == "short":
                return []
            if mode == "self":
                call = pb_utils.InferenceRequest(
                    model_name="args", requested_output_names=["ARGS"],
                    inputs=[pb_utils.get_input_tensor_by_name(request, "MODE")])
                result = call.exec()
                raise pb_utils.TritonModelException(result.error().message())
            if mode == "decoupled":
                call = pb_utils.InferenceRequest(
                    model_name="square_int", requested_output_names=["OUT"],
                    inputs=[pb_utils.Tensor("IN", np.array([2], np.int32))])
                result = call.exec()
                raise pb_utils.TritonModelException(result.error().message())
            if mode == "missing":
                pb_utils.get_model_dir()
            info = dict(self.args)
            info["parameters"] = request.parameters()
            info["request_id"] = request.request_id()
            info["requested"] = request.requested_output_names()
            info["ready"] = pb_utils.is_model_ready("add_sub")
            responses.append(pb_utils.InferenceResponse(output_tensors=[
                pb_utils.Tensor("ARGS", np.array([json.dumps(info).encode()], dtype=np.object_))]))
        return responses
"""

ARGS_TOML = """
backend = "python"
[[input]]
name = "MODE"
data_type = "TYPE_STRING"
dims = [1]
[[output]]
name = "ARGS"
data_type = "TYPE_STRING"
dims = [1]
"""

BROKEN_INIT = """
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        raise pb_utils.TritonModelException("the weights file is missing")

    def execute(self, requests):
        return []
"""


def _write(root: Path, name: str, code: str, toml: str) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "1" / "model.py").write_text(code)
    (root / name / "model.toml").write_text(toml)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("triton-python")
    _write(root, "add_sub", ADD_SUB, ADD_SUB_TOML.format(backend="python"))
    _write(root, "add_sub_key", ADD_SUB, ADD_SUB_TOML.format(backend="triton_python"))
    process = ADD_SUB_TOML.format(backend="python") + '[parameters]\nexecution = "process"\n'
    _write(root, "add_sub_process", ADD_SUB, process)
    _write(root, "bls_process", BLS_SYNC, BLS_TOML + '[parameters]\nexecution = "process"\n')
    _write(root, "auto_complete", AUTO_COMPLETE, 'backend = "python"\n')
    _write(root, "square_int", SQUARE, SQUARE_TOML)
    _write(root, "bls_sync", BLS_SYNC, BLS_TOML)
    _write(root, "bls_async", BLS_ASYNC, BLS_ASYNC_TOML)
    _write(root, "torch_model", TORCH, TORCH_TOML)
    _write(root, "args", ARGS, ARGS_TOML)
    _write(root, "broken_init", BROKEN_INIT, 'backend = "python"\n')
    tmp = tmp_path_factory.mktemp("triton-python-server")
    with serve(root, "--strict-readiness=false", tmp_dir=tmp) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: RunningServer) -> Iterator[httpclient.InferenceServerClient]:
    client = httpclient.InferenceServerClient(server.http_url)
    yield client
    client.close()


@pytest.fixture(scope="module")
def grpc(server: RunningServer) -> Iterator[grpcclient.InferenceServerClient]:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    yield client
    client.close()


def _inputs(module: Any, arrays: dict[str, np.ndarray], binary: bool = True) -> list[Any]:
    tensors = []
    for name, array in arrays.items():
        datatype = (
            "BYTES"
            if array.dtype == np.object_
            else {
                np.dtype(np.float32): "FP32",
                np.dtype(np.int32): "INT32",
            }[array.dtype]
        )
        tensor = module.InferInput(name, list(array.shape), datatype)
        if module is httpclient:
            tensor.set_data_from_numpy(array, binary_data=binary)
        else:
            tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    return tensors


A = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
B = np.array([0.5, 0.25, 2.0, -1.0], dtype=np.float32)


@pytest.mark.parametrize("model", ["add_sub", "add_sub_key", "add_sub_process"])
def test_add_sub_over_http_and_grpc(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient, model: str
) -> None:
    for client, module in ((http, httpclient), (grpc, grpcclient)):
        result = client.infer(model, _inputs(module, {"INPUT0": A, "INPUT1": B}))
        np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
        np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), A - B)
    metadata = http.get_model_metadata(model)
    assert [i["name"] for i in metadata["inputs"]] == ["INPUT0", "INPUT1"]
    assert metadata["platform"] == "python"
    assert http.get_model_config(model)["backend"] == "python"


def test_auto_complete_fills_the_config(
    http: httpclient.InferenceServerClient, grpc: grpcclient.InferenceServerClient
) -> None:
    config = http.get_model_config("auto_complete")
    assert config["max_batch_size"] == 4
    assert "dynamic_batching" in config
    assert [(i["name"], i["data_type"], i["dims"]) for i in config["input"]] == [
        ("INPUT0", "TYPE_FP32", [4]),
        ("INPUT1", "TYPE_FP32", [4]),
    ]
    assert [o["name"] for o in config["output"]] == ["OUTPUT0", "OUTPUT1"]
    batch = np.stack([A, B])
    result = grpc.infer("auto_complete", _inputs(grpcclient, {"INPUT0": batch, "INPUT1": batch}))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), batch + batch)


def _name(model: str) -> np.ndarray:
    return np.array([model.encode()], dtype=np.object_)


def test_bls_sync(http: httpclient.InferenceServerClient) -> None:
    arrays = {"MODEL_NAME": _name("add_sub"), "INPUT0": A, "INPUT1": B}
    result = http.infer("bls_sync", _inputs(httpclient, arrays))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), A + B)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), A - B)
    # the callee's statistics count the BLS call
    stats = http.get_inference_statistics("add_sub")["model_stats"][0]
    assert stats["inference_stats"]["success"]["count"] >= 1
    arrays["MODEL_NAME"] = _name("no_such_model")
    with pytest.raises(InferenceServerException, match="no_such_model"):
        http.infer("bls_sync", _inputs(httpclient, arrays))


def test_bls_from_a_process_instance_is_refused_clearly(
    http: httpclient.InferenceServerClient,
) -> None:
    arrays = {"MODEL_NAME": _name("add_sub"), "INPUT0": A, "INPUT1": B}
    with pytest.raises(InferenceServerException, match="runs without a server connection"):
        http.infer("bls_process", _inputs(httpclient, arrays))


def test_bls_async_with_a_decoupled_callee(grpc: grpcclient.InferenceServerClient) -> None:
    a = np.array([3.0, 1.0, 0.0, 0.0], dtype=np.float32)
    arrays = {"MODEL_NAME": _name("add_sub"), "INPUT0": a, "INPUT1": B}
    result = grpc.infer("bls_async", _inputs(grpcclient, arrays))
    np.testing.assert_array_equal(result.as_numpy("OUTPUT0"), a + B)
    np.testing.assert_array_equal(result.as_numpy("OUTPUT1"), a - B)
    assert int(result.as_numpy("SQUARES")[0]) == 3 * 3  # square_int streamed [3] three times


def _stream(server: RunningServer, n: int, empty_final: bool) -> list[tuple[Any, Any]]:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    results: queue.Queue[tuple[Any, Any]] = queue.Queue()
    client.start_stream(callback=lambda result, error: results.put((result, error)))
    try:
        client.async_stream_infer(
            "square_int",
            _inputs(grpcclient, {"IN": np.array([n], dtype=np.int32)}),
            request_id=f"n{n}",
            enable_empty_final_response=empty_final,
        )
        client.async_stream_infer(  # a second request, always answered: nothing is stuck
            "add_sub", _inputs(grpcclient, {"INPUT0": A, "INPUT1": B}), request_id="after"
        )
        got = []
        while True:
            result, error = results.get(timeout=TIMEOUT_S)
            got.append((result, error))
            if error is None and result.get_response().id == "after":
                return got
    finally:
        client.stop_stream()
        client.close()


def test_decoupled_square_several_responses(server: RunningServer) -> None:
    got = _stream(server, 4, empty_final=True)
    square = [(r, e) for r, e in got if r.get_response().id == "n4"]
    assert all(e is None for _, e in square)
    assert [int(r.as_numpy("OUT")[0]) for r, _ in square[:4]] == [4, 4, 4, 4]
    finals = [r.get_response().parameters["triton_final_response"].bool_param for r, _ in square]
    assert finals == [False, False, False, False, True]
    assert len(square[4][0].get_response().outputs) == 0


def test_decoupled_square_zero_responses(server: RunningServer) -> None:
    got = _stream(server, 0, empty_final=False)
    assert [r.get_response().id for r, _ in got] == ["after"]
    got = _stream(server, 0, empty_final=True)
    ids = [r.get_response().id for r, _ in got]
    assert sorted(ids) == ["after", "n0"]


def test_decoupled_unary_is_refused(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/v2/models/square_int/infer",
        json={"inputs": [{"name": "IN", "datatype": "INT32", "shape": [1], "data": [2]}]},
    )
    assert response.status_code == 501
    assert "decoupled transaction policy" in response.json()["error"]


def test_pytorch_inside_execute(http: httpclient.InferenceServerClient) -> None:
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Softmax(dim=-1)).eval()
    batch = np.stack([A, B])
    with torch.no_grad():
        expected = net(torch.from_numpy(batch)).numpy()
    result = http.infer("torch_model", _inputs(httpclient, {"INPUT0": batch}))
    np.testing.assert_allclose(result.as_numpy("OUTPUT0"), expected, rtol=1e-6)


def _args_call(http: httpclient.InferenceServerClient, mode: str) -> Any:
    tensors = _inputs(httpclient, {"MODE": _name(mode)})
    return http.infer("args", tensors, request_id="r-7", parameters={"temperature": 0.5})


def test_initialize_args_and_request_accessors(http: httpclient.InferenceServerClient) -> None:
    result = _args_call(http, "echo")
    info = json.loads(result.as_numpy("ARGS")[0])
    assert info["model_name"] == "args"
    assert info["model_version"] == "1"
    assert info["model_instance_kind"] == "CPU"
    assert info["model_instance_name"] == "args_0_0"
    assert info["model_instance_device_id"] == "0"
    assert Path(info["model_repository"]).name == "args"
    config = json.loads(info["model_config"])
    assert config["name"] == "args"
    assert config["input"][0]["name"] == "MODE"
    assert json.loads(info["parameters"]) == {"temperature": 0.5}
    assert info["request_id"] == "r-7"
    assert info["ready"] is True
    assert all(isinstance(v, str) for k, v in info.items() if k.startswith("model_"))


def test_failures_answer_with_their_message_and_the_server_goes_on(
    http: httpclient.InferenceServerClient, server: RunningServer
) -> None:
    with pytest.raises(InferenceServerException) as caught:
        _args_call(http, "raise")
    assert caught.value.status() == "500"
    assert "ValueError: execute was told to raise" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        _args_call(http, "error")
    assert caught.value.status() == "400"
    assert "bad mode" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        _args_call(http, "short")
    assert caught.value.status() == "500"
    assert "model 'args'" in caught.value.message()
    assert "0 responses for 1 requests" in caught.value.message()
    with pytest.raises(InferenceServerException, match="may not call itself"):
        _args_call(http, "self")
    with pytest.raises(InferenceServerException, match="decoupled"):
        _args_call(http, "decoupled")
    with pytest.raises(InferenceServerException, match="get_model_dir is not provided"):
        _args_call(http, "missing")
    assert json.loads(_args_call(http, "echo").as_numpy("ARGS")[0])["request_id"] == "r-7"
    # a model whose initialize raises: not ready, with its message
    ready = httpx.get(f"{server.base_url}/v2/models/broken_init/ready")
    assert ready.status_code != 200
    assert "the weights file is missing" in ready.text
    with pytest.raises(InferenceServerException, match="the weights file is missing"):
        http.infer("broken_init", _inputs(httpclient, {"MODE": _name("echo")}))
