"""``tritonclient.http.aio`` against a real server, which responses are compressed, and large
binary answers (sent chunk by chunk).

aiohttp sends ``Accept-Encoding: gzip, deflate`` on its own, and the aio client reads every answer
but inference undecoded: only inference responses may be compressed (Triton's rule).
"""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient
import tritonclient.http.aio as aioclient

from tests.serving import RunningServer

GZIP = {"Accept-Encoding": "gzip, deflate"}


def test_aio_client_reads_every_extension(server: RunningServer) -> None:
    async def scenario() -> None:
        async with aioclient.InferenceServerClient(server.http_url) as client:
            assert await client.is_server_live()
            assert await client.is_server_ready()
            assert await client.is_model_ready("simple")
            assert (await client.get_server_metadata())["name"] == "oipserve"
            assert (await client.get_model_metadata("simple"))["name"] == "simple"
            assert (await client.get_model_config("simple"))["max_batch_size"] == 8
            stats = await client.get_inference_statistics("simple")
            assert stats["model_stats"][0]["name"] == "simple"
            everything = await client.get_inference_statistics()
            assert any(m["name"] == "iris" for m in everything["model_stats"])
            index = await client.get_model_repository_index()
            assert {"name": "simple", "version": "1", "state": "READY"} in index

            a = np.arange(16, dtype=np.int32).reshape(1, 16)
            inputs = [aioclient.InferInput(f"INPUT{i}", [1, 16], "INT32") for i in (0, 1)]
            inputs[0].set_data_from_numpy(a)
            inputs[1].set_data_from_numpy(a)
            for algorithm in (None, "gzip", "deflate"):
                result = await client.infer(
                    "simple", inputs, response_compression_algorithm=algorithm
                )
                output = result.as_numpy("OUTPUT0")
                assert output is not None
                assert np.array_equal(output, a + a)

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "path",
    [
        "/v2",
        "/v2/health/ready",
        "/v2/models/simple",
        "/v2/models/stats",
        "/v2/models/simple/config",
    ],
)
def test_other_answers_are_never_compressed(server: RunningServer, path: str) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        reply = client.get(path, headers=GZIP)
        assert reply.status_code == 200
        assert "content-encoding" not in reply.headers
        reply.json()  # plain JSON


def test_repository_answers_are_never_compressed(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        index = client.post("/v2/repository/index", headers=GZIP, json={})
        assert index.status_code == 200
        assert "content-encoding" not in index.headers
        missing = client.get("/v2/models/nothing", headers=GZIP)
        assert missing.status_code == 404
        assert "content-encoding" not in missing.headers


def test_inference_answers_are_compressed_when_asked(server: RunningServer) -> None:
    row = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
    body = {"inputs": [row]}
    with httpx.Client(base_url=server.base_url) as client:
        reply = client.post("/v2/models/iris/infer", json=body, headers=GZIP)
        assert reply.headers["content-encoding"] == "gzip"
        assert reply.json()["outputs"][0]["name"] == "predict"  # httpx inflated it
        plain = client.post("/v2/models/iris/infer", json=body, headers={"Accept-Encoding": ""})
        assert "content-encoding" not in plain.headers
        assert plain.json() == reply.json()


@pytest.mark.parametrize("algorithm", [None, "gzip", "deflate"])
def test_large_binary_outputs_round_trip(server: RunningServer, algorithm: str | None) -> None:
    """Several megabytes of binary outputs: sent chunk by chunk (and compressed chunk by chunk)."""
    rng = np.random.default_rng(1)
    tensors = [rng.standard_normal((512, 1024)).astype(np.float32) for _ in range(2)]
    inputs = []
    for index, array in enumerate(tensors):
        tensor = httpclient.InferInput(f"INPUT{index}", list(array.shape), "FP32")
        tensor.set_data_from_numpy(array)
        inputs.append(tensor)
    client = httpclient.InferenceServerClient(server.http_url, network_timeout=120.0)
    try:
        result = client.infer("identity", inputs, response_compression_algorithm=algorithm)
    finally:
        client.close()
    for index, array in enumerate(tensors):
        np.testing.assert_array_equal(result.as_numpy(f"OUTPUT{index}"), array)
