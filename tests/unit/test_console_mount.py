"""The console's mount beside /v2 in one route table: the root, its files, nothing else."""

from __future__ import annotations

import asyncio

import pytest

from oipserve.console import console_mount
from oipserve.errors import NotFound
from oipserve.transport.http.asgi import Request, Response
from oipserve.transport.http.routing import Mount, Route, Router


async def _nothing(request: Request) -> object:
    raise AssertionError("not called")


def _router() -> Router:
    v2 = Mount("/v2", [Route("GET", "/health/live", _nothing, name="live", category=None)])  # type: ignore[arg-type]
    return Router([v2, console_mount("explicit")])


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/", "console_page"),
        ("/console/console.js", "console_static"),
        ("/console/settings.json", "console_settings"),
        ("/v2/health/live", "live"),
        ("/v2/health/live/", "live"),
    ],
)
def test_paths(path: str, name: str) -> None:
    match = _router().match("GET", path.encode())
    assert match.route is not None
    assert match.route.name == name


def test_only_shipped_files_are_served() -> None:
    router = _router()
    for path in ("/console/nope.js", "/console/..%2F__init__.py", "/console/__init__.py"):
        match = router.match("GET", path.encode())
        assert match.route is not None
        with pytest.raises(NotFound):
            _call(match.route, match.params)
    with pytest.raises(NotFound):
        router.match("GET", b"/console/a/b.js")


async def _receive() -> dict[str, object]:
    return {"type": "http.request", "body": b""}


def _call(route: Route, params: dict[str, str]) -> Response:
    async def call() -> Response:
        response = await route.handler(Request("GET", {}, _receive, params, 0))
        assert isinstance(response, Response)
        return response

    return asyncio.run(call())


def test_settings_follow_the_control_mode() -> None:
    for mode, allowed in (("explicit", True), ("poll", False), ("none", False)):
        route = Router([console_mount(mode)]).match("GET", b"/console/settings.json").route
        assert route is not None
        body = _call(route, {}).body
        assert isinstance(body, bytes)
        assert (b'"repository_changes": ' + (b"true" if allowed else b"false")) in body
