"""Dynamic batching, queue limits, deadlines and the statistics extension, over real HTTP."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

from tests.serving import EXAMPLES, RunningServer, serve

SLOW_MODEL = """
import time

import numpy as np
import oipserve


class Slow(oipserve.Model):
    '''Doubles its input; each call takes 30 ms, so requests queue up while it runs.'''

    def infer(self, requests):
        time.sleep(0.03)
        return [oipserve.InferResponse({"y": r.inputs["x"] * 2}) for r in requests]
"""

SLOW_CONFIG = """
backend = "python"
max_batch_size = 16
[[input]]
name = "x"
data_type = "TYPE_FP32"
dims = [2]
[[output]]
name = "y"
data_type = "TYPE_FP32"
dims = [2]
[dynamic_batching]
max_queue_delay_microseconds = 1000
[dynamic_batching.default_queue_policy]
max_queue_size = {queue}
"""


def _slow_model(root: Path, name: str, queue: int) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "model.toml").write_text(SLOW_CONFIG.format(queue=queue))
    (root / name / "1" / "model.py").write_text(SLOW_MODEL)


@pytest.fixture(scope="module")
def batching_server(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("batching-repo")
    shutil.copytree(EXAMPLES / "iris", root / "iris")
    # the example serves predict alone; here both outputs, to batch requests that differ in them
    with (root / "iris" / "model.toml").open("a") as config:
        config.write('\n[[output]]\nname = "predict_proba"\ndata_type = "TYPE_FP64"\ndims = [3]\n')
    _slow_model(root, "slow", queue=1000)
    _slow_model(root, "tiny_queue", queue=2)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("batching-log")) as running:
        yield running


def _body(value: float, rows: int = 1, **extra: Any) -> dict[str, Any]:
    return {
        "inputs": [
            {"name": "x", "shape": [rows, 2], "datatype": "FP32", "data": [value, -value] * rows}
        ],
        **extra,
    }


async def _concurrent(url: str, model: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(bodies))
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as client:
        return await asyncio.gather(
            *(client.post(f"/v2/models/{model}/infer", json=body) for body in bodies)
        )


def _stats(url: str, model: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/v2/models/{model}/stats")
    assert response.status_code == 200
    (entry,) = response.json()["model_stats"]
    assert isinstance(entry, dict)
    return entry


def test_batches_form_under_load_and_split_exactly(batching_server: RunningServer) -> None:
    url = batching_server.base_url
    before = _stats(url, "slow")
    bodies = [_body(float(i)) for i in range(40)]
    responses = asyncio.run(_concurrent(url, "slow", bodies))
    for i, response in enumerate(responses):
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [2.0 * i, -2.0 * i]
    after = _stats(url, "slow")
    assert after["inference_count"] - before["inference_count"] == 40
    executions = after["execution_count"] - before["execution_count"]
    assert 0 < executions < 40, "requests that queued while the model ran must share a call"
    assert max(b["batch_size"] for b in after["batch_stats"]) > 1
    assert sum(b["batch_size"] * b["compute_infer"]["count"] for b in after["batch_stats"]) >= 40
    success = after["inference_stats"]["success"]["count"]
    assert success - before["inference_stats"]["success"]["count"] == 40
    assert after["inference_stats"]["queue"]["count"] == success


def test_statistics_shape_for_perf_analyzer(batching_server: RunningServer) -> None:
    httpx.post(
        f"{batching_server.base_url}/v2/models/iris/infer",
        json={
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [1, 4],
                    "datatype": "FP32",
                    "data": [5.1, 3.5, 1.4, 0.2],
                }
            ]
        },
    )
    body = httpx.get(f"{batching_server.base_url}/v2/models/stats").json()
    names = sorted(entry["name"] for entry in body["model_stats"])
    assert names == ["iris", "slow", "tiny_queue"]
    iris = next(e for e in body["model_stats"] if e["name"] == "iris")
    assert iris["version"] == "1"
    for key in (
        "success",
        "fail",
        "queue",
        "compute_input",
        "compute_infer",
        "compute_output",
        "cache_hit",
        "cache_miss",
    ):
        assert set(iris["inference_stats"][key]) == {"count", "ns"}
    assert iris["inference_count"] >= 1
    assert iris["last_inference"] > 0
    versioned = httpx.get(f"{batching_server.base_url}/v2/models/iris/versions/1/stats")
    assert versioned.json()["model_stats"][0]["name"] == "iris"
    missing = httpx.get(f"{batching_server.base_url}/v2/models/ghost/stats")
    assert missing.status_code == 404
    client = httpclient.InferenceServerClient(batching_server.http_url)
    stats = client.get_inference_statistics("iris")
    assert stats["model_stats"][0]["name"] == "iris"
    client.close()


def test_full_queue_answers_503_at_once(batching_server: RunningServer) -> None:
    bodies = [_body(1.0) for _ in range(12)]
    responses = asyncio.run(_concurrent(batching_server.base_url, "tiny_queue", bodies))
    statuses = [r.status_code for r in responses]
    assert 200 in statuses
    rejected = [r for r in responses if r.status_code == 503]
    assert rejected, statuses
    assert rejected[0].headers["retry-after"] == "1"
    assert "queue" in rejected[0].json()["error"]
    # and the model keeps serving
    again = httpx.post(f"{batching_server.base_url}/v2/models/tiny_queue/infer", json=_body(3.0))
    assert again.status_code == 200


def test_request_timeout_drops_queued_work(batching_server: RunningServer) -> None:
    url = batching_server.base_url
    # keep the model busy with big requests, then send one with a 1 ms deadline
    busy = [_body(1.0, rows=16) for _ in range(4)]
    late = _body(5.0, parameters={"timeout": 1000})

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            tasks = [
                asyncio.create_task(client.post("/v2/models/slow/infer", json=b)) for b in busy
            ]
            await asyncio.sleep(0.005)
            late_response = await client.post("/v2/models/slow/infer", json=late)
            return [late_response, *await asyncio.gather(*tasks)]

    late_response, *others = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in others)
    assert late_response.status_code == 503
    assert "timeout" in late_response.json()["error"]


def test_priority_and_timeout_parameters_are_validated(batching_server: RunningServer) -> None:
    url = f"{batching_server.base_url}/v2/models/slow/infer"
    ok = httpx.post(url, json=_body(1.0, parameters={"priority": 1, "timeout": 10_000_000}))
    assert ok.status_code == 200
    bad = httpx.post(url, json=_body(1.0, parameters={"priority": "high"}))
    assert bad.status_code == 400
    assert "priority" in bad.json()["error"]


def test_iris_batched_results_equal_unbatched(batching_server: RunningServer) -> None:
    rows = np.random.default_rng(0).uniform(0.1, 7.0, size=(24, 4)).astype(np.float32)
    bodies = [
        {
            "inputs": [
                {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": row.tolist()}
            ],
            "outputs": [{"name": "predict_proba"}] if i % 2 else [],
        }
        for i, row in enumerate(rows)
    ]
    batched = asyncio.run(_concurrent(batching_server.base_url, "iris", bodies))
    together = httpx.post(
        f"{batching_server.base_url}/v2/models/iris/infer",
        json={
            "inputs": [
                {
                    "name": "input-0",
                    "shape": [24, 4],
                    "datatype": "FP32",
                    "data": rows.ravel().tolist(),
                }
            ],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}],
        },
    ).json()
    labels = together["outputs"][0]["data"]
    proba = np.array(together["outputs"][1]["data"]).reshape(24, 3)
    for i, response in enumerate(batched):
        outputs = response.json()["outputs"]
        if i % 2:
            assert [o["name"] for o in outputs] == ["predict_proba"]
            np.testing.assert_allclose(outputs[0]["data"], proba[i])
        else:  # no outputs named: every output of the metadata
            assert [o["name"] for o in outputs] == ["predict", "predict_proba"]
            assert outputs[0]["data"] == [labels[i]]
            np.testing.assert_allclose(outputs[1]["data"], proba[i])


def test_client_that_disconnects_while_queued_is_dropped(batching_server: RunningServer) -> None:
    url = batching_server.base_url
    before = _stats(url, "slow")
    busy = [_body(1.0, rows=16) for _ in range(3)]
    payload = json.dumps(_body(7.0)).encode()

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, timeout=30) as client:
            tasks = [
                asyncio.create_task(client.post("/v2/models/slow/infer", json=b)) for b in busy
            ]
            await asyncio.sleep(0.03)  # the busy requests are in (they take 3 x 30 ms)
            with socket.create_connection(("127.0.0.1", batching_server.http_port)) as sock:
                sock.sendall(
                    b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Length: "
                    + str(len(payload)).encode()
                    + b"\r\n\r\n"
                    + payload
                )
                await asyncio.sleep(0.01)
            # queued behind the abandoned request: once it is answered, the abandoned one
            # would have run too, had it stayed in the queue
            sentinel = await client.post("/v2/models/slow/infer", json=_body(2.0))
            return [sentinel, *await asyncio.gather(*tasks)]

    responses = asyncio.run(scenario())
    assert all(r.status_code == 200 for r in responses)
    after = _stats(url, "slow")
    # the 3 x 16 rows of the busy requests and the sentinel ran; the abandoned request never did
    assert after["inference_count"] - before["inference_count"] == 49


def test_batches_form_over_grpc_and_statistics_rpc(batching_server: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(batching_server.grpc_url)
    before = client.get_inference_statistics("slow", as_json=True)["model_stats"][0]
    results: list[Any] = []

    def done(result: Any, error: Any) -> None:
        results.append(error if error is not None else result.as_numpy("y"))

    for i in range(24):
        tensor = grpcclient.InferInput("x", [1, 2], "FP32")
        tensor.set_data_from_numpy(np.array([[i, -i]], dtype=np.float32))
        client.async_infer("slow", [tensor], done)
    deadline = time.monotonic() + 30
    while len(results) < 24 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(results) == 24
    assert all(isinstance(r, np.ndarray) for r in results), results
    after = client.get_inference_statistics("slow", as_json=True)["model_stats"][0]
    client.close()
    count = int(after["inference_count"]) - int(before.get("inference_count", 0))
    executions = int(after["execution_count"]) - int(before.get("execution_count", 0))
    assert count == 24
    assert 0 < executions < 24
    assert max(int(b["batch_size"]) for b in after["batch_stats"]) > 1
