"""The streaming model contract (decoupled models) on a real server: 0..N responses per request
through ``request.sender``, served over gRPC ``ModelStreamInfer`` (tritonclient.grpc's stream),
refused on unary endpoints with Triton's texts, cancelled when the client goes."""

from __future__ import annotations

import queue
import time
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

COUNTDOWN = '''
import threading

import numpy as np

from oipserve import InferRequest, InferResponse, Model


class Countdown(Model):
    """IN = n: n responses OUT = n-1 ... 0, then the final flag alone; n < 0: an error response
    after one response; the responses of odd n are sent from a thread after infer returned."""

    def infer(self, requests: list[InferRequest]) -> list[None]:
        for request in requests:
            n = int(request.inputs["IN"].reshape(-1)[0])
            if n % 2:
                threading.Thread(target=self._send, args=(request, n)).start()
            else:
                self._send(request, n)
        return [None] * len(requests)

    def _send(self, request: InferRequest, n: int) -> None:
        sender = request.sender
        assert sender is not None
        if n < 0:
            sender.send(InferResponse({"OUT": np.array([0], dtype=np.int32)}))
            sender.send(ValueError("negative count"))
            return
        for i in reversed(range(n)):
            sender.send(InferResponse({"OUT": np.array([i], dtype=np.int32)}))
        sender.send(final=True)
'''

FOREVER = '''
import asyncio
from pathlib import Path

import numpy as np

from oipserve import InferRequest, InferResponse, LoadContext, Model


class Forever(Model):
    """Streams until the client goes (never sends the final flag), then leaves a marker."""

    def load(self, ctx: LoadContext) -> None:
        self.marker = Path(ctx.parameters["marker"])

    async def infer(self, requests: list[InferRequest]) -> list[None]:
        for request in requests:
            asyncio.get_running_loop().create_task(self._stream(request))
        return [None] * len(requests)

    async def _stream(self, request: InferRequest) -> None:
        assert request.sender is not None
        i = 0
        while not request.is_cancelled():
            request.sender.send(InferResponse({"OUT": np.array([i], dtype=np.int32)}))
            i += 1
            await asyncio.sleep(0.01)
        self.marker.write_text("cancelled")
'''

PLAIN = '''
from oipserve import InferRequest, InferResponse, Model


class Plain(Model):
    """An ordinary model under a decoupled config: each answer is its request's final response."""

    def infer(self, requests: list[InferRequest]) -> list[InferResponse]:
        return [InferResponse({"OUT": r.inputs["IN"] * 2}) for r in requests]
'''

TOML = """
backend = "python"
max_batch_size = 0
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


@pytest.fixture(scope="module")
def marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("marker") / "cancelled"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, marker: Path) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("streaming")
    for name, code, extra in (
        ("countdown", COUNTDOWN, ""),
        ("forever", FOREVER, f'[parameters]\nmarker = "{marker}"\n'),
        ("plain", PLAIN, ""),
    ):
        (root / name).mkdir()
        (root / name / "model.py").write_text(code)
        (root / name / "model.toml").write_text(TOML + extra)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("streaming-server")) as running:
        yield running


def _input(value: int) -> list[Any]:
    tensor = grpcclient.InferInput("IN", [1], "INT32")
    tensor.set_data_from_numpy(np.array([value], dtype=np.int32))
    return [tensor]


Result = tuple[Any, InferenceServerException | None]


class Stream:
    def __init__(self, server: RunningServer) -> None:
        self.client = grpcclient.InferenceServerClient(server.grpc_url)
        self.results: queue.Queue[Result] = queue.Queue()
        self.client.start_stream(callback=lambda result, error: self.results.put((result, error)))

    def get(self) -> Result:
        return self.results.get(timeout=TIMEOUT_S)

    def close(self, cancel: bool = False) -> None:
        self.client.stop_stream(cancel_requests=cancel)
        self.client.close()


def _final(result: Any) -> bool:
    return bool(result.get_response().parameters["triton_final_response"].bool_param)


def test_several_responses_then_an_empty_final_one(server: RunningServer) -> None:
    stream = Stream(server)
    try:
        for n in (3, 4):  # odd: sent from a thread after infer returned; even: during infer
            stream.client.async_stream_infer(
                "countdown", _input(n), request_id=f"r{n}", enable_empty_final_response=True
            )
            got = [stream.get() for _ in range(n + 1)]
            assert all(error is None for _, error in got)
            values = [int(r.as_numpy("OUT")[0]) for r, _ in got[:n]]
            assert values == list(reversed(range(n)))
            assert [_final(r) for r, _ in got] == [False] * n + [True]
            assert all(r.get_response().id == f"r{n}" for r, _ in got)
            last = got[-1][0].get_response()
            assert last.model_name == "countdown"
            assert len(last.outputs) == 0
    finally:
        stream.close()


def test_zero_responses(server: RunningServer) -> None:
    stream = Stream(server)
    try:
        # without triton_enable_empty_final_response nothing at all comes back for n = 0
        stream.client.async_stream_infer("countdown", _input(0), request_id="silent")
        stream.client.async_stream_infer(
            "countdown", _input(0), request_id="empty", enable_empty_final_response=True
        )
        result, error = stream.get()
        assert error is None
        assert result.get_response().id == "empty"
        assert _final(result)
        assert len(result.get_response().outputs) == 0
        assert stream.results.empty()
    finally:
        stream.close()


def test_error_response_ends_the_request_and_the_stream_goes_on(server: RunningServer) -> None:
    stream = Stream(server)
    try:
        stream.client.async_stream_infer("countdown", _input(-2), request_id="bad")
        stream.client.async_stream_infer("countdown", _input(2), request_id="good")
        first, error = stream.get()
        assert error is None and int(first.as_numpy("OUT")[0]) == 0
        result, error = stream.get()
        assert result is None and error is not None
        assert "model 'countdown' failed: ValueError: negative count" in error.message()
        got = [stream.get() for _ in range(2)]
        assert [int(r.as_numpy("OUT")[0]) for r, _ in got] == [1, 0]
    finally:
        stream.close()


def test_ordinary_model_under_a_decoupled_config(server: RunningServer) -> None:
    stream = Stream(server)
    try:
        stream.client.async_stream_infer("plain", _input(21), enable_empty_final_response=True)
        result, error = stream.get()
        assert error is None
        assert int(result.as_numpy("OUT")[0]) == 42
        assert _final(result)
    finally:
        stream.close()


def test_unary_inference_is_refused_as_triton_refuses_it(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/v2/models/countdown/infer",
        json={"inputs": [{"name": "IN", "datatype": "INT32", "shape": [1], "data": [1]}]},
    )
    assert response.status_code == 501
    assert response.json() == {
        "error": "HTTP end point doesn't support models with decoupled transaction policy"
    }
    http = httpclient.InferenceServerClient(server.http_url)
    tensor = httpclient.InferInput("IN", [1], "INT32")
    tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
    with pytest.raises(InferenceServerException, match="decoupled transaction policy"):
        http.infer("countdown", [tensor])
    client = grpcclient.InferenceServerClient(server.grpc_url)
    with pytest.raises(InferenceServerException) as caught:
        client.infer("countdown", _input(1))
    assert caught.value.status() == "StatusCode.UNIMPLEMENTED"
    assert caught.value.message() == (
        "ModelInfer RPC doesn't support models with decoupled transaction policy"
    )
    config = client.get_model_config("countdown", as_json=True)["config"]
    assert config["model_transaction_policy"] == {"decoupled": True}


def test_statistics_count_each_request_once(server: RunningServer) -> None:
    http = httpclient.InferenceServerClient(server.http_url)

    def successes() -> int:
        stats = http.get_inference_statistics("countdown")["model_stats"][0]
        return int(stats["inference_stats"]["success"]["count"])

    before = successes()
    stream = Stream(server)
    try:
        stream.client.async_stream_infer(
            "countdown", _input(4), request_id="s", enable_empty_final_response=True
        )
        for _ in range(5):
            stream.get()
    finally:
        stream.close()
    deadline = time.monotonic() + TIMEOUT_S
    while successes() != before + 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert successes() == before + 1


def test_a_stream_that_never_ends_is_cancelled_when_the_client_goes(
    server: RunningServer, marker: Path
) -> None:
    stream = Stream(server)
    stream.client.async_stream_infer("forever", _input(0), request_id="f")
    for _ in range(3):
        result, error = stream.get()
        assert error is None and not _final(result)
    stream.close(cancel=True)
    deadline = time.monotonic() + TIMEOUT_S
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert marker.exists(), server.log()[-3000:]
    assert marker.read_text() == "cancelled"
    # the server is unharmed
    other = Stream(server)
    try:
        other.client.async_stream_infer("plain", _input(1))
        result, error = other.get()
        assert error is None and int(result.as_numpy("OUT")[0]) == 2
    finally:
        other.close()
