"""The Open Inference Protocol's REST API (``/v2``, PROTOCOL.md §2 and §3) as a route table.

Handlers stay thin: read the request, call the dataplane, encode what it returns. Each route names
its restricted-API category (Triton's, see :class:`~oipserve.transport.http.routing.Category`);
only inference responses honour ``Accept-Encoding``, as in Triton's ``http_server.cc`` (the infer
handler builds its ``InferRequestClass`` with ``GetResponseCompressionType``; the metadata,
statistics, repository and health handlers write their JSON uncompressed).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
from typing import Any

from oipserve.dataplane import DataPlane
from oipserve.domain import IndexEntry
from oipserve.errors import DecoupledModel, InvalidArgument, Unsupported
from oipserve.protocol import codec
from oipserve.protocol.types import InferenceRequest, InferenceResponse
from oipserve.repository import triton
from oipserve.transport.http.asgi import (
    OCTET_STREAM,
    BaseResponse,
    ClientDisconnected,
    Request,
    Response,
)
from oipserve.transport.http.routing import Category, Handler, Route

_HEADER_LENGTH = b"inference-header-content-length"

DECOUPLED_REFUSED = "HTTP end point doesn't support models with decoupled transaction policy"
"""Triton's text (501) for inference on a decoupled model: server ``src/http_server.cc``."""


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, codec.encode(value))


class V2API:
    """The ``/v2`` handlers over one dataplane."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    def routes(self) -> list[Route]:
        """The route table, relative to the ``/v2`` mount."""
        health, metadata, stats = Category.HEALTH, Category.METADATA, Category.STATISTICS
        config, inference = Category.MODEL_CONFIG, Category.INFERENCE
        repo, named = Category.MODEL_REPOSITORY, "/repository/{repository}/"
        table: list[tuple[str, str, Handler, str, Category]] = [
            ("GET", "/", self.server_metadata, "server_metadata", metadata),
            ("GET", "/health/live", self.live, "server_live", health),
            ("GET", "/health/ready", self.ready, "server_ready", health),
            ("GET", "/models/stats", self.statistics, "statistics", stats),
            ("POST", "/repository/index", self.repository_index, "repository_index", repo),
            ("POST", "/repository/models/{model}/load", self.repository_load, "load", repo),
            ("POST", "/repository/models/{model}/unload", self.repository_unload, "unload", repo),
            # a named repository: 501, as Triton answers
            ("POST", named + "index", self.named_repository, "named_index", repo),
            ("POST", named + "models/{model}/load", self.named_repository, "named_load", repo),
            ("POST", named + "models/{model}/unload", self.named_repository, "named_unload", repo),
        ]  # fmt: skip
        for prefix, suffix in (
            ("/models/{model}", ""),
            ("/models/{model}/versions/{version}", "_version"),
        ):
            table += [
                ("GET", prefix, self.model_metadata, f"model_metadata{suffix}", metadata),
                ("GET", f"{prefix}/ready", self.model_ready, f"model_ready{suffix}", health),
                ("POST", f"{prefix}/infer", self.infer, f"model_infer{suffix}", inference),
                ("GET", f"{prefix}/stats", self.statistics, f"model_statistics{suffix}", stats),
                ("GET", f"{prefix}/config", self.model_config, f"model_config{suffix}", config),
            ]  # fmt: skip
        return [
            Route(
                method, path, handler, name=name, category=category, compress=handler == self.infer
            )
            for method, path, handler, name, category in table
        ]

    # -- health and metadata -------------------------------------------------------------------

    async def live(self, request: Request) -> BaseResponse:
        return json_response({"live": True})

    async def ready(self, request: Request) -> BaseResponse:
        if self.dataplane.ready():
            return json_response({"ready": True})
        return json_response({"ready": False, "error": self.dataplane.not_ready_reason()}, 503)

    async def server_metadata(self, request: Request) -> BaseResponse:
        return json_response(self.dataplane.server_metadata())

    async def model_metadata(self, request: Request) -> BaseResponse:
        params = request.params
        return json_response(
            self.dataplane.model_metadata(params["model"], params.get("version", ""))
        )

    async def model_ready(self, request: Request) -> BaseResponse:
        params = request.params
        name = params["model"]
        readiness = self.dataplane.model_readiness(name, params.get("version", ""))
        if readiness.ready:
            return json_response({"name": name, "ready": True})
        not_ready = {"name": name, "ready": False, "error": readiness.reason}
        return json_response(not_ready, 503)

    async def statistics(self, request: Request) -> BaseResponse:
        params = request.params
        return json_response(
            await self.dataplane.server_statistics(
                params.get("model", ""), params.get("version", "")
            )
        )

    async def model_config(self, request: Request) -> BaseResponse:
        params = request.params
        config = self.dataplane.model_config(params["model"], params.get("version", ""))
        return json_response(triton.to_json(config))

    # -- model repository extension (PROTOCOL.md §3.2) -----------------------------------------

    async def repository_index(self, request: Request) -> BaseResponse:
        body = await _json_object(request, "repository index")
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidArgument("'ready' in the repository index request must be a boolean")
        entries = self.dataplane.repository_index(ready)
        return json_response([_index_entry(entry) for entry in entries])

    async def repository_load(self, request: Request) -> BaseResponse:
        parameters = await _parameters(request, "load")
        config: str | None = None
        files: dict[str, bytes] = {}
        for key, value in parameters.items():
            if key == "config":
                if not isinstance(value, str):
                    raise InvalidArgument(
                        "load parameter 'config' must be a string holding the model "
                        "configuration as JSON"
                    )
                config = value
            elif key.startswith("file:"):
                if not isinstance(value, str):
                    raise InvalidArgument(f"load parameter '{key}' must be a base64 string")
                try:
                    files[key[len("file:") :]] = base64.b64decode(value, validate=True)
                except binascii.Error:
                    raise InvalidArgument(f"load parameter '{key}' is not valid base64") from None
            else:
                raise InvalidArgument(
                    f"unrecognized load parameter '{key}': expected 'config' or 'file:<path>'"
                )
        await self.dataplane.repository_load(request.params["model"], config, files)
        return Response(200, b"")

    async def repository_unload(self, request: Request) -> BaseResponse:
        parameters = await _parameters(request, "unload")
        unload_dependents = parameters.get("unload_dependents", False)
        if not isinstance(unload_dependents, bool):
            raise InvalidArgument("unload parameter 'unload_dependents' must be a boolean")
        await self.dataplane.repository_unload(request.params["model"], unload_dependents)
        return Response(200, b"")

    async def named_repository(self, request: Request) -> BaseResponse:
        raise Unsupported("'repository_name' specification is not supported")

    # -- inference -----------------------------------------------------------------------------

    async def infer(self, request: Request) -> BaseResponse:
        body = await request.body()
        params = request.params
        model, version = params["model"], params.get("version", "")
        header_length = codec.parse_header_length(request.header(_HEADER_LENGTH), len(body))
        if header_length == 0:
            infer_request = self._raw_request(body, model, version)
        else:
            infer_request = codec.decode_infer_request(body, model, version, header_length)
        result = await self._infer_unless_disconnected(infer_request, request)
        header, chunks = codec.encode_infer_response(result, infer_request)
        if not chunks:
            return Response(200, header)
        return Response(
            200,
            [header, *chunks],
            [OCTET_STREAM, (_HEADER_LENGTH, str(len(header)).encode())],
        )

    def _raw_request(self, body: bytes, model: str, version: str) -> InferenceRequest:
        """A raw binary request (PROTOCOL.md §2.6): the model's metadata describes the input."""
        metadata = self.dataplane.model_metadata(model, version)
        batched = self.dataplane.model_config(model, version).max_batch_size > 0
        return codec.decode_raw_infer_request(body, model, version, metadata.inputs, batched)

    async def _infer_unless_disconnected(
        self, infer_request: InferenceRequest, request: Request
    ) -> InferenceResponse:
        """Run the inference, cancelling it (and so dropping it from the model's queue) if the
        client goes away first."""
        current = asyncio.current_task()
        assert current is not None
        watcher = asyncio.get_running_loop().create_task(_cancel_on_disconnect(request, current))
        try:
            return await self.dataplane.infer(infer_request)
        except DecoupledModel:
            raise Unsupported(DECOUPLED_REFUSED) from None
        except asyncio.CancelledError:
            if watcher.done() and not watcher.cancelled():
                raise ClientDisconnected from None
            raise
        finally:
            watcher.cancel()


async def _cancel_on_disconnect(request: Request, task: asyncio.Task[Any]) -> None:
    await request.wait_for_disconnect()
    task.cancel()


async def _json_object(request: Request, what: str) -> dict[str, Any]:
    """The request's JSON object body; an empty body is an empty object."""
    return codec.decode_json_object(await request.body(), what)


async def _parameters(request: Request, action: str) -> dict[str, Any]:
    body = await _json_object(request, f"repository {action}")
    parameters = body.get("parameters", {})
    if not isinstance(parameters, dict):
        raise InvalidArgument(f"'parameters' in the repository {action} request must be an object")
    return parameters


def _index_entry(entry: IndexEntry) -> dict[str, str]:
    """Triton's index entry: ``version`` and ``state`` only when known, ``reason`` when set."""
    item = {"name": entry.name}
    if entry.version:
        item["version"] = entry.version
    if entry.state:
        item["state"] = entry.state
    if entry.reason:
        item["reason"] = entry.reason
    return item
