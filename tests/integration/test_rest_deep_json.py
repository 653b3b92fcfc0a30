"""Deeply nested JSON in any REST body is a 400 naming the problem, never a 500 (issue #11, fix 8).

Every endpoint that reads a body: inference (plain and versioned), repository index, load (its
body and its ``config`` parameter, itself JSON) and unload; and the one JSON a gRPC call carries,
the repository load's ``config`` (INVALID_ARGUMENT). Each refusal happens before anything changes,
so the shared session server is left as it was.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import grpc
import httpx
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.serving import RunningServer

DEPTHS = [150, 5000, 200_000]


@pytest.fixture
def client(server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.base_url, timeout=30.0) as c:
        yield c


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def infer_body(depth: int) -> str:
    data = "[" * depth + "1" + "]" * depth
    return f'{{"inputs":[{{"name":"INPUT0","shape":[1],"datatype":"INT32","data":{data}}}]}}'


def assert_too_deep(reply: httpx.Response) -> None:
    assert reply.status_code == 400, reply.text
    message = reply.json()["error"]
    assert "nested" in message
    assert "recursion" not in message


def assert_still_serving(client: httpx.Client) -> None:
    assert client.get("/v2/health/ready").status_code == 200
    assert client.get("/v2/models/simple/ready").status_code == 200


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize(
    "path", ["/v2/models/identity/infer", "/v2/models/simple/versions/1/infer"]
)
def test_inference(client: httpx.Client, path: str, depth: int) -> None:
    assert_too_deep(client.post(path, content=infer_body(depth)))
    assert_still_serving(client)


@pytest.mark.parametrize("depth", DEPTHS)
def test_inference_unknown_key(client: httpx.Client, depth: int) -> None:
    body = infer_body(1)[:-1] + f',"extra":{nested(depth)}}}'
    reply = client.post("/v2/models/identity/infer", content=body)
    if depth < 1000:  # an unknown key is skipped; shallow enough, the request simply runs
        assert reply.status_code == 200, reply.text
    else:
        assert_too_deep(reply)
    assert_still_serving(client)


@pytest.mark.parametrize("depth", DEPTHS)
@pytest.mark.parametrize(
    "path",
    [
        "/v2/repository/index",
        "/v2/repository/models/simple/load",
        "/v2/repository/models/no-such-model/unload",
    ],
)
def test_repository_bodies(client: httpx.Client, path: str, depth: int) -> None:
    assert_too_deep(client.post(path, content=f'{{"parameters":{nested(depth)}}}'))
    assert_still_serving(client)


@pytest.mark.parametrize("depth", DEPTHS)
def test_repository_load_config_parameter(client: httpx.Client, depth: int) -> None:
    config = f'{{"parameters":{nested(depth)}}}'
    body = json.dumps({"parameters": {"config": config}})
    reply = client.post("/v2/repository/models/simple/load", content=body)
    assert_too_deep(reply)
    assert "config" in reply.json()["error"]
    assert_still_serving(client)


@pytest.mark.parametrize("depth", DEPTHS)
def test_grpc_repository_load_config(server: RunningServer, depth: int) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        with pytest.raises(InferenceServerException) as caught:
            client.load_model("simple", config=f'{{"parameters":{nested(depth)}}}')
        assert caught.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
        assert "nested too deeply" in caught.value.message()
        assert client.is_model_ready("simple")
    finally:
        client.close()
