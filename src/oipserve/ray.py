"""oipserve on Ray Serve: a model repository deployed across a Ray cluster (``oipserve[ray]``).

From the command line, an application builder taking ``key=value`` arguments::

    serve run oipserve.ray:app repository=/models
    serve run oipserve.ray:app repository=/models num_replicas=2 model_name=iris

From Python::

    import oipserve.ray
    oipserve.ray.deploy("/models", models={"iris": {"num_replicas": 2}})

One Ray Serve application holds:

- **one deployment per model** (``oipserve-model-<name>``). Each replica runs oipserve's own stack
  for that one model — the registry, the model's scheduler (priorities, queue bound, dynamic
  batching: batches form inside each replica, from the requests routed to it), its runtime — and
  oipserve's REST handlers, called in memory. Replicas, autoscaling and resources are Ray Serve's
  deployment options (``num_replicas``, ``autoscaling_config``, ``ray_actor_options``,
  ``max_replicas_per_node``, ...), taken from the deploy call, else from the model's configuration
  (``parameters.ray_deployment``, a JSON object of the same options, in ``model.toml``), else Ray
  Serve's defaults.
- **one ingress deployment** (``oipserve-ingress``) serving the Open Inference Protocol's REST API
  at the route prefix. Its ASGI app is built on the replica (``__serve_build_asgi_app__``, see
  ``ray.serve.ingress``), so nothing but model names and handles is pickled. It answers health and
  server metadata itself, routes ``/v2/models/{m}/...`` to model ``m``'s deployment through its
  handle (the replica's response comes back byte for byte: JSON or binary tensors, compression,
  errors), and merges the repository index and statistics of every model. Repository load and
  unload are refused as oipserve's ``none`` control mode refuses them: a Ray application changes by
  redeploying it.

Every node must see the repository at the same path (a shared or replicated folder). A replica
whose model fails to load raises, so Ray Serve marks the deployment failed and :func:`deploy`
raises :class:`DeployError` naming the model and the reason. A request in flight on a replica
that dies answers 503, which clients retry; Ray Serve starts a replacement.

gRPC through Ray Serve's gRPC proxy is not offered: the proxy needs the service's servicer
functions and one deployment method per rpc taking protobuf messages; oipserve's gRPC transport
runs in the standalone server (``oipserve serve``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

try:
    from ray import serve
    from ray.serve import Application
    from ray.serve.handle import DeploymentHandle
except ImportError as exc:  # pragma: no cover - exercised in a subprocess without ray
    raise ImportError(
        "oipserve.ray needs Ray Serve, which is not installed: pip install 'oipserve[ray]'"
    ) from exc

from oipserve import __version__
from oipserve.errors import (
    InvalidArgument,
    ModelNotFound,
    NotFound,
    OIPServeError,
    PayloadTooLarge,
    Unavailable,
)
from oipserve.protocol import codec
from oipserve.settings import Settings

__all__ = ["DeployError", "IngressApp", "ModelReplica", "app", "build", "deploy"]

logger = logging.getLogger("oipserve.ray")

INGRESS_NAME = "oipserve-ingress"
MODEL_PREFIX = "oipserve-model-"
CONFIG_PARAMETER = "ray_deployment"
"""The ``model.toml`` parameter holding a model's Ray Serve deployment options (JSON)."""

DEFAULT_MODEL_OPTIONS: dict[str, Any] = {"max_ongoing_requests": 64}
"""Ray Serve routes at most ``max_ongoing_requests`` to a replica at once (its default, 5, would
starve the replica's dynamic batcher)."""

Headers = list[tuple[bytes, bytes]]
Forwarded = tuple[int, Headers, bytes]


class DeployError(RuntimeError):
    """A Ray Serve deployment of a repository failed (a model that could not load, ...)."""


# -- a model's replica ---------------------------------------------------------------------------


class ModelReplica:
    """One model of the repository, served by oipserve's own stack inside a Ray Serve replica."""

    async def __init__(  # type: ignore[misc]  # Ray Serve awaits an async constructor
        self, repository: str, model: str, model_name: str = "", model_threads: int = 4
    ) -> None:
        from oipserve.server import Server

        self.model = model
        settings = Settings(
            model_repository=Path(repository),
            model_name=model_name,
            load_models=(model,),
            model_threads=model_threads,
        )
        self._server = Server(settings)
        await self._server.start()
        failures = self._server.dataplane.startup_failures
        if failures or not self._server.registry.ready_versions(model):
            reasons = "; ".join(f"{key}: {reason}" for key, reason in failures.items())
            raise DeployError(f"model '{model}' failed to load: {reasons or 'no version loaded'}")
        self._app = self._server.http_app

    async def forward(
        self, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> Forwarded:
        """Answer one REST request with oipserve's own handlers, in memory."""
        return await call_asgi(self._app, method, path, query, headers, body)

    def ready(self) -> bool:
        return bool(self._server.registry.ready_versions(self.model))

    def check_health(self) -> None:
        """Ray Serve's health check: a replica whose model is no longer READY is replaced."""
        if not self.ready():
            raise RuntimeError(f"model '{self.model}' is not ready")


async def call_asgi(
    app: Any, method: str, path: str, query: bytes, headers: Headers, body: bytes
) -> Forwarded:
    """Run one HTTP request through ASGI app ``app`` in memory: (status, headers, body)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": unquote(path),
        "raw_path": path.encode("latin-1"),
        "query_string": query,
        "headers": headers,
        "client": None,
        "server": None,
    }
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        if pending:
            return pending.pop()
        await asyncio.get_running_loop().create_future()  # the caller never disconnects
        raise AssertionError("unreachable")

    status = 500
    response_headers: Headers = []
    chunks: list[bytes] = []

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, response_headers
        if message["type"] == "http.response.start":
            status = message["status"]
            response_headers = [(bytes(k), bytes(v)) for k, v in message.get("headers", [])]
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    return status, response_headers, b"".join(chunks)


# -- the ingress ---------------------------------------------------------------------------------

_JSON = [(b"content-type", b"application/json")]


def _json(value: Any, status: int = 200) -> Forwarded:
    return status, list(_JSON), codec.encode(value)


def _error(error: OIPServeError) -> Forwarded:
    from oipserve.transport.http.errors import status_of

    return _json({"error": error.message}, status_of(error.kind))


class IngressApp:
    """The OIP REST API of the whole application: an ASGI app over the model deployments."""

    def __init__(self, models: Mapping[str, DeploymentHandle[Any]], max_request_bytes: int) -> None:
        self.models = dict(models)
        self.max_request_bytes = max_request_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        try:
            body = await self._body(receive)
            status, headers, content = await self.route(scope, body)
        except OIPServeError as error:
            status, headers, content = _error(error)
        headers = [(k, v) for k, v in headers if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content})

    async def _body(self, receive: Any) -> bytes:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise asyncio.CancelledError
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_request_bytes:
                raise PayloadTooLarge(
                    f"request body exceeds the limit of {self.max_request_bytes} bytes"
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def route(self, scope: dict[str, Any], body: bytes) -> Forwarded:
        method: str = scope["method"]
        raw_path: bytes = scope.get("raw_path") or scope["path"].encode()
        root_path = scope.get("root_path", "")
        path = raw_path.decode("latin-1")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :] or "/"
        parts = [unquote(part) for part in path.split("/")[1:]]
        if len(parts) > 1 and parts[-1] == "":
            parts.pop()
        query: bytes = scope.get("query_string", b"")
        headers: Headers = [(bytes(k), bytes(v)) for k, v in scope["headers"]]
        if parts == ["v2", "health", "live"]:
            return _json({"live": True})
        if parts == ["v2", "health", "ready"]:
            return await self._ready()
        if parts == ["v2"] and method == "GET":
            return await self._server_metadata(path, query, headers)
        if parts == ["v2", "models", "stats"]:
            return await self._statistics(method, query, headers, body)
        if parts == ["v2", "repository", "index"]:
            return await self._index(method, path, query, headers, body)
        if len(parts) >= 3 and parts[:2] == ["v2", "repository"]:
            raise Unavailable(
                "explicit model load / unload is not allowed if polling is enabled (through Ray "
                "Serve, the models are the application's deployments: redeploy to change them)"
            )
        if len(parts) >= 3 and parts[:2] == ["v2", "models"]:
            return await self._forward(parts[2], method, path, query, headers, body)
        raise NotFound("Not Found")

    async def _forward(
        self, model: str, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> Forwarded:
        handle = self.models.get(model)
        if handle is None:
            raise ModelNotFound(model)
        try:
            result: Forwarded = await handle.forward.remote(method, path, query, headers, body)
        except Exception as exc:  # the replica died or could not be reached: the client retries
            logger.warning("model '%s': a replica failed this request: %s", model, exc)
            raise Unavailable(f"model '{model}' is unavailable (a replica failed): {exc}") from None
        return result

    async def _ready(self) -> Forwarded:
        try:
            states = await asyncio.gather(*(h.ready.remote() for h in self.models.values()))
        except Exception as exc:
            return _json({"ready": False, "error": f"a model's replica failed: {exc}"}, 503)
        not_ready = [name for name, ok in zip(self.models, states, strict=True) if not ok]
        if not_ready:
            error = f"models not ready: {', '.join(not_ready)}"
            return _json({"ready": False, "error": error}, 503)
        return _json({"ready": True})

    async def _server_metadata(self, path: str, query: bytes, headers: Headers) -> Forwarded:
        if not self.models:
            from oipserve.dataplane import EXTENSIONS

            return _json(
                {"name": "oipserve", "version": __version__, "extensions": list(EXTENSIONS)}
            )
        model = next(iter(self.models))
        return await self._forward(model, "GET", path, query, headers, b"")

    async def _statistics(
        self, method: str, query: bytes, headers: Headers, body: bytes
    ) -> Forwarded:
        answers = await asyncio.gather(
            *(
                self._forward(m, method, f"/v2/models/{m}/stats", query, headers, body)
                for m in self.models
            )
        )
        merged: list[Any] = []
        for status, answer_headers, content in answers:
            if status != 200:
                return status, answer_headers, content
            merged.extend(json.loads(content)["model_stats"])
        return _json({"model_stats": merged})

    async def _index(
        self, method: str, path: str, query: bytes, headers: Headers, body: bytes
    ) -> Forwarded:
        answers = await asyncio.gather(
            *(self._forward(m, method, path, query, headers, body) for m in self.models)
        )
        entries: list[Any] = []
        for model, (status, answer_headers, content) in zip(self.models, answers, strict=True):
            if status != 200:
                return status, answer_headers, content
            # a replica sees the whole repository folder but serves only its own model
            entries.extend(entry for entry in json.loads(content) if entry["name"] == model)
        entries.sort(key=lambda entry: (entry["name"], entry.get("version", "")))
        return _json(entries)


class Ingress:
    """The ingress deployment: holds the model deployments' handles; Ray Serve builds its ASGI
    app on the replica (``__serve_build_asgi_app__``)."""

    def __init__(self, models: dict[str, DeploymentHandle[Any]], max_request_bytes: int) -> None:
        self._models = models
        self._max_request_bytes = max_request_bytes

    def __serve_build_asgi_app__(self) -> IngressApp:
        return IngressApp(self._models, self._max_request_bytes)


# -- building and deploying ----------------------------------------------------------------------


def _options_from_config(repository: Path, model: str, model_name: str) -> dict[str, Any]:
    """The model's ``parameters.ray_deployment`` (a JSON object of deployment options)."""
    from oipserve.repository import layout

    try:
        source = layout.read_model(repository, model, model_name=model_name)
    except OIPServeError:
        return {}  # the replica reports the folder's problem when it loads
    value = source.config.parameter_strings().get(CONFIG_PARAMETER)
    if not value:
        return {}
    try:
        options = json.loads(value)
    except ValueError as exc:
        raise InvalidArgument(
            f"model '{model}': parameters.{CONFIG_PARAMETER} is not JSON: {exc}"
        ) from None
    if not isinstance(options, dict):
        raise InvalidArgument(f"model '{model}': parameters.{CONFIG_PARAMETER} must be an object")
    return options


def build(
    repository: str | Path,
    *,
    models: Mapping[str, Mapping[str, Any]] | None = None,
    deployment_options: Mapping[str, Any] | None = None,
    model_name: str = "",
    load_models: Sequence[str] = (),
    model_threads: int = 4,
    max_request_mb: float = 64,
) -> Application:
    """The Ray Serve application of ``repository``: a deployment per model and the ingress.

    ``deployment_options`` apply to every model's deployment; ``models`` maps a model name to its
    own options (which win); each model's ``parameters.ray_deployment`` in its configuration
    comes under both. ``load_models`` limits the models deployed (default: all).
    """
    from oipserve.repository import layout

    root = Path(repository).resolve()
    if not root.is_dir():
        raise InvalidArgument(f"model repository {root} is not a folder")
    names = layout.list_model_names(root, model_name)
    if load_models and "*" not in load_models:
        unknown = sorted(set(load_models) - set(names))
        if unknown:
            raise InvalidArgument(f"not in the repository {root}: {', '.join(unknown)}")
        names = [name for name in names if name in load_models]
    unknown = sorted(set(models or {}) - set(names))
    if unknown:
        raise InvalidArgument(f"options given for models not deployed: {', '.join(unknown)}")
    handles: dict[str, Application] = {}
    for name in names:
        options = {
            **DEFAULT_MODEL_OPTIONS,
            **_options_from_config(root, name, model_name),
            **(deployment_options or {}),
            **(models or {}).get(name, {}),
        }
        deployment = serve.deployment(name=MODEL_PREFIX + name, **options)(ModelReplica)
        handles[name] = deployment.bind(str(root), name, model_name, model_threads)
    ingress = serve.deployment(name=INGRESS_NAME)(serve.ingress()(Ingress))
    return ingress.bind(handles, int(max_request_mb * 1024 * 1024))


def deploy(
    repository: str | Path,
    *,
    name: str = "oipserve",
    route_prefix: str = "/",
    **options: Any,
) -> DeploymentHandle[Any]:
    """Deploy ``repository`` on the connected Ray cluster (``ray.init`` first, or Ray starts a
    local one) as the Serve application ``name``; :func:`build` describes ``options``.
    :class:`DeployError` names the model that failed and why."""
    application = build(repository, **options)
    try:
        handle: DeploymentHandle[Any] = serve.run(application, name=name, route_prefix=route_prefix)
    except RuntimeError as exc:
        reasons = _deployment_failures(name) or [str(exc)]
        raise DeployError(
            f"deploying {repository} on Ray Serve failed: {'; '.join(reasons)}"
        ) from exc
    return handle


def _deployment_failures(application: str) -> list[str]:
    """Why the application's deployments failed: a model replica's own message (``model 'x'
    failed to load: ...``) where its constructor raised one, else Ray Serve's status message."""
    status = serve.status().applications.get(application)
    if status is None:
        return []
    reasons: list[str] = []
    for deployment, state in sorted(status.deployments.items()):
        if state.status not in ("DEPLOY_FAILED", "UNHEALTHY"):
            continue
        ours = [
            line.split("DeployError: ", 1)[1]
            for line in state.message.splitlines()
            if "DeployError: " in line
        ]
        reasons.append(ours[-1] if ours else f"{deployment}: {state.message}")
    return reasons


def app(args: dict[str, str]) -> Application:
    """The application builder of ``serve run oipserve.ray:app repository=PATH [key=value ...]``.

    Keys: ``repository`` (required), ``model_name`` (the model's name when the repository is one
    model's folder), ``load_models`` (comma-separated), ``num_replicas`` (every model),
    ``model_threads``, ``max_request_mb``.
    """
    known = {
        "repository",
        "model_name",
        "load_models",
        "num_replicas",
        "model_threads",
        "max_request_mb",
    }
    unknown = sorted(set(args) - known)
    if unknown:
        raise InvalidArgument(
            f"unknown argument(s) {', '.join(unknown)}; expected {', '.join(sorted(known))}"
        )
    if "repository" not in args:
        raise InvalidArgument(
            "give the model repository: serve run oipserve.ray:app repository=PATH"
        )
    deployment_options: dict[str, Any] = {}
    if "num_replicas" in args:
        deployment_options["num_replicas"] = int(args["num_replicas"])
    return build(
        args["repository"],
        deployment_options=deployment_options,
        model_name=args.get("model_name", ""),
        load_models=[m for m in args.get("load_models", "").split(",") if m],
        model_threads=int(args.get("model_threads", "4")),
        max_request_mb=float(args.get("max_request_mb", "64")),
    )
