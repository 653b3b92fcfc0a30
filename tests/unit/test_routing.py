"""The route table in memory: matching, precedence, typed segments, mounts, categories."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from oipserve.errors import MethodNotAllowed, NotFound
from oipserve.transport.http.app import HTTPApp
from oipserve.transport.http.asgi import BaseResponse, Message, Request, Response, Scope
from oipserve.transport.http.handlers_v2 import V2API
from oipserve.transport.http.routing import Category, Mount, Route, Router


async def _ok(request: Request) -> BaseResponse:
    return Response(200, b"ok")


async def _other(request: Request) -> BaseResponse:
    return Response(200, b"other")


IRIS = {"model": "iris"}
IRIS_1 = {"model": "iris", "version": "1"}


def v2_router() -> Router:
    return Router([Mount("/v2", V2API(None).routes())])  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("method", "path", "name", "params"),
    [
        ("GET", "/v2", "server_metadata", {}),
        ("GET", "/v2/", "server_metadata", {}),
        ("GET", "/v2/health/live", "server_live", {}),
        ("GET", "/v2/health/ready", "server_ready", {}),
        ("GET", "/v2/models/stats", "statistics", {}),
        ("GET", "/v2/models/iris", "model_metadata", {"model": "iris"}),
        ("GET", "/v2/models/iris/", "model_metadata", {"model": "iris"}),
        ("POST", "/v2/models/iris/infer", "model_infer", {"model": "iris"}),
        ("GET", "/v2/models/iris/versions/1", "model_metadata_version", IRIS_1),
        ("POST", "/v2/models/iris/versions/1/infer", "model_infer_version", IRIS_1),
        ("GET", "/v2/models/iris/versions/1/stats", "model_statistics_version", IRIS_1),
        ("GET", "/v2/models/x/versions/v1", "model_metadata_version", {"model": "x", "version": "v1"}),  # noqa: E501
        ("GET", "/v2/models/iris/config", "model_config", {"model": "iris"}),
        # a literal wins, but matching backtracks: "stats" is a model name here
        ("GET", "/v2/models/stats/ready", "model_ready", {"model": "stats"}),
        ("GET", "/v2/models/versions", "model_metadata", {"model": "versions"}),
        # model names may hold any character but "/" (percent-encoded by clients)
        ("GET", "/v2/models/a%20b%2Fc%25/ready", "model_ready", {"model": "a b/c%"}),
        ("GET", "/v2/models/caf%C3%A9", "model_metadata", {"model": "café"}),
        ("POST", "/v2/repository/index", "repository_index", {}),
        ("POST", "/v2/repository/models/iris/load", "load", {"model": "iris"}),
        ("POST", "/v2/repository/models/index", "named_index", {"repository": "models"}),
        ("POST", "/v2/repository/r/models/m/load", "named_load", {"repository": "r", "model": "m"}),
    ],
)  # fmt: skip
def test_v2_paths(method: str, path: str, name: str, params: dict[str, str]) -> None:
    match = v2_router().match(method, path.encode())
    assert match.route is not None
    assert match.route.name == name
    assert match.params == params


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v1",
        "/v2x",
        "/v2/health",
        "/v2/health/dead",
        "/v2/models",
        "/v2/models/iris/versions",
        "/v2/models/iris/infer/more",
        "/v2/models/iris/versions/1/versions/2/ready",
        "/v2/repository",
        "/v2//health/live",
    ],
)
def test_unknown_paths_are_404(path: str) -> None:
    with pytest.raises(NotFound, match="Not Found"):
        v2_router().match("GET", path.encode())


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/health/live"),
        ("GET", "/v2/models/iris/infer"),
        ("DELETE", "/v2/models/iris"),
        ("POST", "/v2/models/stats"),
        ("GET", "/v2/repository/index"),
    ],
)
def test_wrong_method_is_405(method: str, path: str) -> None:
    with pytest.raises(MethodNotAllowed, match="Method Not Allowed"):
        v2_router().match(method, path.encode())


def test_every_v2_route_has_a_category() -> None:
    routes = list(v2_router().routes())
    assert routes
    categories = {route.name: route.category for _, route, _ in routes}
    assert categories["model_infer"] is Category.INFERENCE
    assert categories["model_ready"] is Category.HEALTH
    assert categories["server_metadata"] is Category.METADATA
    assert categories["statistics"] is Category.STATISTICS
    assert categories["model_config_version"] is Category.MODEL_CONFIG
    assert categories["load"] is Category.MODEL_REPOSITORY
    assert all(isinstance(category, Category) for category in categories.values())
    # only inference answers compressed
    assert {r.name for _, r, _ in routes if r.compress} == {"model_infer", "model_infer_version"}
    paths = {path for path, _, _ in routes}
    assert "/v2/models/{model}/versions/{version}/infer" in paths


def test_categories_are_tritons() -> None:
    # triton-inference-server/server src/restricted_features.h
    assert [c.value for c in Category] == [
        "health",
        "metadata",
        "inference",
        "shared-memory",
        "model-config",
        "model-repository",
        "statistics",
        "trace",
        "logging",
    ]


def test_typed_segments_and_several_methods() -> None:
    router = Router(
        [
            Mount(
                "/api",
                [
                    Route("GET", "/items/{n:int}", _ok, name="item", category=None),
                    Route("GET", "/items/{name}", _other, name="named", category=None),
                    Route(
                        ("GET", "POST"), "/setting", _ok, name="setting", category=Category.TRACE
                    ),
                    Route("GET", "/files/{rest:path}", _ok, name="files", category=None),
                ],
            )
        ]
    )
    match = router.match("GET", b"/api/items/42")
    assert match.route is not None and match.route.name == "item"
    assert match.params == {"n": "42"}
    match = router.match("GET", b"/api/items/x42")
    assert match.route is not None and match.route.name == "named"
    for method in ("GET", "POST"):
        match = router.match(method, b"/api/setting")
        assert match.route is not None and match.route.category is Category.TRACE
    match = router.match("GET", b"/api/files/a/b%20c/d.js")
    assert match.params == {"rest": "a/b c/d.js"}


def test_bad_tables_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicates"):
        Router(
            [
                Mount("/a", [Route("GET", "/x", _ok, name="x", category=None)]),
                Mount("/a", [Route("GET", "/x", _other, name="y", category=None)]),
            ]
        )
    with pytest.raises(ValueError, match="conflicting"):
        Router(
            [
                Mount(
                    "/a",
                    [
                        Route("GET", "/{x}/p", _ok, name="x", category=None),
                        Route("GET", "/{y}/q", _ok, name="y", category=None),
                    ],
                )
            ]
        )
    with pytest.raises(ValueError, match="bad path parameter"):
        Route("GET", "/{x:float}", _ok, name="x", category=None)
        Router([Mount("/a", [Route("GET", "/{x:float}", _ok, name="x", category=None)])])
    with pytest.raises(ValueError, match="either routes or an app"):
        Mount("/a")


# -- a mount holding a whole ASGI application, through HTTPApp in memory ----------------------


class _Recorder:
    def __init__(self) -> None:
        self.scopes: list[Scope] = []

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        self.scopes.append(scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"from the app"})


async def _call(app: Any, method: str, path: str) -> list[Message]:
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "headers": [],
        "root_path": "",
    }
    await app(scope, receive, send)
    return sent


def test_app_mount_and_extra_route_mounts() -> None:
    recorder = _Recorder()
    extra = [
        Mount("/metrics", app=recorder, name="metrics"),
        Mount("/v1", [Route("GET", "/models", _ok, name="openai_models", category=None)]),
    ]
    app = HTTPApp(None, 1024, extra_mounts=extra)  # type: ignore[arg-type]

    sent = asyncio.run(_call(app, "GET", "/metrics"))
    assert sent[1]["body"] == b"from the app"
    assert recorder.scopes[-1]["path"] == "/"
    assert recorder.scopes[-1]["root_path"] == "/metrics"
    asyncio.run(_call(app, "GET", "/metrics/sub/x"))
    assert recorder.scopes[-1]["path"] == "/sub/x"

    sent = asyncio.run(_call(app, "GET", "/v1/models"))
    assert sent[0]["status"] == 200 and sent[1]["body"] == b"ok"
    sent = asyncio.run(_call(app, "GET", "/v1/nothing"))
    assert sent[0]["status"] == 404
    assert sent[1]["body"] == b'{"error":"Not Found"}'
    sent = asyncio.run(_call(app, "POST", "/v1/models"))
    assert sent[0]["status"] == 405


def test_a_mount_renders_its_own_errors() -> None:
    def openai_error(error: Any) -> BaseResponse:
        return Response(404, b'{"error":{"message":"' + error.message.encode() + b'"}}')

    extra = [
        Mount(
            "/v1",
            [Route("GET", "/models", _ok, name="m", category=None)],
            render_error=openai_error,
        )
    ]
    app = HTTPApp(None, 1024, extra_mounts=extra)  # type: ignore[arg-type]
    sent = asyncio.run(_call(app, "GET", "/v1/unknown"))
    assert sent[1]["body"] == b'{"error":{"message":"Not Found"}}'
    sent = asyncio.run(_call(app, "GET", "/v2/unknown"))
    assert sent[1]["body"] == b'{"error":"Not Found"}'
