"""Start the gRPC listener on the running event loop (the same uvloop loop as uvicorn)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass

from oipserve.auth import AccessPolicy
from oipserve.dataplane import DataPlane
from oipserve.limits import InFlight
from oipserve.transport.grpc.http2 import GrpcServer
from oipserve.transport.grpc.service import (
    HealthServicer,
    InferenceServicer,
    health_handler,
    inference_handler,
)


def grpc_address(host: str, port: int) -> str:
    """``host:port`` as gRPC wants it (IPv6 literals in brackets)."""
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class GRPCListener:
    server: GrpcServer
    port: int
    """The port actually bound (the one asked for, or the system's pick for port 0)."""


async def start_grpc_server(
    dataplane: DataPlane,
    host: str,
    port: int,
    max_message_bytes: int,
    *,
    policy: AccessPolicy | None = None,
    ssl_context: ssl.SSLContext | None = None,
    max_concurrent_streams: int = 256,
    in_flight: InFlight | None = None,
    reuse_port: bool = False,
) -> GRPCListener:
    """Serve ``inference.GRPCInferenceService`` and ``grpc.health.v1.Health`` on ``host:port``
    (port 0: a free port chosen by the system, returned in the :class:`GRPCListener`).

    Must be awaited inside the running event loop that also runs uvicorn: the server
    (:class:`~oipserve.transport.grpc.http2.GrpcServer`) runs its calls as tasks on that loop, and
    inference goes through ``dataplane.infer``, which never blocks it. Every call is checked
    against ``policy`` (:mod:`oipserve.auth`) first and counted in ``in_flight`` (health
    excluded). With ``ssl_context``
    (:func:`~oipserve.transport.grpc.credentials.server_ssl_context`) the port speaks TLS only. A
    connection runs at most ``max_concurrent_streams`` calls at once. Messages up to
    ``max_message_bytes`` are accepted and sent; a larger one gets ``RESOURCE_EXHAUSTED`` and the
    server keeps serving. ``SO_REUSEPORT`` is off unless ``reuse_port`` (the workers of
    ``--workers N``, after the supervisor made sure the port was free), so a port that is taken
    fails here (:class:`RuntimeError`) instead of being shared silently.

    Stop it with ``await listener.server.stop(grace)``: new calls are refused at once (``GOAWAY``),
    calls in flight get ``grace`` seconds to finish (``None``: they are cancelled now), then the
    connections close. Do it before the registry unloads the models.
    """
    server = GrpcServer(max_message_bytes, max_concurrent_streams=max_concurrent_streams)
    server.add_generic_rpc_handlers(
        (
            inference_handler(InferenceServicer(dataplane), policy, in_flight),
            health_handler(HealthServicer(dataplane), policy),
        )
    )
    address = grpc_address(host, port)
    try:
        bound = await server.start(host, port, ssl_context, reuse_port=reuse_port)
    except OSError as exc:
        raise RuntimeError(f"could not listen for gRPC on {address}: {exc}") from exc
    return GRPCListener(server, bound)
