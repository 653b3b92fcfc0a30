"""Restricted APIs as Triton does them, and the API key, over REST and gRPC on real servers
(issue 13; PROTOCOL.md §0 "Authentication").

Every category gets its own key, so a test proves each route and rpc checks its own category:
the right key passes, a wrong or a missing one gets Triton's refusal (HTTP 403
``{"error": "This API is restricted, expecting header 'KEY'"}``, gRPC ``UNAVAILABLE``
``This protocol is restricted, expecting header 'triton-grpc-protocol-KEY'``). REST routes are
read from the route table itself, so a route added later is tested by construction; the
tritonclient calls send the keys through their ``headers`` argument, as a user would.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

from oipserve.auth import Category
from oipserve.dataplane import DataPlane
from oipserve.transport.http.app import HTTPApp
from tests.integration.test_repository import config_json, write_model
from tests.serving import RunningServer, free_port, serve

TIMEOUT_S = 30.0

#: category → (HTTP header, gRPC key); values are the key names upper-cased
KEYS: dict[Category, tuple[str, str]] = {
    Category.HEALTH: ("health-key", "hk"),
    Category.METADATA: ("meta-key", "mk"),
    Category.INFERENCE: ("infer-key", "ik"),
    Category.MODEL_CONFIG: ("config-key", "ck"),
    Category.STATISTICS: ("stats-key", "sk"),
    Category.MODEL_REPOSITORY: ("repo-key", "rk"),
    Category.SHARED_MEMORY: ("shm-key", "shk"),
    Category.TRACE: ("trace-key", "tk"),
    Category.LOGGING: ("log-key", "lk"),
}
API_KEY = "s3cr3t-api-key-value"


def value_of(key: str) -> str:
    return key.upper() + "-VALUE"


def http_headers(category: Category, *, wrong: bool = False) -> dict[str, str]:
    key = KEYS[category][0]
    return {key: "wrong" if wrong else value_of(key)}


def grpc_headers(category: Category, *, wrong: bool = False) -> dict[str, str]:
    key = KEYS[category][1]
    return {f"triton-grpc-protocol-{key}": "wrong" if wrong else value_of(key)}


def restricted_message(category: Category) -> str:
    return f"This API is restricted, expecting header '{KEYS[category][0]}'"


def grpc_restricted_message(category: Category) -> str:
    return (
        f"This protocol is restricted, expecting header 'triton-grpc-protocol-{KEYS[category][1]}'"
    )


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("access-repo")
    write_model(root, "plain")
    write_model(root, "spare")
    return root


def wait_ready(server: RunningServer, headers: dict[str, str]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        response = httpx.get(f"{server.base_url}/v2/health/ready", headers=headers)
        if response.status_code == 200:
            return
        time.sleep(0.05)
    raise AssertionError(f"not ready:\n{server.log()}")


@pytest.fixture(scope="module")
def restricted(
    repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    args: list[str] = []
    for category, (http_key, grpc_key) in KEYS.items():
        args += ["--http-restricted-api", f"{category.value}:{http_key}={value_of(http_key)}"]
        args += ["--grpc-restricted-protocol", f"{category.value}:{grpc_key}={value_of(grpc_key)}"]
    with serve(
        repository, *args, tmp_dir=tmp_path_factory.mktemp("restricted"), wait_ready=False
    ) as running:
        wait_ready(running, http_headers(Category.HEALTH))
        yield running


def _routes() -> list[tuple[str, str, Category]]:
    """Every categorised route of the REST app's whole table (OIP, observability, OpenAPI, ...)."""
    router = HTTPApp(cast(DataPlane, None), 1).router
    found: list[tuple[str, str, Category]] = []
    for pattern, route, _mount in router.routes():
        if route.category is None:  # the console's files: open by design
            continue
        path = "/".join(
            "{" + part[1:-1].partition(":")[0] + "}" if part.startswith("{") else part
            for part in pattern.split("/")
        )
        found.extend((method, path, route.category) for method in route.methods)
    assert len(found) >= 25
    return found


def _concrete(path: str) -> str:
    if path.endswith("/unload"):  # leave "plain" loaded for the routes after this one
        path = path.replace("{model}", "spare")
    for name, value in (("{model}", "plain"), ("{version}", "1"), ("{repository}", "mine")):
        path = path.replace(name, value)
    assert "{" not in path, path
    return path


INFER_BODY = json.dumps(
    {"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [0]}]}
).encode()


@pytest.mark.parametrize(("method", "path", "category"), _routes())
def test_every_rest_route_checks_its_category(
    restricted: RunningServer, method: str, path: str, category: Category
) -> None:
    url = restricted.base_url + _concrete(path)
    body = INFER_BODY if path.endswith("/infer") else b"{}"
    for headers in ({}, http_headers(category, wrong=True)):
        response = httpx.request(method, url, content=body, headers=headers, timeout=TIMEOUT_S)
        assert response.status_code == 403, (path, headers)
        assert response.json() == {"error": restricted_message(category)}
    # another category's key does not open this one
    other = Category.HEALTH if category is not Category.HEALTH else Category.METADATA
    response = httpx.request(method, url, content=body, headers=http_headers(other))
    assert response.status_code == 403
    response = httpx.request(method, url, content=body, headers=http_headers(category))
    assert response.status_code != 403, (path, response.text)
    assert response.status_code < 500 or response.status_code == 501, response.text


def test_tritonclient_http_with_headers(restricted: RunningServer) -> None:
    client = httpclient.InferenceServerClient(restricted.http_url, network_timeout=TIMEOUT_S)
    inputs = [httpclient.InferInput("x", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([0], dtype=np.int32), binary_data=False)
    calls: list[tuple[Category, Callable[[dict[str, str]], Any]]] = [
        (Category.HEALTH, lambda h: client.is_server_live(headers=h)),
        (Category.HEALTH, lambda h: client.is_model_ready("plain", headers=h)),
        (Category.METADATA, lambda h: client.get_server_metadata(headers=h)),
        (Category.METADATA, lambda h: client.get_model_metadata("plain", headers=h)),
        (Category.INFERENCE, lambda h: client.infer("plain", inputs, headers=h)),
        (Category.MODEL_CONFIG, lambda h: client.get_model_config("plain", headers=h)),
        (Category.STATISTICS, lambda h: client.get_inference_statistics(headers=h)),
        (Category.MODEL_REPOSITORY, lambda h: client.get_model_repository_index(headers=h)),
        (
            Category.MODEL_REPOSITORY,
            lambda h: client.load_model("plain", headers=h, config=config_json(2)),
        ),
    ]
    try:
        for category, call in calls:
            assert call(http_headers(category)) is not False
            for headers in ({}, http_headers(category, wrong=True)):
                with pytest.raises(InferenceServerException) as info:
                    result = call(headers)
                    # the health calls answer False on a non-200 instead of raising
                    if result is False:
                        raise InferenceServerException("403", status="403")
                if info.value.message() != "403":
                    assert info.value.message() == restricted_message(category)
    finally:
        client.close()


def test_tritonclient_grpc_with_headers(restricted: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(restricted.grpc_url)
    inputs = [grpcclient.InferInput("x", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([0], dtype=np.int32))
    calls: list[tuple[Category, Callable[[dict[str, str]], Any]]] = [
        (Category.HEALTH, lambda h: client.is_server_live(headers=h)),
        (Category.HEALTH, lambda h: client.is_server_ready(headers=h)),
        (Category.HEALTH, lambda h: client.is_model_ready("plain", headers=h)),
        (Category.METADATA, lambda h: client.get_server_metadata(headers=h)),
        (Category.METADATA, lambda h: client.get_model_metadata("plain", headers=h)),
        (Category.INFERENCE, lambda h: client.infer("plain", inputs, headers=h)),
        (Category.MODEL_CONFIG, lambda h: client.get_model_config("plain", headers=h)),
        (Category.STATISTICS, lambda h: client.get_inference_statistics(headers=h)),
        (Category.MODEL_REPOSITORY, lambda h: client.get_model_repository_index(headers=h)),
        (Category.MODEL_REPOSITORY, lambda h: client.unload_model("nothing", headers=h)),
    ]
    unimplemented: list[tuple[Category, Callable[[dict[str, str]], Any]]] = [
        (Category.SHARED_MEMORY, lambda h: client.get_system_shared_memory_status(headers=h)),
        (Category.SHARED_MEMORY, lambda h: client.get_cuda_shared_memory_status(headers=h)),
        (Category.TRACE, lambda h: client.get_trace_settings(headers=h)),
        (Category.LOGGING, lambda h: client.get_log_settings(headers=h)),
    ]
    try:
        for category, call in calls + unimplemented:
            if (category, call) in unimplemented:
                try:
                    call(grpc_headers(category))
                except InferenceServerException as exc:  # not implemented yet: past the check
                    assert exc.status() == "StatusCode.UNIMPLEMENTED"
            else:
                call(grpc_headers(category))
            for headers in ({}, grpc_headers(category, wrong=True)):
                with pytest.raises(InferenceServerException) as info:
                    call(headers)
                assert info.value.status() == "StatusCode.UNAVAILABLE"
                assert info.value.message() == grpc_restricted_message(category)
        # a stream is checked when it opens
        results: list[Any] = []
        client.start_stream(callback=lambda result, error: results.append(error))
        with contextlib.suppress(InferenceServerException):  # the stream may be refused already
            client.async_stream_infer("plain", inputs)
        client.stop_stream()
        assert results, "the refused stream reported nothing"
        assert "This protocol is restricted" in str(results[0])
    finally:
        client.close()


def test_health_restriction_guards_grpc_health_v1(restricted: RunningServer) -> None:
    with grpc.insecure_channel(restricted.grpc_url) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        request = health_pb2.HealthCheckRequest(service="")
        with pytest.raises(grpc.RpcError) as info:
            stub.Check(request, timeout=TIMEOUT_S)
        error: Any = info.value
        assert error.code() == grpc.StatusCode.UNAVAILABLE
        assert error.details() == grpc_restricted_message(Category.HEALTH)
        metadata = tuple(grpc_headers(Category.HEALTH).items())
        answer = stub.Check(request, metadata=metadata, timeout=TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_keys_are_never_logged(restricted: RunningServer) -> None:
    log = restricted.log()
    for http_key, grpc_key in KEYS.values():
        assert value_of(http_key) not in log
        assert value_of(grpc_key) not in log


# -- start-up errors: Triton's messages ------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--http-restricted-api", "model-reposit,health:k1=v1"],
            "unknown restricted api 'model-reposit'",
        ),
        (
            [
                "--http-restricted-api",
                "model-repository,health:k1=v1",
                "--http-restricted-api",
                "metadata,health:k2=v2",
            ],
            "restricted api 'health' can not be specified in multiple config groups",
        ),
        (
            ["--grpc-restricted-protocol", "model-reposit,health:k1=v1"],
            "unknown restricted protocol 'model-reposit'",
        ),
        (
            [
                "--grpc-restricted-protocol",
                "health:k1=v1",
                "--grpc-restricted-protocol",
                "health:k2=v2",
            ],
            "restricted protocol 'health' can not be specified in multiple config groups",
        ),
        (
            ["--http-restricted-api", "health=v1"],
            "--http-restricted-api option format is '<config name>:<setting>=<value>'",
        ),
    ],
)
def test_bad_restrictions_stop_the_start_up(
    repository: Path, args: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "oipserve", "serve", str(repository)]
    command += ["--http-port", str(free_port()), "--grpc-port", str(free_port()), *args]
    result = subprocess.run(command, capture_output=True, timeout=60, check=False)
    output = (result.stdout + result.stderr).decode()
    assert result.returncode == 1, output
    assert message in " ".join(output.split())


# -- the API key ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def keyed(repository: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with serve(
        repository,
        "--http-restricted-api",
        "model-repository:repo-key=REPO",
        "--grpc-restricted-protocol",
        "model-repository:rk=REPO",
        "--allow-model-upload",
        tmp_dir=tmp_path_factory.mktemp("keyed"),
        env={"OIPSERVE_API_KEY": API_KEY},
    ) as running:
        yield running


BEARER = {"authorization": f"Bearer {API_KEY}"}


def test_api_key_over_rest(keyed: RunningServer) -> None:
    base = keyed.base_url
    # health, the console's files (and /metrics, once mounted) stay open
    assert httpx.get(f"{base}/v2/health/ready").status_code == 200
    assert httpx.get(f"{base}/v2/health/live").status_code == 200
    assert httpx.get(f"{base}/v2/models/plain/ready").status_code == 200
    console = httpx.get(f"{base}/")
    assert console.status_code in (200, 404)  # 404 only when the console is switched off
    metrics = httpx.get(f"{base}/metrics")  # Prometheus scrapes without credentials
    assert metrics.status_code == 200, metrics.text
    assert "nv_inference_request_success" in metrics.text
    for method, path, body in [
        ("GET", "/v2", None),
        ("GET", "/v2/models/plain", None),
        ("GET", "/v2/models/plain/config", None),
        ("GET", "/v2/models/stats", None),
        ("POST", "/v2/models/plain/infer", INFER_BODY),
    ]:
        url = base + path
        missing = httpx.request(method, url, content=body)
        assert missing.status_code == 401, path
        assert missing.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in missing.json()["error"]
        for wrong in ("Bearer nope", f"Basic {API_KEY}", API_KEY, f"Bearer {API_KEY}x"):
            refused = httpx.request(method, url, content=body, headers={"authorization": wrong})
            assert refused.status_code == 401, (path, wrong)
            assert refused.json() == {"error": "invalid API key"}
        assert httpx.request(method, url, content=body, headers=BEARER).status_code == 200
    assert API_KEY not in keyed.log()


def test_api_key_and_restriction_must_both_hold(keyed: RunningServer) -> None:
    url = f"{keyed.base_url}/v2/repository/index"
    assert httpx.post(url, headers={"repo-key": "REPO"}).status_code == 401
    only_key = httpx.post(url, headers=BEARER)
    assert only_key.status_code == 403
    assert only_key.json() == {"error": "This API is restricted, expecting header 'repo-key'"}
    assert httpx.post(url, headers={**BEARER, "repo-key": "REPO"}).status_code == 200
    # the model-repository API is guarded: no start-up warning about uploads
    assert "clients of the repository API can send model files" not in keyed.log()


def test_api_key_through_tritonclients(keyed: RunningServer) -> None:
    http = httpclient.InferenceServerClient(keyed.http_url, network_timeout=TIMEOUT_S)
    grpc_client = grpcclient.InferenceServerClient(keyed.grpc_url)
    try:
        assert http.is_server_ready()  # health needs no key
        assert grpc_client.is_server_ready()
        assert http.get_server_metadata(headers=BEARER)["name"] == "oipserve"
        assert grpc_client.get_server_metadata(headers=BEARER).name == "oipserve"
        with pytest.raises(InferenceServerException) as rest_info:
            http.get_server_metadata()
        assert rest_info.value.status() == "401"
        for headers in ({}, {"authorization": "Bearer nope"}):
            with pytest.raises(InferenceServerException) as grpc_info:
                grpc_client.get_server_metadata(headers=headers)
            assert grpc_info.value.status() == "StatusCode.UNAUTHENTICATED"
        both = {**BEARER, "triton-grpc-protocol-rk": "REPO"}
        assert grpc_client.get_model_repository_index(headers=both) is not None
        with pytest.raises(InferenceServerException) as both_info:
            grpc_client.get_model_repository_index(headers=BEARER)
        assert both_info.value.status() == "StatusCode.UNAVAILABLE"
    finally:
        http.close()
        grpc_client.close()


def test_api_key_guards_grpc_health_v1_not(keyed: RunningServer) -> None:
    with grpc.insecure_channel(keyed.grpc_url) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        answer = stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_S)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_uploads_without_a_key_warn(repository: Path, tmp_path: Path) -> None:
    with serve(repository, "--allow-model-upload", tmp_dir=tmp_path) as server:
        assert "clients of the repository API can send model files" in server.log()
