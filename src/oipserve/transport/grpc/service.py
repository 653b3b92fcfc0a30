"""The gRPC transport: ``inference.GRPCInferenceService`` and ``grpc.health.v1.Health``.

The servicers are grpcio method handlers; ``http2.py`` serves them (the context they get is its
:class:`~oipserve.transport.grpc.http2.CallContext`, grpc.aio's ``ServicerContext`` in part).

Our messages live in the protobuf package ``oipserve.grpc.v2`` (PROTOCOL.md §0), so the service is
registered by hand under its wire name with :func:`grpc.method_handlers_generic_handler`; the method
table is read from the service descriptor of our ``.proto``, so every rpc it declares is served and
an rpc missing from :class:`InferenceServicer` fails at start-up, not at the first call.

Handlers stay thin: decode (``convert.py``), call the :class:`~oipserve.dataplane.DataPlane`,
encode. Errors are the call status: an :class:`~oipserve.errors.OIPServeError` through the one
table in ``errors.py``; anything else is ``INTERNAL`` naming the rpc and the model, and the server
keeps serving. ``ModelStreamInfer`` is the exception (§4.5): per-request errors travel inside the
stream as ``error_message``, and the stream stays open.

Refusals that Triton's clients and tests read carry Triton's status and text (server
``src/grpc/grpc_server.cc``: a repository parameter of the wrong type, an unrecognized load
parameter, a ``repository_name``; core's ``model_repository_manager.cc``: load / unload outside
``explicit`` mode, ``UNAVAILABLE``), pinned by ``tests/integration/test_triton_refusals.py``;
``convert.py`` does the same for malformed inference requests (``infer_handler.cc``).

Triton rpcs that have no implementation yet answer ``UNIMPLEMENTED``; each is its own method of
:class:`InferenceServicer`, so the issue that implements one replaces just that method.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, Literal, TypeAlias

import grpc
from google.protobuf import json_format
from grpc_health.v1 import health_pb2

from oipserve.auth import AccessPolicy, Category, Refusal
from oipserve.dataplane import DataPlane
from oipserve.errors import (
    DecoupledModel,
    InternalError,
    InvalidArgument,
    OIPServeError,
    Unsupported,
)
from oipserve.limits import InFlight
from oipserve.observability import tracing
from oipserve.observability.metrics import TransportCounters
from oipserve.protocol.messages import SERVICE_NAME, pb
from oipserve.repository import triton
from oipserve.transport.grpc import observability
from oipserve.transport.grpc.convert import infer_request_from_proto, infer_response_to_proto
from oipserve.transport.grpc.errors import code_of

if TYPE_CHECKING:
    from google.protobuf.message import Message

logger = logging.getLogger("oipserve.grpc")

HEALTH_SERVICE_NAME: Final = "grpc.health.v1.Health"

STREAM_WINDOW: Final = 256
"""Requests of one ``ModelStreamInfer`` stream in flight at once; reading pauses beyond it."""
HEALTH_WATCH_INTERVAL_S: Final = 1.0
"""How often a ``Health/Watch`` stream re-reads readiness (the dataplane has no change events)."""

DECOUPLED_REFUSED: Final = "ModelInfer RPC doesn't support models with decoupled transaction policy"
"""Triton's text (UNIMPLEMENTED) for unary inference on a decoupled model: server
``src/grpc/infer_handler.cc``."""
_GRPC_ERROR_HEADER: Final = "triton_grpc_error"

Context: TypeAlias = "grpc.aio.ServicerContext[Any, Any]"
Unary: TypeAlias = Callable[[Any, Context], Awaitable[Any]]
Streaming: TypeAlias = Callable[[Any, Context], Awaitable[None]]


class InferenceServicer:
    """One async method per rpc of ``GRPCInferenceService`` (PROTOCOL.md §4.1), named as the rpc."""

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane
        self._tracing = dataplane.observability.tracing.enabled
        metrics = dataplane.observability.metrics
        self.counters = metrics.transport if metrics is not None else None
        """Calls by rpc and status code (``oipserve_grpc_requests_total``)."""

    # -- health and metadata (OIP core) --------------------------------------------------------

    async def ServerLive(
        self, request: pb.ServerLiveRequest, context: Context
    ) -> pb.ServerLiveResponse:
        return pb.ServerLiveResponse(live=self.dataplane.live())

    async def ServerReady(
        self, request: pb.ServerReadyRequest, context: Context
    ) -> pb.ServerReadyResponse:
        return pb.ServerReadyResponse(ready=self.dataplane.ready())

    async def ModelReady(
        self, request: pb.ModelReadyRequest, context: Context
    ) -> pb.ModelReadyResponse:
        readiness = self.dataplane.model_readiness(request.name, request.version)
        return pb.ModelReadyResponse(ready=readiness.ready)

    async def ServerMetadata(
        self, request: pb.ServerMetadataRequest, context: Context
    ) -> pb.ServerMetadataResponse:
        metadata = self.dataplane.server_metadata()
        return pb.ServerMetadataResponse(
            name=metadata.name, version=metadata.version, extensions=metadata.extensions
        )

    async def ModelMetadata(
        self, request: pb.ModelMetadataRequest, context: Context
    ) -> pb.ModelMetadataResponse:
        metadata = self.dataplane.model_metadata(request.name, request.version)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=metadata.name,
            versions=metadata.versions,
            platform=metadata.platform,
            inputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.inputs
            ],
            outputs=[
                tensor(name=t.name, datatype=t.datatype, shape=t.shape) for t in metadata.outputs
            ],
        )

    # -- inference -----------------------------------------------------------------------------

    async def ModelInfer(
        self, request: pb.ModelInferRequest, context: Context
    ) -> pb.ModelInferResponse:
        if self._tracing:
            token = tracing.set_carrier(_trace_metadata(context))
        try:
            response = await self.dataplane.infer(infer_request_from_proto(request))
        except DecoupledModel:
            raise Unsupported(DECOUPLED_REFUSED) from None
        finally:
            if self._tracing:
                tracing.reset_carrier(token)
        return infer_response_to_proto(response)

    async def ModelStreamInfer(
        self, requests: AsyncIterator[pb.ModelInferRequest], context: Context
    ) -> None:
        """The responses of each request as they come, requests answered in request order;
        requests run concurrently. A decoupled model's request gets 0..N responses, each with
        ``triton_final_response`` saying whether it is the last (and an empty final one when the
        request sets ``triton_enable_empty_final_response``), as Triton's
        ``src/grpc/stream_infer_handler.cc`` writes them; any other request exactly one, final.

        A failed request is answered in the stream (``error_message``, ``infer_response`` holding
        only the id) and the stream goes on, unless the client sent the ``triton_grpc_error: true``
        header: then the first error ends the stream with its status, as Triton does. When the
        client goes, every request of the stream still running is cancelled (a decoupled model
        sees ``is_cancelled()``).
        """
        metadata = context.invocation_metadata() or ()
        errors_end_stream = any(
            key == _GRPC_ERROR_HEADER and str(value).lower() == "true" for key, value in metadata
        )
        window = asyncio.Semaphore(STREAM_WINDOW)
        order: asyncio.Queue[_Pending | None] = asyncio.Queue()
        started: list[_Pending] = []

        async def read() -> None:
            try:
                async for message in requests:
                    await window.acquire()
                    pending = _Pending()
                    pending.task = asyncio.ensure_future(self._stream_one(message, pending.out))
                    started.append(pending)
                    order.put_nowait(pending)
            finally:
                order.put_nowait(None)

        reader = asyncio.ensure_future(read())
        try:
            while (pending := await order.get()) is not None:
                try:
                    while (item := await pending.out.get()) is not None:
                        response, error = item
                        if error is not None and errors_end_stream:
                            await context.abort(code_of(error.kind), error.message)
                        await context.write(response)
                finally:
                    window.release()
                started.remove(pending)  # answered in full (else cancelled below)
            await reader  # a broken request stream ends the call with its error
        finally:
            reader.cancel()
            for pending in started:
                if pending.task is not None:
                    pending.task.cancel()

    async def _stream_one(self, message: pb.ModelInferRequest, out: _Responses) -> None:
        """Run one request of a stream, queueing its responses (and ``None`` once it ended)."""
        try:
            async for response in self.dataplane.infer_stream(infer_request_from_proto(message)):
                final = {"triton_final_response": response.final}
                out.put_nowait(
                    (
                        pb.ModelStreamInferResponse(
                            infer_response=infer_response_to_proto(response, final)
                        ),
                        None,
                    )
                )
        except OIPServeError as error:
            out.put_nowait((_stream_error(message, error), error))
        except Exception as exc:
            failure = _internal_error("ModelStreamInfer", message, exc)
            out.put_nowait((_stream_error(message, failure), failure))
        finally:
            out.put_nowait(None)

    # -- model configuration and repository (Triton extensions, PROTOCOL.md §3.1-3.2) ---------

    async def ModelConfig(
        self, request: pb.ModelConfigRequest, context: Context
    ) -> pb.ModelConfigResponse:
        config = self.dataplane.model_config(request.name, request.version)
        return pb.ModelConfigResponse(config=triton.to_proto(config))

    async def ModelStatistics(
        self, request: pb.ModelStatisticsRequest, context: Context
    ) -> pb.ModelStatisticsResponse:
        statistics = await self.dataplane.server_statistics(request.name, request.version)
        return json_format.ParseDict(statistics, pb.ModelStatisticsResponse())

    async def RepositoryIndex(
        self, request: pb.RepositoryIndexRequest, context: Context
    ) -> pb.RepositoryIndexResponse:
        _no_repository_name(request.repository_name)
        entry = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(
            models=[
                entry(name=e.name, version=e.version, state=e.state, reason=e.reason)
                for e in self.dataplane.repository_index(request.ready)
            ]
        )

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, context: Context
    ) -> pb.RepositoryModelLoadResponse:
        _no_repository_name(request.repository_name)
        config: str | None = None
        files: dict[str, bytes] = {}
        for key, parameter in request.parameters.items():
            choice = parameter.WhichOneof("parameter_choice")
            if key == "config":
                if choice != "string_param":
                    raise InvalidArgument(_wrong_type(f"load parameter '{key}'", "string_param"))
                config = parameter.string_param
            elif key.startswith("file:"):
                if choice != "bytes_param":
                    raise InvalidArgument(_wrong_type(f"load parameter '{key}'", "bytes_param"))
                files[key[len("file:") :]] = parameter.bytes_param
            else:
                raise InvalidArgument(
                    f"unrecognized load parameter '{key}'. (expected 'config' or 'file:<path>')"
                )
        await self.dataplane.repository_load(request.model_name, config, files)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, context: Context
    ) -> pb.RepositoryModelUnloadResponse:
        _no_repository_name(request.repository_name)
        unload_dependents = False
        if "unload_dependents" in request.parameters:
            parameter = request.parameters["unload_dependents"]
            if parameter.WhichOneof("parameter_choice") != "bool_param":
                raise InvalidArgument(_wrong_type("'unload_dependents' parameter", "bool_param"))
            unload_dependents = parameter.bool_param
        await self.dataplane.repository_unload(request.model_name, unload_dependents)
        return pb.RepositoryModelUnloadResponse()

    # -- Triton extensions not implemented yet (one method each, to be replaced) ---------------

    async def SystemSharedMemoryStatus(
        self, request: pb.SystemSharedMemoryStatusRequest, context: Context
    ) -> pb.SystemSharedMemoryStatusResponse:
        raise _unimplemented("SystemSharedMemoryStatus", "system shared memory")

    async def SystemSharedMemoryRegister(
        self, request: pb.SystemSharedMemoryRegisterRequest, context: Context
    ) -> pb.SystemSharedMemoryRegisterResponse:
        raise _unimplemented("SystemSharedMemoryRegister", "system shared memory")

    async def SystemSharedMemoryUnregister(
        self, request: pb.SystemSharedMemoryUnregisterRequest, context: Context
    ) -> pb.SystemSharedMemoryUnregisterResponse:
        raise _unimplemented("SystemSharedMemoryUnregister", "system shared memory")

    async def CudaSharedMemoryStatus(
        self, request: pb.CudaSharedMemoryStatusRequest, context: Context
    ) -> pb.CudaSharedMemoryStatusResponse:
        raise _unimplemented("CudaSharedMemoryStatus", "CUDA shared memory")

    async def CudaSharedMemoryRegister(
        self, request: pb.CudaSharedMemoryRegisterRequest, context: Context
    ) -> pb.CudaSharedMemoryRegisterResponse:
        raise _unimplemented("CudaSharedMemoryRegister", "CUDA shared memory")

    async def CudaSharedMemoryUnregister(
        self, request: pb.CudaSharedMemoryUnregisterRequest, context: Context
    ) -> pb.CudaSharedMemoryUnregisterResponse:
        raise _unimplemented("CudaSharedMemoryUnregister", "CUDA shared memory")

    # -- logging and trace extensions (PROTOCOL.md §3.6, §3.7) ----------------------------------

    async def TraceSetting(
        self, request: pb.TraceSettingRequest, context: Context
    ) -> pb.TraceSettingResponse:
        return observability.trace_setting(self.dataplane, request)

    async def LogSettings(
        self, request: pb.LogSettingsRequest, context: Context
    ) -> pb.LogSettingsResponse:
        return observability.log_settings(self.dataplane, request)


_Response: TypeAlias = "tuple[pb.ModelStreamInferResponse, OIPServeError | None]"
_Responses: TypeAlias = "asyncio.Queue[_Response | None]"


class _Pending:
    """One request of a ``ModelStreamInfer`` stream: its task and the responses it queued."""

    __slots__ = ("out", "task")

    def __init__(self) -> None:
        self.out: _Responses = asyncio.Queue()
        self.task: asyncio.Task[None] | None = None


def _trace_metadata(context: Context) -> dict[str, str] | None:
    """The W3C trace-context entries of a call's metadata, for the tracer to continue its trace."""
    metadata = context.invocation_metadata() or ()
    found = {
        key: value if isinstance(value, str) else value.decode("latin-1")
        for key, value in metadata
        if key in tracing.PROPAGATION_KEYS
    }
    return found or None


def _wrong_type(what: str, expected: str) -> str:
    """Triton's text for a repository parameter of the wrong type (``grpc_server.cc``:
    ``invalid value type for load parameter 'config', expected string_param.``)."""
    return f"invalid value type for {what}, expected {expected}."


def _no_repository_name(name: str) -> None:
    if name:
        raise Unsupported("'repository_name' specification is not supported")


def _unimplemented(rpc: str, feature: str) -> Unsupported:
    return Unsupported(
        f"{rpc} is not implemented: oipserve does not support {feature} over gRPC yet"
    )


def _stream_error(
    message: pb.ModelInferRequest, error: OIPServeError
) -> pb.ModelStreamInferResponse:
    return pb.ModelStreamInferResponse(
        error_message=error.message, infer_response=pb.ModelInferResponse(id=message.id)
    )


def _internal_error(rpc: str, request: Any, exc: Exception) -> OIPServeError:
    """A bug of ours (or an unexpected library error): log it, report INTERNAL naming the model."""
    model = getattr(request, "model_name", None) or getattr(request, "name", None)
    target = f" for model '{model}'" if model else ""
    logger.exception("unhandled error in %s%s", rpc, target)
    return InternalError(f"{rpc}{target} failed: {type(exc).__name__}: {exc}")


class HealthServicer:
    """``grpc.health.v1.Health``: SERVING once the dataplane is ready, NOT_SERVING before.

    The overall health (service ``""``) and ``inference.GRPCInferenceService`` are known; any other
    service name is ``NOT_FOUND`` for ``Check`` and ``SERVICE_UNKNOWN`` for ``Watch``, as the gRPC
    health protocol says.
    """

    SERVICES: Final = frozenset({"", SERVICE_NAME})

    def __init__(self, dataplane: DataPlane) -> None:
        self.dataplane = dataplane

    def status(self, service: str) -> health_pb2.HealthCheckResponse.ServingStatus.ValueType:
        if service not in self.SERVICES:
            return health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
        if self.dataplane.ready():
            return health_pb2.HealthCheckResponse.SERVING
        return health_pb2.HealthCheckResponse.NOT_SERVING

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: Context
    ) -> health_pb2.HealthCheckResponse:
        if request.service not in self.SERVICES:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service '{request.service}'")
        return health_pb2.HealthCheckResponse(status=self.status(request.service))

    async def Watch(self, request: health_pb2.HealthCheckRequest, context: Context) -> None:
        last = None
        while True:
            status = self.status(request.service)
            if status != last:
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            await asyncio.sleep(HEALTH_WATCH_INTERVAL_S)


# -- registration ------------------------------------------------------------------------------

RPC_CATEGORY: Final[dict[str, Category]] = {
    "ServerLive": Category.HEALTH,
    "ServerReady": Category.HEALTH,
    "ModelReady": Category.HEALTH,
    "ServerMetadata": Category.METADATA,
    "ModelMetadata": Category.METADATA,
    "ModelInfer": Category.INFERENCE,
    "ModelStreamInfer": Category.INFERENCE,
    "ModelConfig": Category.MODEL_CONFIG,
    "ModelStatistics": Category.STATISTICS,
    "RepositoryIndex": Category.MODEL_REPOSITORY,
    "RepositoryModelLoad": Category.MODEL_REPOSITORY,
    "RepositoryModelUnload": Category.MODEL_REPOSITORY,
    "SystemSharedMemoryStatus": Category.SHARED_MEMORY,
    "SystemSharedMemoryRegister": Category.SHARED_MEMORY,
    "SystemSharedMemoryUnregister": Category.SHARED_MEMORY,
    "CudaSharedMemoryStatus": Category.SHARED_MEMORY,
    "CudaSharedMemoryRegister": Category.SHARED_MEMORY,
    "CudaSharedMemoryUnregister": Category.SHARED_MEMORY,
    "TraceSetting": Category.TRACE,
    "LogSettings": Category.LOGGING,
    # grpc.health.v1.Health: Triton guards it with the health category too
    "Check": Category.HEALTH,
    "Watch": Category.HEALTH,
}
"""Each rpc's restricted-protocol category, as Triton's ``grpc_server.cc`` assigns them; an rpc
missing here fails at start-up (``_method_handlers``), so a new rpc cannot go unguarded."""

REFUSAL_CODE: Final = {
    "restricted": grpc.StatusCode.UNAVAILABLE,  # Triton's choice for a restricted protocol
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
}

Check: TypeAlias = Callable[[Context], "Refusal | None"]


def access_check(policy: AccessPolicy | None, rpc: str) -> Check | None:
    """The access check of one rpc (None when the policy checks nothing): the stack-neutral
    :meth:`AccessPolicy.check_grpc` over the call's invocation metadata."""
    category = RPC_CATEGORY[rpc]
    if policy is None or not policy.active:
        return None

    def check(context: Context) -> Refusal | None:
        return policy.check_grpc(category, context.invocation_metadata())

    return check


async def _refuse(context: Context, refusal: Refusal) -> None:
    await context.abort(REFUSAL_CODE[refusal.kind], refusal.message)


def _aborted_code(context: Context) -> str:
    """The status an ``abort`` set: our server's ``CallContext.aborted``, or grpc.aio's
    ``code()``."""
    aborted = getattr(context, "aborted", None)
    code = getattr(aborted, "code", None)
    if code is None and hasattr(context, "code"):
        code = context.code()
    return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"


def _guard_unary(
    rpc: str,
    behaviour: Unary,
    check: Check | None = None,
    counters: TransportCounters | None = None,
    in_flight: InFlight | None = None,
) -> Unary:
    async def handler(request: Any, context: Context) -> Any:
        code = "OK"
        try:
            if check is not None and (refusal := check(context)) is not None:
                await _refuse(context, refusal)
            if in_flight is None:
                return await behaviour(request, context)
            in_flight.enter()  # the server-wide limit (503 / UNAVAILABLE beyond)
            try:
                return await behaviour(request, context)
            finally:
                in_flight.leave()
        except grpc.aio.AbortError:
            code = _aborted_code(context)
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except OIPServeError as error:
            code = code_of(error.kind).name
            await context.abort(code_of(error.kind), error.message)
        except Exception as exc:
            failure = _internal_error(rpc, request, exc)
            code = code_of(failure.kind).name
            await context.abort(code_of(failure.kind), failure.message)
        finally:
            if counters is not None:  # calls by rpc and status (oipserve_grpc_requests_total)
                counters.grpc_call(rpc, code)

    return handler


def _guard_stream(
    rpc: str,
    behaviour: Streaming,
    check: Check | None = None,
    counters: TransportCounters | None = None,
    in_flight: InFlight | None = None,
) -> Streaming:
    async def handler(requests: Any, context: Context) -> None:
        code = "OK"
        try:
            if check is not None and (refusal := check(context)) is not None:
                await _refuse(context, refusal)
            if in_flight is None:
                await behaviour(requests, context)
                return
            in_flight.enter()
            try:
                await behaviour(requests, context)
            finally:
                in_flight.leave()
        except grpc.aio.AbortError:
            code = _aborted_code(context)
            raise
        except asyncio.CancelledError:
            code = "CANCELLED"
            raise
        except OIPServeError as error:
            code = code_of(error.kind).name
            await context.abort(code_of(error.kind), error.message)
        except Exception as exc:
            failure = _internal_error(rpc, None, exc)
            code = code_of(failure.kind).name
            await context.abort(code_of(failure.kind), failure.message)
        finally:
            if counters is not None:
                counters.grpc_call(rpc, code)

    return handler


#: how an rpc streams: neither side, both sides, or only the server's responses
RpcKind: TypeAlias = Literal["unary", "bidi", "server_stream"]
Method: TypeAlias = "tuple[str, type[Message], type[Message], RpcKind]"


def _method_handlers(
    servicer: object,
    methods: list[Method],
    policy: AccessPolicy | None = None,
    in_flight: InFlight | None = None,
) -> dict[str, grpc.RpcMethodHandler[Any, Any]]:
    handlers: dict[str, grpc.RpcMethodHandler[Any, Any]] = {}
    counters: TransportCounters | None = getattr(servicer, "counters", None)
    for name, request_type, response_type, kind in methods:
        behaviour = getattr(servicer, name, None)
        if behaviour is None:
            raise TypeError(f"{type(servicer).__name__} has no method for rpc {name}")
        if name not in RPC_CATEGORY:
            raise TypeError(f"rpc {name} has no restricted-protocol category (RPC_CATEGORY)")
        check = access_check(policy, name)
        counted = in_flight if RPC_CATEGORY[name] is not Category.HEALTH else None
        codec: dict[str, Any] = {
            "request_deserializer": request_type.FromString,
            "response_serializer": response_type.SerializeToString,
        }
        if kind == "unary":
            handlers[name] = grpc.unary_unary_rpc_method_handler(
                _guard_unary(name, behaviour, check, counters, counted), **codec
            )
        elif kind == "bidi":
            handlers[name] = grpc.stream_stream_rpc_method_handler(
                _guard_stream(name, behaviour, check, counters, counted), **codec
            )
        else:
            handlers[name] = grpc.unary_stream_rpc_method_handler(
                _guard_stream(name, behaviour, check, counters, counted), **codec
            )
    return handlers


def _inference_methods() -> list[Method]:
    """Every rpc of ``GRPCInferenceService`` as our ``.proto`` declares it."""
    service = pb.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    methods: list[Method] = []
    for method in service.methods:
        if method.client_streaming != method.server_streaming:
            raise TypeError(f"rpc {method.name}: only unary and bidirectional rpcs are served")
        kind: RpcKind = "bidi" if method.server_streaming else "unary"
        request_type = getattr(pb, method.input_type.name)
        response_type = getattr(pb, method.output_type.name)
        methods.append((method.name, request_type, response_type, kind))
    return methods


def inference_handler(
    servicer: InferenceServicer,
    policy: AccessPolicy | None = None,
    in_flight: InFlight | None = None,
) -> grpc.GenericRpcHandler[Any, Any]:
    """The generic handler serving ``servicer`` as ``inference.GRPCInferenceService``, each rpc
    checked against ``policy`` (:mod:`oipserve.auth`) first."""
    return grpc.method_handlers_generic_handler(
        SERVICE_NAME, _method_handlers(servicer, _inference_methods(), policy, in_flight)
    )


def health_handler(
    servicer: HealthServicer, policy: AccessPolicy | None = None
) -> grpc.GenericRpcHandler[Any, Any]:
    """The generic handler serving ``servicer`` as ``grpc.health.v1.Health``."""
    request, response = health_pb2.HealthCheckRequest, health_pb2.HealthCheckResponse
    methods: list[Method] = [
        ("Check", request, response, "unary"),
        ("Watch", request, response, "server_stream"),
    ]
    return grpc.method_handlers_generic_handler(
        HEALTH_SERVICE_NAME, _method_handlers(servicer, methods, policy)
    )
