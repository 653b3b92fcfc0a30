"""The REST transport: a plain ASGI application over the dataplane.

Why not Starlette: the whole surface is a dozen fixed routes, and the inference hot path pays for
every layer (request objects, middleware stacks, routing regexes); a direct ASGI callable with an
explicit route table keeps per-request overhead to a few microseconds. Handlers stay thin: decode,
call the dataplane, encode. Errors become ``{"error": ...}`` through one table (``errors.py``).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

from oipserve.dataplane import DataPlane
from oipserve.errors import (
    InternalError,
    InvalidArgument,
    MethodNotAllowed,
    NotFound,
    OIPServeError,
    PayloadTooLarge,
    QueueFull,
    Unsupported,
)
from oipserve.protocol import codec
from oipserve.protocol.types import InferenceRequest, InferenceResponse
from oipserve.registry import IndexEntry
from oipserve.transport.http import compression
from oipserve.transport.http.errors import status_of

logger = logging.getLogger("oipserve.http")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

_JSON = (b"content-type", b"application/json")
_OCTET = (b"content-type", b"application/octet-stream")


class Request:
    """What a handler needs of an HTTP request: path parameters, headers, body."""

    __slots__ = ("_receive", "headers", "max_body", "method", "model", "version")

    def __init__(
        self,
        method: str,
        headers: dict[bytes, bytes],
        receive: Receive,
        model: str,
        version: str,
        max_body: int,
    ) -> None:
        self.method = method
        self.headers = headers
        self._receive = receive
        self.model = model
        self.version = version
        self.max_body = max_body

    def header(self, name: bytes) -> str | None:
        value = self.headers.get(name)
        return value.decode("latin-1") if value is not None else None

    async def body(self) -> bytes:
        """The whole (decompressed) body, refusing anything over the size limit."""
        declared = self.headers.get(b"content-length")
        if declared is not None:
            try:
                size = int(declared)
            except ValueError:
                raise InvalidArgument("Content-Length is not an integer") from None
            if size > self.max_body:
                raise PayloadTooLarge(_too_large(size, self.max_body))
        chunks: list[bytes] = []
        received = 0
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                raise ClientDisconnected
            chunk = message.get("body", b"")
            if chunk:
                received += len(chunk)
                if received > self.max_body:
                    raise PayloadTooLarge(_too_large(received, self.max_body))
                chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        encoding = self.headers.get(b"content-encoding")
        if encoding:
            body = compression.decompress(body, encoding.decode("latin-1"), self.max_body)
        return body

    async def cancel_on_disconnect(self, task: asyncio.Task[Any]) -> bool:
        """Wait for the client to go away, then cancel ``task``; True if it did."""
        while True:
            message = await self._receive()
            if message["type"] == "http.disconnect":
                task.cancel()
                return True


class ClientDisconnected(Exception):
    pass


class Response:
    __slots__ = ("body", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes | list[bytes | memoryview] = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        self.status = status
        self.body = body
        self.headers = headers if headers is not None else [_JSON]


def _too_large(size: int, limit: int) -> str:
    return (
        f"request body of {size} bytes exceeds the limit of {limit} bytes "
        "(raise it with --http-max-request-mb)"
    )


def json_response(value: Any, status: int = 200) -> Response:
    return Response(status, codec.encode(value))


def error_response(error: OIPServeError) -> Response:
    response = Response(status_of(error.kind), codec.encode({"error": error.message}))
    if isinstance(error, QueueFull):
        response.headers.append((b"retry-after", str(error.retry_after_s).encode()))
    if isinstance(error, compression.UnsupportedEncoding):
        response.headers.append((b"accept-encoding", b"gzip, deflate"))
    return response


Handler = Callable[[Request], Awaitable[Response]]


class HTTPApp:
    """The ASGI application."""

    def __init__(self, dataplane: DataPlane, max_request_bytes: int) -> None:
        self.dataplane = dataplane
        self.max_request_bytes = max_request_bytes
        self._model_actions = self._build_model_actions()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await _lifespan(receive, send)
            return
        headers = dict(scope["headers"])
        try:
            handler, model, version = self._route(
                scope["method"], scope.get("raw_path") or scope["path"].encode()
            )
            request = Request(
                scope["method"], headers, receive, model, version, self.max_request_bytes
            )
            response = await handler(request)
        except ClientDisconnected:
            return
        except OIPServeError as error:
            response = error_response(error)
        except Exception as exc:  # a bug of ours: report it, keep serving
            logger.exception("unhandled error on %s %s", scope["method"], scope["path"])
            response = error_response(InternalError(f"internal server error: {exc}"))
        await self._send(response, headers, send)

    async def _send(
        self, response: Response, request_headers: dict[bytes, bytes], send: Send
    ) -> None:
        body = response.body
        if isinstance(body, list):
            body = b"".join(body)
        accept = request_headers.get(b"accept-encoding")
        if accept and response.status == 200 and body:
            coding = compression.choose(accept.decode("latin-1"))
            if coding:
                body = compression.compress(body, coding)
                response.headers.append((b"content-encoding", coding.encode()))
        response.headers.append((b"content-length", str(len(body)).encode()))
        await send(
            {"type": "http.response.start", "status": response.status, "headers": response.headers}
        )
        await send({"type": "http.response.body", "body": body})

    # -- routing -------------------------------------------------------------------------------

    def _route(self, method: str, raw_path: bytes) -> tuple[Handler, str, str]:
        parts = [unquote(p.decode("latin-1")) for p in raw_path.split(b"/")[1:]]
        if parts and parts[-1] == "" and len(parts) > 1:
            parts.pop()
        if not parts or parts[0] != "v2":
            raise NotFound("Not Found")
        rest = parts[1:]
        routes = self._routes_for(rest)
        if routes is None:
            raise NotFound("Not Found")
        table, model, version = routes
        handler = table.get(method)
        if handler is None:
            raise MethodNotAllowed("Method Not Allowed")
        return handler, model, version

    def _routes_for(self, rest: list[str]) -> tuple[dict[str, Handler], str, str] | None:
        if not rest:
            return {"GET": self.server_metadata}, "", ""
        if rest[0] == "health" and len(rest) == 2:
            if rest[1] == "live":
                return {"GET": self.live}, "", ""
            if rest[1] == "ready":
                return {"GET": self.ready}, "", ""
            return None
        if rest[0] == "repository":
            return self._repository_routes(rest[1:])
        if rest[0] != "models" or len(rest) < 2:
            return None
        if rest == ["models", "stats"]:
            return {"GET": self.statistics}, "", ""
        model = rest[1]
        tail = rest[2:]
        version = ""
        if len(tail) >= 2 and tail[0] == "versions":
            version = tail[1]
            tail = tail[2:]
        if not tail:
            return {"GET": self.model_metadata}, model, version
        if len(tail) != 1:
            return None
        action = self._model_actions.get(tail[0])
        if action is None:
            return None
        return action, model, version

    def _build_model_actions(self) -> dict[str, dict[str, Handler]]:
        return {
            "ready": {"GET": self.model_ready},
            "infer": {"POST": self.infer},
            "stats": {"GET": self.statistics},
            "config": {"GET": self.model_config},
        }

    def _repository_routes(self, rest: list[str]) -> tuple[dict[str, Handler], str, str] | None:
        """``/v2/repository/index`` and ``/v2/repository/models/{m}/(load|unload)``; the same
        under ``/v2/repository/{repository}/...`` answer 501, as Triton's do."""
        if rest == ["index"]:
            return {"POST": self.repository_index}, "", ""
        if len(rest) == 3 and rest[0] == "models" and rest[2] in ("load", "unload"):
            handler = self.repository_load if rest[2] == "load" else self.repository_unload
            return {"POST": handler}, rest[1], ""
        if (len(rest) == 2 and rest[1] == "index") or (
            len(rest) == 4 and rest[1] == "models" and rest[3] in ("load", "unload")
        ):
            return {"POST": self.named_repository}, "", ""
        return None

    # -- handlers ------------------------------------------------------------------------------

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        if self.dataplane.ready():
            return json_response({"ready": True})
        return json_response({"ready": False, "error": self.dataplane.not_ready_reason()}, 503)

    async def server_metadata(self, request: Request) -> Response:
        return json_response(self.dataplane.server_metadata())

    async def model_metadata(self, request: Request) -> Response:
        return json_response(self.dataplane.model_metadata(request.model, request.version))

    async def model_ready(self, request: Request) -> Response:
        if self.dataplane.model_ready(request.model, request.version):
            return json_response({"name": request.model, "ready": True})
        return json_response(
            {"name": request.model, "ready": False, "error": "Model version not ready"}, 503
        )

    async def statistics(self, request: Request) -> Response:
        return json_response(self.dataplane.statistics(request.model, request.version))

    async def model_config(self, request: Request) -> Response:
        return json_response(self.dataplane.model_config(request.model, request.version))

    # -- model repository extension (PROTOCOL.md §3.2) -----------------------------------------

    async def repository_index(self, request: Request) -> Response:
        body = await _json_object(request, "repository index")
        ready = body.get("ready", False)
        if not isinstance(ready, bool):
            raise InvalidArgument("'ready' in the repository index request must be a boolean")
        entries = self.dataplane.repository_index(ready)
        return json_response([_index_entry(entry) for entry in entries])

    async def repository_load(self, request: Request) -> Response:
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
        await self.dataplane.repository_load(request.model, config, files)
        return Response(200, b"")

    async def repository_unload(self, request: Request) -> Response:
        parameters = await _parameters(request, "unload")
        unload_dependents = parameters.get("unload_dependents", False)
        if not isinstance(unload_dependents, bool):
            raise InvalidArgument("unload parameter 'unload_dependents' must be a boolean")
        await self.dataplane.repository_unload(request.model, unload_dependents)
        return Response(200, b"")

    async def named_repository(self, request: Request) -> Response:
        raise Unsupported("'repository_name' specification is not supported")

    async def infer(self, request: Request) -> Response:
        body = await request.body()
        header_length = codec.parse_header_length(
            request.header(b"inference-header-content-length"), len(body)
        )
        infer_request = codec.decode_infer_request(
            body, request.model, request.version, header_length
        )
        result = await self._infer_unless_disconnected(infer_request, request)
        header, chunks = codec.encode_infer_response(result, infer_request)
        if not chunks:
            return Response(200, header)
        return Response(
            200,
            [header, *chunks],
            [_OCTET, (b"inference-header-content-length", str(len(header)).encode())],
        )

    async def _infer_unless_disconnected(
        self, infer_request: InferenceRequest, request: Request
    ) -> InferenceResponse:
        """Run the inference, cancelling it (and so dropping it from the model's queue) if the
        client goes away first."""
        current = asyncio.current_task()
        assert current is not None
        watcher = asyncio.get_running_loop().create_task(request.cancel_on_disconnect(current))
        try:
            return await self.dataplane.infer(infer_request)
        except asyncio.CancelledError:
            if watcher.done() and not watcher.cancelled() and watcher.result():
                raise ClientDisconnected from None
            raise
        finally:
            watcher.cancel()


async def _json_object(request: Request, what: str) -> dict[str, Any]:
    """The request's JSON object body; an empty body is an empty object."""
    body = await request.body()
    if not body.strip():
        return {}
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"invalid JSON in the {what} request: {exc}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"the {what} request body must be a JSON object")
    return value


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


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
