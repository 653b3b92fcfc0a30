"""The REST transport: a plain ASGI application that routes to the handlers of its mounts.

Why not Starlette: the inference hot path pays for every layer (request objects, middleware stacks,
routing regexes); a direct ASGI callable over a route table of our own (:mod:`.routing`), with the
request and response plumbing in :mod:`.asgi`, keeps per-request overhead to a few microseconds.
The OIP handlers live in :mod:`.handlers_v2`; each front end is a :class:`~.routing.Mount`.

Per request: match the route (404 / 405 otherwise), check access (:mod:`oipserve.auth`: the route's
restricted-API category and the API key; 403 / 401), call its handler, compress the answer when the
route says so and the client's ``Accept-Encoding`` asks (inference only, as Triton), send it. An
:class:`~oipserve.errors.OIPServeError` becomes the mount's error body (``{"error": ...}`` for
``/v2``, through the one status table in :mod:`.errors`); any other exception is a 500 and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from oipserve.auth import AccessPolicy, Category, Refusal
from oipserve.dataplane import DataPlane
from oipserve.errors import InternalError, OIPServeError, PermissionDenied, Unauthenticated
from oipserve.limits import InFlight
from oipserve.observability import tracing
from oipserve.observability.hub import Observability
from oipserve.protocol import codec
from oipserve.transport.http import compression
from oipserve.transport.http.asgi import (
    BaseResponse,
    ClientDisconnected,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    lifespan,
)
from oipserve.transport.http.errors import error_response
from oipserve.transport.http.handlers_observability import ObservabilityAPI
from oipserve.transport.http.handlers_v2 import V2API
from oipserve.transport.http.metrics_endpoint import MetricsEndpoint
from oipserve.transport.http.openapi import openapi_document
from oipserve.transport.http.routing import Mount, Route, Router

logger = logging.getLogger("oipserve.http")


class HTTPApp:
    """The ASGI application: the ``/v2`` mount over ``dataplane``, plus any ``extra_mounts``."""

    def __init__(
        self,
        dataplane: DataPlane,
        max_request_bytes: int,
        extra_mounts: Sequence[Mount] = (),
        policy: AccessPolicy | None = None,
        in_flight: InFlight | None = None,
    ) -> None:
        self.dataplane = dataplane
        self.max_request_bytes = max_request_bytes
        self.policy = policy if policy is not None and policy.active else None
        """The restricted-API and API-key checks (:mod:`oipserve.auth`); None: nothing to check."""
        self.in_flight = in_flight if in_flight is not None and in_flight.limit > 0 else None
        """The server-wide in-flight limit (:mod:`oipserve.limits`), shared with gRPC."""
        self.v2 = V2API(dataplane)
        openapi = Route(
            "GET", "/openapi.json", self._openapi, name="openapi", category=Category.METADATA
        )
        v2_routes = [*self.v2.routes(), *ObservabilityAPI(dataplane).routes(), openapi]
        mounts = [Mount("/v2", v2_routes, name="v2"), *extra_mounts]
        observability: Observability | None = getattr(dataplane, "observability", None)
        metrics = observability.metrics if observability is not None else None
        if metrics is not None:  # in no restricted-API category: never behind the API key
            mounts.append(Mount("/metrics", app=MetricsEndpoint(dataplane.metrics_text)))
        self.router = Router(mounts)
        self._counters = metrics.transport if metrics is not None else None
        """Requests by route and status (``oipserve_http_requests_total``); None: metrics off."""
        self._tracing = observability is not None and observability.tracing.enabled
        self._openapi_body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await lifespan(receive, send)
            return
        method = scope["method"]
        raw_path = scope.get("raw_path") or scope["path"].encode()
        response: BaseResponse | None = None
        route_name = "unmatched"
        carrier = None
        try:
            match = self.router.match(method, raw_path)
            route = match.route
            headers = dict(scope["headers"])
            if self.policy is not None:
                category = route.category if route is not None else match.mount.category
                refusal = self.policy.check_http(category, headers)
                if refusal is not None:
                    raise _refused(refusal)
            if route is None:  # a whole ASGI application mounted under a prefix
                assert match.mount.app is not None
                child = dict(scope, root_path=scope.get("root_path", "") + match.mount.prefix)
                child["path"] = match.path
                child["raw_path"] = match.path.encode("latin-1", "replace")
                await match.mount.app(child, receive, send)
                return
            route_name = route.name
            if self._tracing and b"traceparent" in headers:
                carrier = tracing.set_carrier(_trace_headers(headers))
            request = Request(method, headers, receive, match.params, self.max_request_bytes)
            in_flight = self.in_flight
            if in_flight is None or route.category in _UNCOUNTED:
                response = await route.handler(request)
            else:
                in_flight.enter()
                try:
                    response = await route.handler(request)
                finally:
                    in_flight.leave()
            if route.compress and response.status == 200:
                accept = headers.get(b"accept-encoding")
                if accept:
                    _compress(response, accept)
            await response.send(send, receive)
            if self._counters is not None:
                self._counters.http_request(route_name, method, response.status)
            return
        except ClientDisconnected:
            return
        except OIPServeError as exc:
            if response is not None and response.started:
                raise  # mid-stream: the status is sent; aborting is all that is left
            error = exc
        except Exception as exc:  # a bug of ours: report it, keep serving
            if response is not None and response.started:
                raise
            logger.exception("unhandled error on %s %s", method, scope["path"])
            error = InternalError(f"internal server error: {exc}")
        finally:
            if carrier is not None:
                tracing.reset_carrier(carrier)
        answer = self._error(raw_path, error)
        await answer.send(send, receive)
        if self._counters is not None:
            self._counters.http_request(route_name, method, answer.status)

    async def _openapi(self, request: Request) -> BaseResponse:
        """``GET /v2/openapi.json``: the OpenAPI 3.1 document of this router (built once)."""
        if self._openapi_body is None:
            self._openapi_body = codec.encode(openapi_document(self.router))
        return Response(200, self._openapi_body)

    def _error(self, raw_path: bytes, error: OIPServeError) -> BaseResponse:
        mount = self.router.mount_for(raw_path)
        if mount is not None and mount.render_error is not None:
            return mount.render_error(error)
        return error_response(error)


_UNCOUNTED = frozenset({None, Category.HEALTH})
"""Routes outside the in-flight limit: health probes must answer under load."""


def _refused(refusal: Refusal) -> OIPServeError:
    """A refusal as the error the mount renders: Triton's restricted-API 403, or 401."""
    if refusal.kind == "restricted":
        return PermissionDenied(refusal.message)
    return Unauthenticated(refusal.message)


def _compress(response: BaseResponse, accept: bytes) -> None:
    compress = getattr(response, "compress", None)
    if compress is None:  # a stream: sent as produced, never compressed
        return
    coding = compression.choose(accept.decode("latin-1"))
    if coding:
        compress(coding)


def _trace_headers(headers: dict[bytes, bytes]) -> dict[str, str]:
    """The W3C trace-context headers of a request, for the tracer to continue its trace."""
    return {
        key: headers[key.encode()].decode("latin-1")
        for key in tracing.PROPAGATION_KEYS
        if key.encode() in headers
    }
