"""One gRPC server per candidate stack, each serving the floor handler of ``handler.py``.

    python -m benchmarks.grpc_floor.servers CANDIDATE PORT

Candidates (``CANDIDATES``): grpcio's asyncio server with several option sets, grpcio's threaded
server, grpclib, a server of our own on the ``h2`` library, another on ``zttp`` (a sans-IO HTTP/1.1
and HTTP/2 parser with a compiled core), hypercorn and uvicorn (with ``zttp``'s HTTP/2) as ASGI
servers with response trailers, and ``pygrpc-native`` (HTTP/2 and gRPC in Rust, handlers in
Python) through its grpc.aio-compatible server and its low-level call queue. Libraries beyond
oipserve's own dependencies are imported lazily (``pip install -e '.[grpc-floor]'``).

Every candidate that hands calls to asyncio runs the handler in a task per call, as a real server
whose inference is a coroutine must; the threaded grpcio server runs it on its worker threads.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import sys
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent import futures
from typing import Any, cast

import grpc
import uvloop

from benchmarks.grpc_floor.handler import (
    METHOD,
    SERVICE,
    frame,
    model_infer,
    model_infer_bytes,
    unframe,
)
from oipserve.protocol.messages import pb

MAX_MESSAGE = 64 * 1024 * 1024
_GRPC_OPTIONS = [
    ("grpc.max_receive_message_length", MAX_MESSAGE),
    ("grpc.max_send_message_length", MAX_MESSAGE),
]
_RESPONSE_HEADERS = [(b":status", b"200"), (b"content-type", b"application/grpc")]
_OK_TRAILERS = [(b"grpc-status", b"0")]


def _lib(name: str) -> Any:
    return importlib.import_module(name)


_TASKS: set[asyncio.Task[None]] = set()


def _keep(task: asyncio.Task[None]) -> None:
    """Hold a reference to a call's task until it is done (the loop keeps only weak ones)."""
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


# -- grpcio -----------------------------------------------------------------------------------


async def _aio_model_infer(
    request: pb.ModelInferRequest, context: grpc.aio.ServicerContext[Any, Any]
) -> pb.ModelInferResponse:
    return model_infer(request)


def _aio_handler() -> grpc.GenericRpcHandler[Any, Any]:
    return grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                _aio_model_infer,
                request_deserializer=pb.ModelInferRequest.FromString,
                response_serializer=pb.ModelInferResponse.SerializeToString,
            )
        },
    )


async def _grpc_aio(port: int, options: list[tuple[str, Any]]) -> None:
    server = grpc.aio.server(options=[*_GRPC_OPTIONS, *options])
    server.add_generic_rpc_handlers((_aio_handler(),))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def grpc_aio_uvloop(port: int) -> None:
    """grpc.aio on uvloop with oipserve's options (today's stack)."""
    uvloop.run(_grpc_aio(port, [("grpc.so_reuseport", 0)]))


def grpc_aio_asyncio(port: int) -> None:
    """grpc.aio on the standard asyncio loop."""
    asyncio.run(_grpc_aio(port, [("grpc.so_reuseport", 0)]))


def grpc_aio_options(port: int) -> None:
    """grpc.aio on uvloop with SO_REUSEPORT, a stream limit, no BDP probe, bigger HTTP/2 frames."""
    options = [
        ("grpc.so_reuseport", 1),
        ("grpc.max_concurrent_streams", 1000),
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.max_frame_size", 1 << 20),
        ("grpc.optimization_target", "throughput"),
    ]
    uvloop.run(_grpc_aio(port, options))


def grpc_aio_poll(port: int) -> None:
    """grpc.aio on uvloop with ``GRPC_POLL_STRATEGY=poll`` (set by the runner)."""
    uvloop.run(_grpc_aio(port, [("grpc.so_reuseport", 0)]))


def grpc_sync_threads(port: int) -> None:
    """grpcio's threaded server, a ThreadPoolExecutor of 8 workers (``FLOOR_THREADS``)."""

    def handle(request: pb.ModelInferRequest, context: grpc.ServicerContext) -> Any:
        return model_infer(request)

    handler = grpc.method_handlers_generic_handler(
        SERVICE,
        {
            "ModelInfer": grpc.unary_unary_rpc_method_handler(
                handle,
                request_deserializer=pb.ModelInferRequest.FromString,
                response_serializer=pb.ModelInferResponse.SerializeToString,
            )
        },
    )
    workers = int(os.environ.get("FLOOR_THREADS", "8"))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers), options=_GRPC_OPTIONS)
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    server.wait_for_termination()


def oipserve_http2(port: int) -> None:
    """oipserve's own server (``transport/grpc/http2.py``: zttp, grpcio handlers, uvloop)."""
    from oipserve.transport.grpc.http2 import GrpcServer

    async def serve() -> None:
        server = GrpcServer(MAX_MESSAGE)
        server.add_generic_rpc_handlers((_aio_handler(),))
        await server.start("127.0.0.1", port)
        await asyncio.Event().wait()

    uvloop.run(serve())


# -- grpclib (pure Python on h2) --------------------------------------------------------------


def grpclib_uvloop(port: int) -> None:
    """grpclib's server (pure Python, on h2) on uvloop."""
    const = _lib("grpclib.const")
    server_mod = _lib("grpclib.server")

    class Service:
        async def ModelInfer(self, stream: Any) -> None:
            request = await stream.recv_message()
            await stream.send_message(model_infer(request))

        def __mapping__(self) -> dict[str, Any]:
            return {
                METHOD: const.Handler(
                    self.ModelInfer,
                    const.Cardinality.UNARY_UNARY,
                    pb.ModelInferRequest,
                    pb.ModelInferResponse,
                )
            }

    async def serve() -> None:
        server = server_mod.Server([Service()])
        await server.start("127.0.0.1", port)
        await server.wait_closed()

    uvloop.run(serve())


# -- our own protocol classes on a sans-IO HTTP/2 library --------------------------------------


class _H2Protocol(asyncio.Protocol):
    """gRPC unary calls on the ``h2`` library (pure Python), one task per call."""

    def __init__(self) -> None:
        h2_config = _lib("h2.config")
        self._h2_connection = _lib("h2.connection")
        self._events = _lib("h2.events")
        self.conn = self._h2_connection.H2Connection(
            config=h2_config.H2Configuration(client_side=False, header_encoding=None)
        )
        self.bodies: dict[int, bytearray] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.conn.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        events = self._events
        for event in self.conn.receive_data(data):
            if isinstance(event, events.RequestReceived):
                self.bodies[event.stream_id] = bytearray()
            elif isinstance(event, events.DataReceived):
                self.bodies[event.stream_id] += event.data
                self.conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            elif isinstance(event, events.StreamEnded):
                body = bytes(self.bodies.pop(event.stream_id))
                _keep(asyncio.get_running_loop().create_task(self.call(event.stream_id, body)))
            elif isinstance(event, events.StreamReset):
                self.bodies.pop(event.stream_id, None)
        self._flush()

    async def call(self, stream_id: int, body: bytes) -> None:
        answer = frame(model_infer_bytes(unframe(body)))
        self.conn.send_headers(stream_id, _RESPONSE_HEADERS)
        self.conn.send_data(stream_id, answer)
        self.conn.send_headers(stream_id, _OK_TRAILERS, end_stream=True)
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


class _ZttpProtocol(asyncio.Protocol):
    """gRPC unary calls on ``zttp`` (HTTP/2 framing and HPACK compiled), one task per call."""

    def __init__(self) -> None:
        self.zttp = _lib("zttp")
        self.conn = self.zttp.Connection(self.zttp.SERVER, protocol=self.zttp.HTTP2)
        self.bodies: dict[int, bytes] = {}
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.conn.initiate_connection()
        self._flush()

    def data_received(self, data: bytes) -> None:
        zttp = self.zttp
        conn = self.conn
        conn.receive_data(data)
        loop = asyncio.get_running_loop()
        while (event := conn.next_event()) is not zttp.NEED_DATA:
            kind = type(event)
            if kind is zttp.Request:
                self.bodies[event.stream_id] = b""
            elif kind is zttp.Data:
                self.bodies[event.stream_id] += event.data
            elif kind is zttp.EndOfMessage:
                body = self.bodies.pop(event.stream_id)
                _keep(loop.create_task(self.call(event.stream_id, body)))
            elif kind is zttp.RstStream:
                self.bodies.pop(event.stream_id, None)
            elif event is zttp.CONNECTION_CLOSED:
                break
        self._flush()

    async def call(self, stream_id: int, body: bytes) -> None:
        answer = frame(model_infer_bytes(unframe(body)))
        stream = self.conn.stream(stream_id)
        stream.send_response(200, [(b"content-type", b"application/grpc")])
        stream.send_data(answer)
        stream.end_message(_OK_TRAILERS)
        self._flush()

    def _flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


def _serve_protocol(port: int, factory: Callable[[], asyncio.Protocol]) -> None:
    async def serve() -> None:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(factory, "127.0.0.1", port)
        await server.serve_forever()

    uvloop.run(serve())


def own_h2(port: int) -> None:
    """Our own asyncio protocol on the h2 library, uvloop."""
    _serve_protocol(port, _H2Protocol)


def own_zttp(port: int) -> None:
    """Our own asyncio protocol on zttp's HTTP/2, uvloop."""
    _serve_protocol(port, _ZttpProtocol)


# -- ASGI servers that send HTTP/2 response trailers -------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]


async def grpc_asgi_app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """gRPC unary calls as an ASGI app (``http.response.trailers`` extension)."""
    if scope["type"] != "http":
        return
    body = b""
    more = True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    answer = frame(model_infer_bytes(unframe(body)))
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/grpc")],
            "trailers": True,
        }
    )
    await send({"type": "http.response.body", "body": answer})
    await send({"type": "http.response.trailers", "headers": _OK_TRAILERS})


def hypercorn_asgi(port: int) -> None:
    """hypercorn (HTTP/2 on h2, trailers) on uvloop."""
    config_mod = _lib("hypercorn.config")
    serve = _lib("hypercorn.asyncio").serve
    config = config_mod.Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.loglevel = "WARNING"
    config.accesslog = None
    uvloop.run(serve(grpc_asgi_app, config, mode="asgi"))


def uvicorn_zttp(port: int) -> None:
    """uvicorn with ``http="zttp"``, ``http2=True`` (prior-knowledge h2c, trailers), uvloop."""
    import uvicorn

    uvicorn.run(
        grpc_asgi_app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="zttp",
        http2=True,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )


# -- pygrpc-native (HTTP/2 and gRPC in Rust) ---------------------------------------------------


def pygrpc_native_aio(port: int) -> None:
    """pygrpc-native's grpc.aio-compatible server on uvloop."""
    aio = _lib("pygrpc_native.aio")

    async def serve() -> None:
        server = aio.server(options=_GRPC_OPTIONS)
        server.add_registered_method_handlers(
            SERVICE,
            {
                "ModelInfer": grpc.unary_unary_rpc_method_handler(
                    _aio_model_infer,
                    request_deserializer=pb.ModelInferRequest.FromString,
                    response_serializer=pb.ModelInferResponse.SerializeToString,
                )
            },
        )
        server.add_insecure_port(f"127.0.0.1:{port}")
        await server.start()
        await server.wait_for_termination()

    uvloop.run(serve())


def pygrpc_native_front(port: int) -> None:
    """pygrpc-native's low-level call queue: a thread hands call batches to uvloop, a task each."""
    native = _lib("pygrpc_native")
    front = native.NativeGrpcFront(f"127.0.0.1:{port}", [(METHOD, False)])

    async def call(call_id: int, payload: bytes) -> None:
        front.respond(call_id, model_infer_bytes(payload))

    async def serve() -> None:
        loop = asyncio.get_running_loop()

        def on_events(events: list[tuple[Any, ...]]) -> None:
            for kind, call_id, _method, payload, _key in events:
                if kind == native.EVENT_CALL:
                    _keep(loop.create_task(call(call_id, payload)))

        def pump() -> None:
            while (events := front.recv_batch(64)) is not None:
                loop.call_soon_threadsafe(on_events, events)

        front.start()
        threading.Thread(target=pump, daemon=True).start()
        await asyncio.Event().wait()

    uvloop.run(serve())


CANDIDATES: dict[str, Callable[[int], None]] = {
    "grpc.aio+uvloop": grpc_aio_uvloop,
    "grpc.aio+asyncio": grpc_aio_asyncio,
    "grpc.aio+options": grpc_aio_options,
    "grpc.aio+poll": grpc_aio_poll,
    "grpc.server+threads": grpc_sync_threads,
    "grpclib": grpclib_uvloop,
    "own-h2": own_h2,
    "own-zttp": own_zttp,
    "oipserve-http2": oipserve_http2,
    "hypercorn": hypercorn_asgi,
    "uvicorn+zttp": uvicorn_zttp,
    "pygrpc-native.aio": pygrpc_native_aio,
    "pygrpc-native-front": pygrpc_native_front,
}
"""Candidate name → function serving the floor handler on 127.0.0.1:PORT until killed."""

ENVIRONMENT: dict[str, dict[str, str]] = {"grpc.aio+poll": {"GRPC_POLL_STRATEGY": "poll"}}
"""Extra environment variables a candidate is started with."""


def main(argv: list[str]) -> None:
    name, port = argv[1:]
    CANDIDATES[name](int(port))


if __name__ == "__main__":
    main(sys.argv)
