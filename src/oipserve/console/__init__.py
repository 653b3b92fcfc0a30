"""The web console: static files at ``/`` on the HTTP port, talking to the server's own ``/v2`` API.

A :class:`~oipserve.transport.http.routing.Mount` of three routes: ``GET /`` (the page),
``GET /console/{file}`` (its script and style, from the fixed list of files shipped in
``static/``, read once at start-up) and ``GET /console/settings.json`` (what the page cannot
learn from the protocol: whether the repository API may load and unload, which only ``explicit``
mode allows). Everything else the page shows it fetches from ``/v2`` like any client: the
repository index, metadata, configuration, statistics, inference. Plain HTML, CSS and JavaScript:
no CDN, no build step. ``--allow-console=false`` leaves the mount out.

If the server asks for an API key (401 or 403), the page asks the user for it and keeps it in a
JavaScript variable only: never in the URL, a cookie or local storage.
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Final

from oipserve.errors import NotFound
from oipserve.transport.http.asgi import Request, Response
from oipserve.transport.http.routing import Mount, Route

PREFIX: Final = "/console"
_TYPES: Final = {
    ".html": b"text/html; charset=utf-8",
    ".js": b"text/javascript; charset=utf-8",
    ".css": b"text/css; charset=utf-8",
    ".png": b"image/png",
    ".svg": b"image/svg+xml",
}
_SECURITY: Final = [
    (b"cache-control", b"no-cache"),
    (b"x-content-type-options", b"nosniff"),
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-ancestors 'none'",
    ),
]


def _static_files() -> dict[str, tuple[bytes, bytes]]:
    """Every shipped file by name, with its content type, read once."""
    files: dict[str, tuple[bytes, bytes]] = {}
    for entry in resources.files(__name__).joinpath("static").iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _TYPES:
            files[entry.name] = (entry.read_bytes(), _TYPES[suffix])
    return files


def console_mount(model_control_mode: str) -> Mount:
    files = _static_files()
    settings = json.dumps(
        {"repository_changes": model_control_mode == "explicit", "prefix": PREFIX}
    ).encode()

    def respond(name: str) -> Response:
        found = files.get(name)
        if found is None:
            raise NotFound("Not Found")
        body, content_type = found
        return Response(200, body, [(b"content-type", content_type), *_SECURITY])

    async def page(request: Request) -> Response:
        return respond("index.html")

    async def static(request: Request) -> Response:
        return respond(request.params["file"])

    async def console_settings(request: Request) -> Response:
        return Response(200, settings, [(b"content-type", b"application/json"), *_SECURITY])

    return Mount(
        "/",
        [
            Route("GET", "/", page, name="console_page", category=None),
            Route(
                "GET",
                f"{PREFIX}/settings.json",
                console_settings,
                name="console_settings",
                category=None,
            ),
            Route("GET", f"{PREFIX}/{{file}}", static, name="console_static", category=None),
        ],
        name="console",
    )
