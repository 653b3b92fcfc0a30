"""The route table: HTTP routes as data, grouped into mounts, matched without regular expressions.

A front end is a :class:`Mount` (the OIP ``/v2`` API today; OpenAI ``/v1``, ``/metrics`` and the
console later), holding either :class:`Route` s or a whole ASGI application::

    router = Router([
        Mount("/v2", [
            Route("GET", "/health/live", live, name="server_live", category=Category.HEALTH),
            Route("POST", "/models/{model}/infer", infer, name="model_infer",
                  category=Category.INFERENCE, compress=True),
        ]),
        Mount("/metrics", app=metrics_app, name="metrics"),
    ])
    match = router.match("POST", b"/v2/models/iris/infer")   # NotFound / MethodNotAllowed
    match.route.handler, match.params                          # ..., {"model": "iris"}

Path patterns are ``/``-separated segments, each a literal, ``{name}`` (one segment: any
characters but ``/``, percent-decoded, possibly empty), ``{name:int}`` (ASCII digits; the value
stays a string) or, last, ``{name:path}`` (the rest of the path, ``/`` included). A literal beats a
parameter at the same position, and matching backtracks, so ``/v2/models/stats`` is the statistics
route while ``/v2/models/stats/ready`` asks whether a model called ``stats`` is ready.

Matching splits the raw path once, percent-decodes only the segments holding ``%`` and walks a tree
of dicts (a trailing ``/`` is ignored): no regular expression runs per request, so the table costs
what the hand-written if-chain it replaced did. A path no route matches is 404 ``Not Found``; a
path some route matches with another method is 405 ``Method Not Allowed`` (PROTOCOL.md §0).

Each route carries its restricted-API :class:`~oipserve.auth.Category` (Triton's
``--http-restricted-api`` groups, ``src/restricted_features.h`` in triton-inference-server/server),
so access checks (:mod:`oipserve.auth`) are a lookup on the matched route, never a list of paths
kept beside the table: a route added later is covered by construction. A route with no category
(``/metrics``, the console's static files) is open to everyone.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import unquote

from oipserve.auth import Category
from oipserve.errors import MethodNotAllowed, NotFound

if TYPE_CHECKING:
    from oipserve.transport.http.asgi import ASGIApp, BaseResponse, ErrorRenderer, Request

Handler = Callable[["Request"], Awaitable["BaseResponse"]]

_KINDS = ("str", "int", "path")


class Route:
    """One endpoint: methods, a path pattern (relative to its mount), the handler and its data.

    ``compress``: the response honours ``Accept-Encoding`` (Triton compresses inference responses
    only; PROTOCOL.md §0). ``category`` is None for routes outside Triton's categories.
    """

    __slots__ = ("category", "compress", "handler", "methods", "name", "path")

    def __init__(
        self,
        methods: str | Sequence[str],
        path: str,
        handler: Handler,
        *,
        name: str,
        category: Category | None,
        compress: bool = False,
    ) -> None:
        self.methods = (methods,) if isinstance(methods, str) else tuple(methods)
        self.path = path
        self.handler = handler
        self.name = name
        self.category = category
        self.compress = compress

    def __repr__(self) -> str:
        return f"Route({'|'.join(self.methods)} {self.path!r}, name={self.name!r})"


class Mount:
    """A front end under ``prefix``: a list of routes, or one ASGI ``app`` that gets every path
    below the prefix (its scope's ``root_path`` extended by the prefix and ``path`` relative).

    ``render_error`` turns an error into this front end's error body (OpenAI's differs from
    OIP's); None uses the application's default.
    """

    __slots__ = ("app", "category", "name", "prefix", "render_error", "routes")

    def __init__(
        self,
        prefix: str,
        routes: Sequence[Route] = (),
        *,
        app: ASGIApp | None = None,
        name: str = "",
        category: Category | None = None,
        render_error: ErrorRenderer | None = None,
    ) -> None:
        if (app is None) == (not routes):
            raise ValueError(f"mount {prefix!r}: give either routes or an app")
        self.prefix = prefix.rstrip("/")
        self.routes = tuple(routes)
        self.app = app
        self.name = name or prefix
        self.category = category
        self.render_error = render_error


@dataclass(slots=True)
class Match:
    """What a path matched: a ``route`` with its ``params``, or (``route`` None) an app mount,
    with ``path`` the rest of the path below the mount's prefix."""

    mount: Mount
    route: Route | None
    params: dict[str, str] = field(default_factory=dict)
    path: str = ""


class _Node:
    __slots__ = ("app_mount", "literal", "params", "routes", "tail")

    def __init__(self) -> None:
        self.literal: dict[str, _Node] = {}
        self.params: list[tuple[str, str, _Node]] = []
        """(name, kind, child): an ``int`` parameter is tried before a ``str`` one."""
        self.routes: dict[str, tuple[Route, Mount]] = {}
        self.tail: tuple[str, dict[str, tuple[Route, Mount]]] | None = None
        self.app_mount: Mount | None = None


def _segments(path: str) -> list[str]:
    path = path.strip("/")
    return path.split("/") if path else []


def _parameter(segment: str) -> tuple[str, str] | None:
    if not (segment.startswith("{") and segment.endswith("}")):
        return None
    name, _, kind = segment[1:-1].partition(":")
    kind = kind or "str"
    if not name.isidentifier() or kind not in _KINDS:
        raise ValueError(f"bad path parameter {segment!r}: use {{name}} or {{name:int|path}}")
    return name, kind


class Router:
    """Matches ``(method, raw path)`` to a route of one of its mounts (see the module docstring)."""

    def __init__(self, mounts: Sequence[Mount]) -> None:
        self.mounts = tuple(mounts)
        self._root = _Node()
        for mount in self.mounts:
            self._add_mount(mount)

    # -- building ------------------------------------------------------------------------------

    def _add_mount(self, mount: Mount) -> None:
        node = self._root
        for segment in _segments(mount.prefix):
            if _parameter(segment) is not None:
                raise ValueError(f"mount prefix {mount.prefix!r} must be literal")
            node = node.literal.setdefault(segment, _Node())
        if mount.app is not None:
            if node.app_mount is not None or node.routes or node.literal or node.params:
                raise ValueError(f"mount {mount.prefix!r} overlaps another")
            node.app_mount = mount
            return
        for route in mount.routes:
            self._add_route(node, route, mount)

    def _add_route(self, node: _Node, route: Route, mount: Mount) -> None:
        segments = _segments(route.path)
        for position, segment in enumerate(segments):
            if node.app_mount is not None:
                raise ValueError(f"route {route!r} lies under the app mounted at {mount.prefix!r}")
            parameter = _parameter(segment)
            if parameter is None:
                node = node.literal.setdefault(segment, _Node())
                continue
            name, kind = parameter
            if kind == "path":
                if position != len(segments) - 1:
                    raise ValueError(f"{route!r}: a {{name:path}} parameter must come last")
                if node.tail is None:
                    node.tail = (name, {})
                elif node.tail[0] != name:
                    raise ValueError(f"{route!r}: conflicting parameter names at {segment!r}")
                self._add_methods(node.tail[1], route, mount)
                return
            for other_name, other_kind, child in node.params:
                if other_kind == kind:
                    if other_name != name:
                        raise ValueError(f"{route!r}: conflicting parameters at {segment!r}")
                    node = child
                    break
            else:
                child = _Node()
                node.params.append((name, kind, child))
                node.params.sort(key=lambda entry: entry[1] != "int")
                node = child
        self._add_methods(node.routes, route, mount)

    @staticmethod
    def _add_methods(table: dict[str, tuple[Route, Mount]], route: Route, mount: Mount) -> None:
        for method in route.methods:
            if method in table:
                raise ValueError(f"{route!r} duplicates {table[method][0]!r}")
            table[method] = (route, mount)

    # -- matching ------------------------------------------------------------------------------

    def match(self, method: str, raw_path: bytes) -> Match:
        """The route for ``method`` on ``raw_path``; NotFound or MethodNotAllowed otherwise."""
        parts = raw_path.decode("latin-1").split("/")
        del parts[0]  # before the leading "/"
        if parts and parts[-1] == "":
            parts.pop()  # a trailing "/" (and "/" itself: no segments, the root's routes)
        for index, part in enumerate(parts):
            if "%" in part:
                parts[index] = unquote(part)
        params: dict[str, str] = {}
        found = self._walk(self._root, parts, 0, params)
        if found is None:
            raise NotFound("Not Found")
        if isinstance(found, tuple):  # an app mount, and where its part of the path starts
            mount, start = found
            return Match(mount, None, params, "/" + "/".join(parts[start:]))
        entry = found.get(method)
        if entry is None:
            raise MethodNotAllowed("Method Not Allowed")
        return Match(entry[1], entry[0], params)

    def _walk(
        self, node: _Node, parts: list[str], index: int, params: dict[str, str]
    ) -> dict[str, tuple[Route, Mount]] | tuple[Mount, int] | None:
        while True:
            if node.app_mount is not None:
                return node.app_mount, index
            if index == len(parts):
                if node.routes:
                    return node.routes
                return None
            part = parts[index]
            child = node.literal.get(part)
            if child is not None and not node.params and node.tail is None:
                node = child  # the common case: nothing to backtrack to
                index += 1
                continue
            if child is not None:
                found = self._walk(child, parts, index + 1, params)
                if found is not None:
                    return found
            for name, kind, param_child in node.params:
                if kind == "int" and not _digits(part):
                    continue
                params[name] = part
                found = self._walk(param_child, parts, index + 1, params)
                if found is not None:
                    return found
                del params[name]
            if node.tail is not None:
                tail_name, table = node.tail
                params[tail_name] = "/".join(parts[index:])
                return table
            return None

    def mount_for(self, raw_path: bytes) -> Mount | None:
        """The mount whose prefix ``raw_path`` lies under (to render a 404 in its own shape)."""
        path = raw_path.decode("latin-1")
        best: Mount | None = None
        for mount in self.mounts:
            prefix = mount.prefix
            if (path == prefix or path.startswith(prefix + "/") or not prefix) and (
                best is None or len(prefix) > len(best.prefix)
            ):
                best = mount
        return best

    def routes(self) -> Iterator[tuple[str, Route, Mount]]:
        """Every route with its full path pattern (prefix included) and its mount."""
        for mount in self.mounts:
            for route in mount.routes:
                path = "/" + "/".join([*_segments(mount.prefix), *_segments(route.path)])
                yield path, route, mount


def _digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


__all__ = ["Category", "Handler", "Match", "Mount", "Route", "Router"]
