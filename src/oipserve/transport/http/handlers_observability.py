"""Triton's logging and trace extensions over REST (PROTOCOL.md §3.6, §3.7), routes of the
``/v2`` mount: ``GET|POST /v2/logging``, ``GET|POST /v2/trace/setting`` and
``GET|POST /v2/models/{model}/trace/setting``. The dataplane holds the state; these handlers read
the JSON body and render the answer."""

from __future__ import annotations

from oipserve.dataplane import DataPlane
from oipserve.protocol import codec
from oipserve.transport.http.asgi import BaseResponse, Request, Response
from oipserve.transport.http.routing import Category, Route


class ObservabilityAPI:
    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    def routes(self) -> list[Route]:
        """Relative to the ``/v2`` mount."""
        logging, trace = Category.LOGGING, Category.TRACE
        return [
            Route(("GET", "POST"), "/logging", self.logging, name="logging", category=logging),
            Route(
                ("GET", "POST"), "/trace/setting", self.trace, name="trace_setting", category=trace
            ),
            Route(
                ("GET", "POST"),
                "/models/{model}/trace/setting",
                self.trace,
                name="model_trace_setting",
                category=trace,
            ),
        ]

    async def logging(self, request: Request) -> BaseResponse:
        if request.method == "POST":
            body = codec.decode_json_object(await request.body(), "log setting")
            return _json(self.dataplane.update_log_settings(body))
        return _json(self.dataplane.log_settings())

    async def trace(self, request: Request) -> BaseResponse:
        model = request.params.get("model", "")
        if request.method == "POST":
            body = codec.decode_json_object(await request.body(), "trace setting")
            return _json(self.dataplane.update_trace_settings(model, body))
        return _json(self.dataplane.trace_settings(model))


def _json(value: object) -> Response:
    return Response(200, codec.encode(value))


__all__ = ["ObservabilityAPI"]
