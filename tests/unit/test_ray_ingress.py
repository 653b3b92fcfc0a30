"""oipserve.ray without a cluster: the ingress's routing over fake model handles, the application
builder's arguments, and the message when Ray is not installed."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import pytest

if importlib.util.find_spec("ray") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the Ray Serve tests: install oipserve[ray]")
    pytest.skip(
        "the ray package is not installed (pip install 'oipserve[ray]')", allow_module_level=True
    )

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")


class _Method:
    def __init__(self, result: Any) -> None:
        self.result = result
        self.calls: list[tuple[Any, ...]] = []

    async def remote(self, *args: Any) -> Any:
        self.calls.append(args)
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


class FakeHandle:
    """What the ingress uses of a model deployment's handle."""

    def __init__(self, forwarded: Any, ready: Any = True) -> None:
        self.forward = _Method(forwarded)
        self.ready = _Method(ready)


def _call(
    app: Any, method: str, path: str, body: bytes = b""
) -> tuple[int, dict[bytes, bytes], bytes]:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "headers": [],
        "query_string": b"",
    }
    messages = [{"type": "http.request", "body": body, "more_body": False}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start, body_message = sent
    return start["status"], dict(start["headers"]), body_message["body"]


def _ingress(**handles: FakeHandle) -> Any:
    from oipserve.ray import IngressApp

    return IngressApp(cast(Any, handles), max_request_bytes=1024)


def test_model_routes_go_to_the_model_and_come_back_unchanged() -> None:
    answer = (
        200,
        [
            (b"content-type", b"application/octet-stream"),
            (b"inference-header-content-length", b"2"),
        ],
        b"{}raw",
    )
    iris = FakeHandle(answer)
    status, headers, body = _call(
        _ingress(iris=iris), "POST", "/v2/models/iris/infer", b'{"inputs": []}'
    )
    assert (status, body) == (200, b"{}raw")
    assert headers[b"inference-header-content-length"] == b"2"
    assert headers[b"content-length"] == b"5"
    assert iris.forward.calls == [("POST", "/v2/models/iris/infer", b"", [], b'{"inputs": []}')]


def test_health_unknown_models_and_paths() -> None:
    app = _ingress(iris=FakeHandle((200, [], b"")), other=FakeHandle((200, [], b""), ready=False))
    assert _call(app, "GET", "/v2/health/live")[::2] == (200, b'{"live":true}')
    status, _, body = _call(app, "GET", "/v2/health/ready")
    assert status == 503
    assert "other" in json.loads(body)["error"]
    status, _, body = _call(app, "GET", "/v2/models/nope/ready")
    assert status == 404
    assert json.loads(body) == {"error": "Request for unknown model: 'nope' is not found"}
    assert _call(app, "GET", "/v3/anything")[0] == 404


def test_repository_load_is_refused_as_in_none_mode() -> None:
    status, _, body = _call(
        _ingress(iris=FakeHandle((200, [], b""))), "POST", "/v2/repository/models/iris/load"
    )
    assert status == 503
    assert "not allowed" in json.loads(body)["error"]


def test_a_replica_that_dies_answers_503_for_the_client_to_retry() -> None:
    app = _ingress(iris=FakeHandle(RuntimeError("The actor died unexpectedly")))
    status, _, body = _call(app, "POST", "/v2/models/iris/infer", b"{}")
    assert status == 503
    assert "model 'iris' is unavailable" in json.loads(body)["error"]


def test_index_and_statistics_are_merged() -> None:
    def index(name: str) -> FakeHandle:
        # a replica sees every folder of the repository; only its own model has a state
        others = [{"name": other} for other in ("a", "b") if other != name]
        entries = [*others, {"name": name, "version": "1", "state": "READY"}]
        return FakeHandle((200, [], json.dumps(entries).encode()))

    app = _ingress(b=index("b"), a=index("a"))
    status, _, body = _call(app, "POST", "/v2/repository/index", b"{}")
    assert status == 200
    assert json.loads(body) == [
        {"name": "a", "version": "1", "state": "READY"},
        {"name": "b", "version": "1", "state": "READY"},
    ]
    stats = _ingress(a=FakeHandle((200, [], b'{"model_stats": [{"name": "a"}]}')))
    assert json.loads(_call(stats, "GET", "/v2/models/stats")[2]) == {
        "model_stats": [{"name": "a"}]
    }


def test_body_over_the_limit_is_413() -> None:
    status, _, _ = _call(
        _ingress(iris=FakeHandle((200, [], b""))), "POST", "/v2/models/iris/infer", b"x" * 2048
    )
    assert status == 413


def test_application_builder_arguments(examples_repository: Path) -> None:
    from oipserve.errors import InvalidArgument
    from oipserve.ray import app

    assert app({"repository": str(examples_repository), "num_replicas": "2"}) is not None
    with pytest.raises(InvalidArgument, match="repository=PATH"):
        app({})
    with pytest.raises(InvalidArgument, match="unknown argument"):
        app({"repository": str(examples_repository), "replicas": "2"})
    with pytest.raises(InvalidArgument, match="not in the repository"):
        app({"repository": str(examples_repository), "load_models": "iris,nope"})


def test_model_options_from_model_toml(tmp_path: Path) -> None:
    from oipserve.ray import _options_from_config

    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.py").write_text("")
    (tmp_path / "m" / "model.toml").write_text(
        "[parameters]\n"
        'ray_deployment = \'{"num_replicas": 3, "ray_actor_options": {"num_cpus": 2}}\'\n'
    )
    assert _options_from_config(tmp_path, "m", "") == {
        "num_replicas": 3,
        "ray_actor_options": {"num_cpus": 2},
    }


def test_without_ray_the_import_says_what_to_install() -> None:
    code = "import sys; sys.modules['ray'] = None; import oipserve.ray"
    result = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, timeout=60
    )
    assert result.returncode == 1
    assert "pip install 'oipserve[ray]'" in result.stderr.decode()
