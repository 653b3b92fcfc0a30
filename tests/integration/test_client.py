"""oipserve.client against a real oipserve: REST and gRPC, sync and async, one set of checks."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import numpy as np
import pytest

from oipserve import errors
from oipserve.client import AsyncClient, Client, ConnectError, IndexEntry
from tests.serving import RunningServer, free_port, serve

IRIS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]], dtype=np.float32)
WIRES = ["rest", "grpc"]


def _url(server: RunningServer, wire: str) -> str:
    return server.base_url if wire == "rest" else f"grpc://{server.grpc_url}"


@pytest.fixture(params=WIRES)
def client(request: pytest.FixtureRequest, server: RunningServer) -> Iterator[Client]:
    with Client(_url(server, request.param)) as c:
        yield c


def test_health_and_metadata(client: Client) -> None:
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("iris")
    assert not client.is_model_ready("no-such-model")
    server = client.server_metadata()
    assert server.name == "oipserve"
    assert "binary_tensor_data" in server.extensions
    iris = client.model_metadata("iris")
    assert iris.versions == ["1"]
    assert [(t.name, t.datatype, t.shape) for t in iris.inputs] == [("input-0", "FP32", [-1, 4])]


def test_infer_iris(client: Client) -> None:
    result = client.infer("iris", {"input-0": IRIS}, id="req-1")
    assert (result.model_name, result.model_version, result.id) == ("iris", "1", "req-1")
    np.testing.assert_array_equal(result["predict"], [0, 2])
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    selected = client.infer("simple", {"INPUT0": a, "INPUT1": a}, ["OUTPUT1"])
    assert list(selected) == ["OUTPUT1"]
    np.testing.assert_array_equal(selected["OUTPUT1"], a - a)


def test_infer_every_datatype_through_identity(client: Client) -> None:
    metadata = client.model_metadata("simple")
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    result = client.infer("simple", {t.name: a for t in metadata.inputs})
    np.testing.assert_array_equal(result["OUTPUT0"], a + a)
    np.testing.assert_array_equal(result["OUTPUT1"], a - a)


def test_rest_uses_binary_when_advertised_and_json_on_request(server: RunningServer) -> None:
    with Client(server.base_url) as auto, Client(server.base_url, binary=False) as json_only:
        first = auto.infer("iris", {"input-0": IRIS}, ["predict"])
        assert auto._binary is True
        second = json_only.infer("iris", {"input-0": IRIS}, ["predict"])
        np.testing.assert_array_equal(first["predict"], second["predict"])


def test_errors_are_the_servers_classes(client: Client) -> None:
    with pytest.raises(errors.ModelNotFound, match="Request for unknown model: 'nope'"):
        client.infer("nope", {"x": [1.0]})
    with pytest.raises(errors.InvalidArgument, match=r"expects \[-1, 4\]"):
        client.infer("iris", {"input-0": np.zeros((1, 3), np.float32)})
    with pytest.raises(errors.ModelNotFound):
        client.model_metadata("nope")
    assert client.is_server_ready()  # the next request is answered normally


def test_statistics_config_and_index(client: Client) -> None:
    client.infer("iris", {"input-0": IRIS})
    stats = client.statistics("iris")
    (iris,) = stats["model_stats"]
    assert iris["name"] == "iris"
    assert iris["inference_stats"]["success"]["count"] >= 1
    assert isinstance(iris["inference_stats"]["success"]["ns"], int)
    config = client.model_config("iris")
    assert config["name"] == "iris"
    assert config["input"][0]["dims"] == [4]
    names = {entry.name for entry in client.repository_index()}
    assert {"iris", "simple", "identity"} <= names
    assert IndexEntry("iris", "1", "READY") in client.repository_index(ready=True)


def test_grpc_streaming(server: RunningServer) -> None:
    requests = [{"input-0": IRIS[i : i + 1]} for i in range(2)] * 3
    with Client(f"grpc://{server.grpc_url}") as client:
        results = list(client.stream_infer("iris", requests))
        assert [int(r["predict"][0]) for r in results] == [0, 2] * 3
        with pytest.raises(errors.InvalidArgument, match="expects"):
            list(client.stream_infer("iris", [{"input-0": np.zeros((1, 2), np.float32)}]))
    with Client(server.base_url) as rest, pytest.raises(errors.Unsupported, match="gRPC"):
        rest.stream_infer("iris", requests)


@pytest.mark.parametrize("wire", WIRES)
def test_async_client(server: RunningServer, wire: str) -> None:
    async def scenario() -> None:
        async with AsyncClient(_url(server, wire)) as client:
            assert await client.is_server_ready()
            assert (await client.model_metadata("iris")).name == "iris"
            results = await asyncio.gather(
                *(client.infer("iris", {"input-0": IRIS}) for _ in range(8))
            )
            for result in results:
                np.testing.assert_array_equal(result["predict"], [0, 2])
            with pytest.raises(errors.ModelNotFound):
                await client.infer("nope", {"x": [1.0]})
            stats = await client.statistics()
            assert {m["name"] for m in stats["model_stats"]} >= {"iris"}
            assert await client.repository_index()
            if wire == "grpc":

                async def requests() -> AsyncIterator[dict[str, np.ndarray]]:
                    for i in range(4):
                        yield {"input-0": IRIS[i % 2 : i % 2 + 1]}

                streamed = [r async for r in client.stream_infer("iris", requests())]
                assert [int(r["predict"][0]) for r in streamed] == [0, 2, 0, 2]

    asyncio.run(scenario())


@pytest.mark.parametrize("wire", WIRES)
def test_load_and_unload(examples_repository: Path, tmp_path: Path, wire: str) -> None:
    with (
        serve(examples_repository, "--load-model", "simple", tmp_dir=tmp_path) as running,
        Client(_url(running, wire)) as client,
    ):
        assert not client.is_model_ready("iris")
        client.load_model("iris")
        assert client.is_model_ready("iris")
        assert IndexEntry("iris", "1", "READY") in client.repository_index()
        client.unload_model("iris")
        assert not client.is_model_ready("iris")
        with pytest.raises(errors.OIPServeError) as failed:
            client.load_model("no-such-model")
        assert "no-such-model" in failed.value.message


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "grpc://127.0.0.1:{port}"])
def test_unreachable_server_is_a_connect_error(url: str) -> None:
    with (
        Client(url.format(port=free_port()), timeout=5) as client,
        pytest.raises(ConnectError, match="cannot reach"),
    ):
        client.server_metadata()


def test_api_key_is_sent_as_bearer(server: RunningServer) -> None:
    """oipserve has no keys yet (the security issue adds them): the header is just sent."""
    with Client(server.base_url, api_key="secret") as client:
        call = client._dialect.server_metadata()
        assert call.headers["authorization"] == "Bearer secret"  # type: ignore[union-attr]
        assert client.is_server_ready()
