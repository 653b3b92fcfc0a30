"""Builds everything from :class:`Settings` and runs it: start-up, serving, graceful shutdown.

REST (uvicorn with uvloop and httptools) and gRPC (our server on zttp,
``transport/grpc/http2.py``) share one event loop. The listeners
start first (health probes answer, not ready, while models load), then
:meth:`~oipserve.dataplane.DataPlane.start` loads the start-up models. SIGINT and SIGTERM stop both
listeners, let requests in flight finish, then unload the models. A server that cannot start
raises :class:`~oipserve.errors.StartupError`; the CLI turns it into one log line and exit code 1.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gc
import logging
import signal
import socket
import ssl
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Protocol

import uvicorn

from oipserve.auth import AccessPolicy, Category, ConfigError
from oipserve.dataplane import DataPlane
from oipserve.errors import InvalidArgument, StartupError
from oipserve.execution.executor import Executor
from oipserve.execution.instance import Execution
from oipserve.limits import InFlight
from oipserve.observability.hub import Observability
from oipserve.observability.logging import LogControl, LogSettings
from oipserve.observability.metrics import Metrics, MetricsConfig
from oipserve.observability.tracing import TraceConfig, Tracing
from oipserve.protocol import tensor
from oipserve.registry import Registry
from oipserve.repository import layout, poll
from oipserve.repository.discovery import SingleModel, check_repository, layout_of
from oipserve.repository.poll import RepositoryPoller
from oipserve.settings import Settings
from oipserve.tls import TLSConfigError, tls_files
from oipserve.transport.grpc.credentials import server_ssl_context
from oipserve.transport.grpc.server import GRPCListener, start_grpc_server
from oipserve.transport.http.access_log import AccessLog
from oipserve.transport.http.app import HTTPApp
from oipserve.transport.http.asgi import ASGIApp
from oipserve.transport.http.metrics_endpoint import MetricsEndpoint
from oipserve.transport.http.protocol import ConnectionState, HTTPLimits, protocol_class
from oipserve.transport.http.routing import Mount


class WorkerRole(Protocol):
    """What being one worker of ``--workers N`` adds to a server
    (:class:`oipserve.workers.worker.WorkerLink`)."""

    def attach(self, server: Server) -> None:
        """Wire itself to the server's dataplane (siblings, reports) and stop."""
        ...

    async def run(self) -> None:
        """Serve the control channel until the supervisor closes it."""
        ...

    def started(self) -> None:
        """Start-up has finished."""
        ...


logger = logging.getLogger("oipserve")


class _UvicornServer(uvicorn.Server):
    """uvicorn without its own signal handling: :class:`Server` owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def serve(self, sockets: list[socket.socket] | None = None) -> None:
        # uvicorn exits the process when it cannot bind; end the task instead (Server.serve then
        # raises StartupError)
        with contextlib.suppress(SystemExit):
            await super().serve(sockets)


def _extra_mounts(settings: Settings) -> list[Mount]:
    if not settings.allow_console:
        return []
    from oipserve.console import console_mount

    return [console_mount(settings.model_control_mode)]


def observability(settings: Settings) -> Observability:
    """Metrics, logging and tracing as the settings ask; :class:`StartupError` for a
    ``--metrics-config`` / ``--trace-config`` that does not parse. Logging is configured, not
    installed (see :func:`run`)."""
    try:
        metrics = (
            Metrics(MetricsConfig.parse(settings.metrics_config))
            if settings.allow_metrics
            else None
        )
        tracing = Tracing(TraceConfig.parse(settings.trace_config))
    except (ValueError, RuntimeError) as exc:
        raise StartupError(str(exc)) from None
    logs = LogControl(
        LogSettings.from_level(settings.log_level, settings.log_format, settings.log_file)
    )
    return Observability(metrics=metrics, logs=logs, tracing=tracing)


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` with ``SO_REUSEPORT``, for uvicorn's ``sockets=``: the
    workers of ``--workers N`` each bind one and the kernel spreads connections over them."""
    family, kind, proto, _, address = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class Server:
    def __init__(self, settings: Settings, *, link: WorkerRole | None = None) -> None:
        """``link``: this server is one worker of ``--workers N`` (its siblings behind it)."""
        self.settings = settings
        self.observability = observability(settings)
        self.link = link
        self.execution = Execution(Executor(max_workers=settings.model_threads))
        self.registry = Registry(
            settings.model_repository,
            self.execution,
            allow_uploads=settings.allow_model_upload,
            upload_max_bytes=settings.model_upload_max_bytes,
            metrics_config=self.observability.metrics_config,
            metric_names=self.observability.metric_names,
            model_name=settings.model_name,
            auto_complete=not settings.disable_auto_complete_config,
        )
        self.execution.on_unavailable = self.registry.instance_unavailable
        self.dataplane = DataPlane(
            self.registry,
            server_name=settings.server_name,
            model_control_mode=settings.model_control_mode,
            strict_readiness=settings.strict_readiness,
            observability=self.observability,
        )
        try:
            self.policy = AccessPolicy.from_options(
                settings.http_restricted_api, settings.grpc_restricted_protocol, settings.api_key
            )
            self.tls = tls_files(
                settings.ssl_certfile,
                settings.ssl_keyfile,
                settings.ssl_ca_certs,
                "required" if settings.grpc_use_ssl_mutual else settings.ssl_client_auth,
                required=settings.grpc_use_ssl or settings.grpc_use_ssl_mutual,
            )
        except (ConfigError, TLSConfigError) as exc:
            raise StartupError(str(exc)) from None
        tensor.set_limits(settings.max_tensor_elements, settings.max_tensor_bytes)
        self.in_flight = InFlight(settings.max_in_flight)
        self.connections = ConnectionState()
        self.http_app = HTTPApp(
            self.dataplane,
            settings.http_max_request_bytes,
            _extra_mounts(settings),
            policy=self.policy,
            in_flight=self.in_flight,
        )
        self._stop = asyncio.Event()
        self._hurry = asyncio.Event()
        if link is not None:
            link.attach(self)
        self._http: _UvicornServer | None = None
        self.http_port: int | None = None
        """The REST port actually bound, once listening (``None`` while not, or when off)."""
        self.grpc_port: int | None = None
        """The gRPC port actually bound, once listening (``None`` while not, or when off)."""
        self._metrics_http: _UvicornServer | None = None
        self.metrics_port: int | None = None
        """The ``--metrics-port`` actually bound, once listening (``None`` when not asked)."""
        self.poller: RepositoryPoller | None = None

    def stop(self, *, drain: bool = True) -> None:
        """Ask a running server to shut down (safe to call from a signal handler): readiness
        turns false at once and HTTP responses say ``Connection: close``. ``drain=False`` (and a
        second call) skips what is left of the drain grace period."""
        if self._stop.is_set() or not drain:
            self._hurry.set()
        self.dataplane.drain()
        self.connections.draining = True
        if self._http is not None:  # requests already past their headers close after answering
            for connection in list(self._http.server_state.connections):
                cycle = getattr(connection, "cycle", None)
                if cycle is not None and not cycle.response_started:
                    cycle.keep_alive = False
        self._stop.set()

    async def start(self) -> None:
        """Load the start-up models through the dataplane. In ``poll`` mode, the poller starts
        from the repository as it was before loading began, so a change made meanwhile is picked
        up by the first poll."""
        root = self.settings.model_repository
        model_name = self.settings.model_name
        if root.is_dir():
            self._log_layout(root, model_name)
        # with --workers N the supervisor runs the one watcher and fans its changes out
        if self.settings.model_control_mode == "poll" and root.is_dir() and self.link is None:
            self.poller = RepositoryPoller(
                root,
                self.settings.repository_poll_secs,
                self.dataplane.load_model,
                self.dataplane.unload_model,
                baseline=poll.snapshot(root, model_name),
                model_name=model_name,
            )
        await self.dataplane.start(self.settings.load_models)

    @staticmethod
    def _log_layout(root: Path, model_name: str) -> None:
        """Say how the root is read (one model, or a repository); :class:`StartupError` when it
        is neither."""
        try:
            check_repository(root)
        except InvalidArgument as exc:
            raise StartupError(exc.message) from None
        if isinstance(layout_of(root, model_name), SingleModel):
            (name,) = layout.list_model_names(root, model_name)
            logger.info("%s is one model's folder: serving it as model '%s'", root, name)
        elif model_name:
            logger.info(
                "--model-name %s ignored: %s is a repository of model folders, each model named "
                "after its folder",
                model_name,
                root,
            )

    async def serve(self) -> None:
        """Run until :meth:`stop` (or SIGINT / SIGTERM)."""
        loop = asyncio.get_running_loop()
        # SIGTERM (Kubernetes, docker stop) drains; Ctrl-C stops without the grace period.
        # A worker of --workers N stops on the supervisor's SIGTERM (Ctrl-C reaches the
        # supervisor, which forwards SIGTERM).
        signals: tuple[tuple[signal.Signals, bool], ...] = (
            ((signal.SIGTERM, True),)
            if self.link is not None
            else ((signal.SIGINT, False), (signal.SIGTERM, True))
        )
        for sig, drain in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, functools.partial(self.stop, drain=drain))
        link_task = None
        if self.link is not None:
            link_task = asyncio.create_task(self.link.run(), name="oipserve-worker-link")
        http_task = await self._start_http() if self.settings.allow_http else None
        metrics_task: asyncio.Task[None] | None = None
        try:
            metrics_task = await self._start_metrics_port()
            grpc_listener = await self._start_grpc() if self.settings.allow_grpc else None
        except StartupError:
            if http_task is not None:
                await self._stop_http(http_task)
            await self._stop_metrics_port(metrics_task)
            raise
        try:
            await self.start()
        except StartupError:  # close what is listening before saying why
            if grpc_listener is not None:
                await grpc_listener.server.stop(0)
            if http_task is not None:
                await self._stop_http(http_task)
            raise
        # Everything built so far (frameworks, models, the server) lives as long as the process:
        # move it out of the cyclic collector's reach, so a full collection no longer walks
        # ~100k long-lived objects (a 45 ms pause, the whole p99 at concurrency 32).
        gc.collect()
        gc.freeze()
        self._log_ready()
        if self.link is not None:
            self.link.started()
        poll_task = None
        if self.poller is not None:
            poll_task = asyncio.create_task(self.poller.run(), name="oipserve-poll")
            logger.info(
                "polling %s for model changes every %gs",
                self.settings.model_repository,
                self.settings.repository_poll_secs,
            )
        stop_task = asyncio.create_task(self._stop.wait())
        watched = {stop_task} if http_task is None else {stop_task, http_task}
        await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
        if poll_task is not None:
            poll_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await poll_task
        await self._drain(http_task, grpc_listener)
        await self._stop_metrics_port(metrics_task)
        stop_task.cancel()
        await self.registry.close()
        self.execution.shutdown()
        self.observability.tracing.shutdown()
        if link_task is not None:
            link_task.cancel()
        logger.info("stopped")

    async def _drain(
        self, http_task: asyncio.Task[None] | None, grpc_listener: GRPCListener | None
    ) -> None:
        """Graceful drain: readiness is already false (:meth:`stop`) and every HTTP response
        says ``Connection: close``; requests are still served for ``drain_grace_secs`` so load
        balancers stop sending, then both listeners close (new connections refused, gRPC clients
        get GOAWAY) and requests queued or running get ``shutdown_timeout_secs`` to finish."""
        grace = self.settings.drain_grace_secs
        if grace > 0 and not (http_task is not None and http_task.done()):
            logger.info("draining: not ready; serving for %gs more", grace)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._hurry.wait(), grace)
        logger.info("shutting down")
        timeout = self.settings.shutdown_timeout_secs
        stopping: list[Awaitable[None]] = []
        if http_task is not None:
            assert self._http is not None
            self._http.should_exit = True
            stopping.append(http_task)
        if grpc_listener is not None:
            stopping.append(grpc_listener.server.stop(timeout))
        await asyncio.gather(*stopping)

    async def _start_metrics_port(self) -> asyncio.Task[None] | None:
        """``/metrics`` alone on ``--metrics-port`` (Triton's 8002), when asked for."""
        port = self.settings.metrics_port
        if port is None or self.observability.metrics is None:
            return None
        config = uvicorn.Config(
            MetricsEndpoint(self.dataplane.metrics_text, standalone=True),
            host=self.settings.host,
            port=port,
            loop="none",
            http="h11",
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level=self.settings.log_level,
            server_header=False,
        )
        self._metrics_http = _UvicornServer(config)
        sockets = None
        if self.link is not None:  # shared by the workers, as the API ports are
            try:
                sockets = [reuse_port_socket(self.settings.host, port)]
            except OSError as exc:
                raise StartupError(
                    f"could not listen for metrics on {self.settings.host}:{port}: {exc}"
                ) from None
        task = asyncio.create_task(self._metrics_http.serve(sockets), name="oipserve-metrics")
        while not self._metrics_http.started and not task.done():
            await asyncio.sleep(0.01)
        if task.done():
            raise StartupError(
                f"could not listen for metrics on {self.settings.host}:{port} (--metrics-port)"
            )
        self.metrics_port = _bound_port(self._metrics_http, port)
        return task

    async def _stop_metrics_port(self, task: asyncio.Task[None] | None) -> None:
        if task is not None and self._metrics_http is not None:
            self._metrics_http.should_exit = True
            await task

    async def _start_http(self) -> asyncio.Task[None]:
        """Listen for REST first, so health probes answer (not ready) while models load."""
        app: ASGIApp = self.http_app
        if self.settings.access_log:  # a wrapper only when asked: nothing on the path otherwise
            app = AccessLog(app, self.http_app.router)
        settings = self.settings
        limits = HTTPLimits(
            header_timeout_s=settings.http_header_timeout_secs,
            body_timeout_s=settings.http_body_timeout_secs,
            max_header_bytes=int(settings.http_max_header_kb * 1024),
            max_headers=settings.http_max_headers,
            max_connections=settings.max_connections,
        )
        tls = self.tls
        config = uvicorn.Config(
            app,
            host=settings.host,
            port=settings.http_port,
            loop="none",
            http=protocol_class(limits, self.connections),
            lifespan="off",
            access_log=False,
            log_config=None,
            log_level=settings.log_level,
            timeout_keep_alive=max(1, round(settings.http_keep_alive_secs)),
            timeout_graceful_shutdown=max(1, round(settings.shutdown_timeout_secs)),
            proxy_headers=False,  # no X-Forwarded-* rewriting: one less middleware per request
            server_header=False,
            ssl_certfile=tls.certfile if tls else None,
            ssl_keyfile=tls.keyfile if tls else None,
            ssl_ca_certs=str(tls.ca_certs) if tls and tls.ca_certs else None,
            ssl_cert_reqs=int(tls.cert_reqs) if tls else int(ssl.CERT_NONE),
        )
        self._http = _UvicornServer(config)
        sockets = None
        if self.link is not None:
            try:
                sockets = [reuse_port_socket(self.settings.host, self.settings.http_port)]
            except OSError as exc:
                where = f"{self.settings.host}:{self.settings.http_port}"
                raise StartupError(f"could not listen on {where}: {exc}") from None
        http_task = asyncio.create_task(self._http.serve(sockets), name="oipserve-http")
        while not self._http.started and not http_task.done():
            await asyncio.sleep(0.01)
        if http_task.done():  # uvicorn logged why (e.g. the address is in use)
            raise StartupError(
                f"could not listen on {self.settings.host}:{self.settings.http_port}"
            )
        self.http_port = _bound_port(self._http, self.settings.http_port)
        return http_task

    async def _stop_http(self, http_task: asyncio.Task[None]) -> None:
        assert self._http is not None
        self._http.should_exit = True
        await http_task

    async def _start_grpc(self) -> GRPCListener:
        try:
            listener = await start_grpc_server(
                self.dataplane,
                self.settings.host,
                self.settings.grpc_port,
                self.settings.grpc_max_message_bytes,
                policy=self.policy,
                ssl_context=server_ssl_context(self.tls) if self.tls else None,
                max_concurrent_streams=self.settings.grpc_max_concurrent_streams,
                in_flight=self.in_flight,
                reuse_port=self.link is not None,
            )
        except RuntimeError as exc:
            where = f"{self.settings.host}:{self.settings.grpc_port}"
            raise StartupError(f"could not listen for gRPC on {where}: {exc}") from None
        self.grpc_port = listener.port
        return listener

    def _log_ready(self) -> None:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::") else self.settings.host
        loaded = [f"{m.name} (v{m.version}, {m.backend})" for m in self.registry.loaded()]
        logger.info("models ready: %s", ", ".join(loaded) or "none")
        if not self.dataplane.own_readiness()[0]:  # each failure was logged once, when it happened
            logger.warning("the server is not ready: a start-up model is not READY (see above)")
        if self.http_port is not None:
            scheme = "https" if self.tls else "http"
            logger.info("REST API at %s://%s:%d/v2", scheme, host, self.http_port)
        else:
            logger.info("REST API off (--allow-http=false)")
        if self.grpc_port is not None:
            logger.info("gRPC API at %s:%d%s", host, self.grpc_port, " (TLS)" if self.tls else "")
        else:
            logger.info("gRPC API off (--allow-grpc=false)")
        logger.info("model control mode: %s", self.settings.model_control_mode)
        if self.observability.metrics is not None:
            if self.http_port is not None:
                logger.info("metrics at http://%s:%d/metrics", host, self.http_port)
            if self.metrics_port is not None:
                logger.info("metrics at http://%s:%d/metrics", host, self.metrics_port)
        if self.observability.tracing.enabled:
            logger.info("tracing: OpenTelemetry")
        if self.settings.allow_model_upload and not self.policy.guards(Category.MODEL_REPOSITORY):
            logger.warning(
                "--allow-model-upload: clients of the repository API can send model files, "
                "which are code the server runs; restrict the model-repository API with a key "
                "(--api-key, or --http-restricted-api and --grpc-restricted-protocol)"
            )


def _bound_port(http: uvicorn.Server, asked: int) -> int:
    """The port uvicorn listens on: the one asked for, or the system's pick for port 0."""
    for server in getattr(http, "servers", ()):
        for sock in server.sockets:
            port: int = sock.getsockname()[1]
            return port
    return asked


def run(settings: Settings) -> None:
    """Serve until interrupted (the ``oipserve serve`` command); installs the process's logging
    (every logger through one handler in ``--log-format``)."""
    server = Server(settings)
    server.observability.logs.install()
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency on every supported platform
        asyncio.run(server.serve())
    else:
        uvloop.run(server.serve())
