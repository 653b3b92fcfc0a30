"""Start the gRPC listener on the running event loop (the same uvloop loop as uvicorn)."""

from __future__ import annotations

import grpc

from oipserve.dataplane import DataPlane
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


async def start_grpc_server(
    dataplane: DataPlane, host: str, port: int, max_message_bytes: int
) -> grpc.aio.Server:
    """Serve ``inference.GRPCInferenceService`` and ``grpc.health.v1.Health`` on ``host:port``.

    Must be awaited inside the running event loop that also runs uvicorn: grpc.aio binds the
    server to the current loop, and inference goes through ``dataplane.infer``, which never blocks
    it. Messages up to ``max_message_bytes`` are accepted and sent; a larger one gets
    ``RESOURCE_EXHAUSTED`` from grpc itself and the server keeps serving. ``SO_REUSEPORT`` is off,
    so a port that is taken fails here (:class:`RuntimeError`) instead of being shared silently.

    Stop it with ``await server.stop(grace)``: new calls are refused at once, calls in flight get
    ``grace`` seconds to finish (``None``: they are cancelled now), then the listener closes. Do
    it before the registry unloads the models.
    """
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(options=options)
    server.add_generic_rpc_handlers(
        (
            inference_handler(InferenceServicer(dataplane)),
            health_handler(HealthServicer(dataplane)),
        )
    )
    address = grpc_address(host, port)
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise RuntimeError(f"could not listen for gRPC on {address}: {exc}") from exc
    if bound == 0:
        raise RuntimeError(f"could not listen for gRPC on {address}")
    await server.start()
    return server
