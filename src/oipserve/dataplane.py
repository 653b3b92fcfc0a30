"""The use cases every transport serves: health, metadata, inference, model configuration and the
model repository (index, load, unload), and start-up.

Transports decode their wire format into :mod:`oipserve.protocol.types` and call these methods; the
dataplane checks requests against the model's declared tensors, hands them to the model's
scheduler and builds the protocol response. It never sees HTTP or gRPC, and answers with domain
values (:mod:`oipserve.domain`, :mod:`oipserve.protocol.types`, the
:class:`~oipserve.repository.config.ModelConfig`) that each transport renders itself.

Loading is the registry's business end to end (names, configs, Triton's schema, instances); the
dataplane decides only *whether* a repository call is allowed: model control modes as Triton's
(PROTOCOL.md §0): ``explicit`` (the default) serves the repository API's load and unload; ``poll``
and ``none`` refuse them (``poll`` follows the folder instead, see
:mod:`oipserve.repository.poll`). The index is answered in every mode.

Readiness: :meth:`DataPlane.start` loads the start-up models one by one; each model answers
inference as soon as it is READY (one still loading answers 503 ``LOADING``, one that failed 503
with its load error), while the server's own readiness waits for all of them. Loading and
unloading later never make a ready server not ready; a model that failed at start-up and is
loaded later stops counting against readiness.

Statistics and failure logs: each inference request is recorded once, in :meth:`DataPlane._record`
(success with the scheduler's timings, or failure), the one place metrics and traces hang off.

Streaming: :meth:`DataPlane.infer_stream` answers a request with an async iterator of responses,
the last one ``final``; a decoupled model (see :mod:`oipserve.model`) sends 0..N of them through
the request's :class:`~oipserve.model.ResponseSender`, any other model exactly one. The request is
recorded once, when its final response (or its error) has been produced; closing the iterator
early (the client went away) cancels the request (``is_cancelled()``) and records nothing. Unary
:meth:`DataPlane.infer` on a decoupled model raises :class:`~oipserve.errors.DecoupledModel`, which
each transport words as Triton does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, Sequence
from typing import Any, Final, Protocol

import numpy as np

from oipserve import __version__, classification
from oipserve.domain import IndexEntry, ModelReadiness, ModelState
from oipserve.errors import (
    DecoupledModel,
    ErrorKind,
    InternalError,
    InvalidArgument,
    OIPServeError,
    StartupError,
    Unavailable,
)
from oipserve.model import (
    InferRequest,
    InferResponse,
    Parameter,
    ResponseSender,
    StreamItem,
    TensorSpec,
)
from oipserve.observability.custom import merge_custom
from oipserve.observability.hub import Observability
from oipserve.observability.metrics import FailureReason, ModelData, ScrapeData, failure_reason
from oipserve.observability.tracing import RequestSpan
from oipserve.protocol.datatypes import datatype_of, dtype_of
from oipserve.protocol.types import (
    InferenceRequest,
    InferenceResponse,
    InputTensor,
    ModelMetadata,
    OutputTensor,
    RequestedOutput,
    ServerMetadata,
)
from oipserve.registry import LoadedModel, Registry
from oipserve.repository.config import ModelConfig
from oipserve.scheduling.statistics import RequestTiming, merge_statistics
from oipserve.settings import CONTROL_MODES, ControlMode

logger = logging.getLogger("oipserve.dataplane")

#: request parameters the server interprets itself; never handed to the model
RESERVED_PARAMETERS = frozenset(
    {"binary_data_output", "priority", "timeout", "headers", "triton_enable_empty_final_response"}
)

EXTENSIONS: tuple[str, ...] = (
    "binary_tensor_data",
    "classification",
    "logging",
    "model_configuration",
    "model_repository",
    "model_repository(unload_dependents)",
    "parameters",
    "schedule_policy",
    "statistics",
    "trace",
)

EMPTY_FINAL_RESPONSE: Final = "triton_enable_empty_final_response"
"""Request parameter: end a decoupled model's stream with an empty final response when the model
sends the final flag without a response (Triton's grpc ``stream_infer_handler.cc``)."""

_EXECUTED: Final = object()
"""Queued by a streaming request when the model's ``infer`` call has returned."""

REPOSITORY_CALL_REFUSED = "explicit model load / unload is not allowed if polling is enabled"
"""Triton's text (and UNAVAILABLE) for a repository load / unload outside ``explicit`` mode: core's
``ModelRepositoryManager::LoadUnloadModel`` (src/model_repository_manager/
model_repository_manager.cc) answers it whenever model control is off, in ``none`` mode too. Ours
adds the mode and the remedy after Triton's text."""


class Siblings(Protocol):
    """The other workers of ``--workers N``, as one worker's dataplane reaches them (through the
    supervisor: :class:`oipserve.workers.worker.WorkerLink`)."""

    async def load(
        self, name: str, config: str | None, files: Mapping[str, bytes] | None
    ) -> list[str]:
        """Apply a repository load in every other worker; their errors."""
        ...

    async def unload(self, name: str) -> list[str]: ...

    async def gather(self, what: str, args: dict[str, str]) -> list[Any]:
        """What every other worker reports for ``what`` (``"statistics"``, ...)."""
        ...

    def ready(self) -> tuple[bool, str]:
        """The server's readiness over every worker, and why not."""
        ...

    def changed(self) -> None:
        """This worker's own readiness may have changed."""
        ...


class DataPlane:
    def __init__(
        self,
        registry: Registry,
        *,
        server_name: str = "oipserve",
        model_control_mode: ControlMode = "explicit",
        strict_readiness: bool = True,
        observability: Observability | None = None,
    ) -> None:
        if model_control_mode not in CONTROL_MODES:
            raise ValueError(
                f"model control mode must be one of {', '.join(CONTROL_MODES)}, "
                f"not {model_control_mode!r}"
            )
        self.registry = registry
        self.server_name = server_name
        self.model_control_mode = model_control_mode
        self.strict_readiness = strict_readiness
        self.observability = observability if observability is not None else Observability()
        """Metrics, logging and tracing: what :meth:`_record` feeds and the extensions read."""
        self._metrics_on = self.observability.metrics is not None
        self.started = False
        """Set once start-up loading has finished."""
        self.draining = False
        """Set when the server begins to shut down (SIGTERM): never ready again."""
        self.startup_failures: dict[str, str] = {}
        """``name/version`` → reason for each model that failed to load at start-up."""
        self.siblings: Siblings | None = None
        """The other workers, when this dataplane is one worker of ``--workers N``: repository
        changes fan out to them, statistics are gathered from them, and server readiness is
        theirs and ours together."""
        registry.server = ModelCalls(self)

    # -- start-up ------------------------------------------------------------------------------

    async def start(self, load_models: Sequence[str] = ()) -> None:
        """Load the start-up models: every model in the repository, or in ``explicit`` mode the
        ones ``load_models`` names (empty or ``*``: all). Models load one by one and each serves
        as soon as it is READY; the server is ready once all have been tried (and, with strict
        readiness, all are READY). Failures are logged once, by the registry.

        :class:`StartupError` when the repository is not a folder.
        """
        root = self.registry.root
        if not root.is_dir():
            raise StartupError(f"model repository {root} is not a folder")
        names = list(load_models)
        if self.model_control_mode != "explicit" or not names or "*" in names:
            names = self.registry.model_names()
        self.registry.expect(names)
        for name in names:
            # a failure is logged once, by the registry, which keeps its state and reason
            with contextlib.suppress(OIPServeError):
                await self.registry.load(name)
        self.startup_failures = self.registry.failures()
        for name in names:
            if not self.registry.ready_versions(name) and not any(
                key.startswith(f"{name}/") for key in self.startup_failures
            ):
                self.startup_failures[f"{name}/-"] = "no version could be loaded"
        self.started = True

    # -- health and metadata -------------------------------------------------------------------

    def live(self) -> bool:
        return True

    def drain(self) -> None:
        """The server is shutting down: not ready from now on (load balancers stop sending),
        while requests are still served."""
        self.draining = True

    def ready(self) -> bool:
        """PROTOCOL.md §0's server readiness (with ``--workers N``: over every worker)."""
        if not self.own_readiness()[0]:
            return False
        return self.siblings is None or self.siblings.ready()[0]

    def not_ready_reason(self) -> str:
        ready, reason = self.own_readiness()
        if ready and self.siblings is not None:
            return self.siblings.ready()[1]
        return reason

    def own_readiness(self) -> tuple[bool, str]:
        """This process's readiness alone, and why not."""
        if self.draining:
            return False, "the server is shutting down"
        if not self.started:
            return False, "the server is still loading models"
        if self.strict_readiness and self.startup_failures:
            failed = ", ".join(f"{k} ({v})" for k, v in self.startup_failures.items())
            return False, f"models failed to load at start-up: {failed}"
        return True, ""

    def server_metadata(self) -> ServerMetadata:
        return ServerMetadata(self.server_name, __version__, list(EXTENSIONS))

    def model_metadata(self, name: str, version: str = "") -> ModelMetadata:
        loaded = self.registry.get(name, version)
        versions = [version] if version else self.registry.ready_versions(name)
        return loaded.metadata(versions)

    def model_readiness(self, name: str, version: str = "") -> ModelReadiness:
        """Whether the model (version) answers inference, and if not why: its state and load
        error. :class:`~oipserve.errors.ModelNotFound` for an unknown model."""
        return self.registry.readiness(name, version)

    def statistics(self, name: str = "", version: str = "") -> dict[str, Any]:
        """Triton's statistics extension: every READY version, of all models or of ``name``."""
        if not name:
            models = list(self.registry.loaded())
        elif version:
            models = [self.registry.get(name, version)]
        else:
            self.registry.get(name)  # ModelNotFound when nothing of it is READY
            models = [m for m in self.registry.loaded() if m.name == name]
        return {"model_stats": [m.statistics.snapshot(m.name, m.version) for m in models]}

    async def server_statistics(self, name: str = "", version: str = "") -> dict[str, Any]:
        """:meth:`statistics` of the whole server: with ``--workers N``, every worker's summed
        (counts and durations added, ``last_inference`` the latest, batch statistics merged per
        batch size). What the transports answer."""
        own = self.statistics(name, version)
        if self.siblings is None:
            return own
        theirs = await self.siblings.gather("statistics", {"model": name, "version": version})
        return merge_statistics([own, *theirs])

    # -- model configuration (Triton's model_configuration extension) --------------------------

    def model_config(self, name: str, version: str = "") -> ModelConfig:
        """The model's effective configuration; REST renders it with ``repository.triton.to_json``
        and gRPC with ``repository.triton.to_proto`` (PROTOCOL.md §3.1)."""
        return self.registry.get(name, version).config

    # -- model repository (Triton's model_repository extension) --------------------------------

    def repository_index(self, ready: bool = False) -> list[IndexEntry]:
        """Every model folder and version with its state; only READY ones when ``ready``."""
        entries = self.registry.index()
        if ready:
            return [entry for entry in entries if entry.state == ModelState.READY.value]
        return entries

    def _require_explicit(self) -> None:
        if self.model_control_mode != "explicit":
            raise Unavailable(
                f"{REPOSITORY_CALL_REFUSED} (model control mode '{self.model_control_mode}'; "
                "start the server with --model-control-mode explicit)"
            )

    async def repository_load(
        self, name: str, config: str | None = None, files: Mapping[str, bytes] | None = None
    ) -> None:
        """The repository API's load: (re)load ``name``, with an optional config override (the JSON
        of a ModelConfig) and optional files (``"1/model.onnx"`` → bytes) replacing its folder."""
        self._require_explicit()
        if self.siblings is None:
            await self.load_model(name, config, files)
            return
        # every worker applies the load before the call answers, whatever the outcome here (a
        # failed load leaves a state — the reason in the index — that every worker must show)
        error: OIPServeError | None = None
        try:
            await self.load_model(name, config, files)
        except OIPServeError as exc:
            error = exc
        self.siblings.changed()
        failures = await self.siblings.load(name, config, files)
        if error is not None:
            raise error
        if failures:
            raise InternalError(
                f"model '{name}' was loaded, but not in every worker: {'; '.join(failures)}"
            )

    async def repository_unload(self, name: str, unload_dependents: bool = False) -> None:
        """The repository API's unload; a harmless success when ``name`` is not loaded.

        ``unload_dependents`` is accepted and has nothing to act on (no ensembles yet)."""
        self._require_explicit()
        await self.unload_model(name)
        if self.siblings is not None:
            self.siblings.changed()
            failures = await self.siblings.unload(name)
            if failures:
                raise InternalError(
                    f"model '{name}' was unloaded, but not in every worker: {'; '.join(failures)}"
                )

    async def load_model(
        self,
        name: str,
        config: str | None = None,
        files: Mapping[str, bytes] | None = None,
    ) -> None:
        """(Re)load ``name`` whatever the control mode (the repository poller's entry point)."""
        await self.registry.load(name, config, files)
        # a model that failed at start-up and now loads no longer holds the server not ready
        for key in [k for k in self.startup_failures if k.startswith(f"{name}/")]:
            if self.registry.ready_versions(name):
                del self.startup_failures[key]

    async def unload_model(self, name: str) -> None:
        await self.registry.unload(name)

    # -- inference -----------------------------------------------------------------------------

    async def infer(self, request: InferenceRequest) -> InferenceResponse:
        """Run one request on the model's READY version (inference is gated by the model's own
        readiness, not the server's)."""
        loaded = self.registry.get(request.model_name, request.model_version)
        if loaded.decoupled:
            raise DecoupledModel(loaded.name)
        start = time.perf_counter_ns()
        span = self.observability.tracing.start(
            loaded.name, loaded.version, request.id, time.time_ns()
        )
        timing = RequestTiming()
        try:
            model_request = self._model_request(loaded, request)
            priority, timeout_us = _schedule_parameters(request.parameters)
            input_ns = time.perf_counter_ns() - start
            result = await loaded.scheduler.submit(
                model_request, priority=priority, timeout_us=timeout_us, timing=timing
            )
            start_output = time.perf_counter_ns()
            response = self._response(loaded, request, result.outputs, result.parameters)
            output_ns = time.perf_counter_ns() - start_output
        except asyncio.CancelledError as cancelled:
            # the client went away (Triton's CANCELED); counted as a failure, as Triton does
            self._record(loaded, request, time.perf_counter_ns() - start, None, None, span)
            if span is not None:
                span.failed(cancelled, time.time_ns())
            raise
        except OIPServeError as error:
            self._record(loaded, request, time.perf_counter_ns() - start, None, error, span)
            raise
        timing.request_ns += input_ns + output_ns
        timing.compute_input_ns = input_ns
        timing.compute_output_ns = output_ns
        self._record(loaded, request, 0, timing, None, span)
        return response

    async def infer_stream(
        self, request: InferenceRequest
    ) -> AsyncGenerator[InferenceResponse, None]:
        """Run one request and yield its responses as they come, the last one ``final``.

        A model that is not decoupled yields exactly one response. A decoupled one yields what it
        sends (0..N responses); when it sends the final flag without a response, an empty final
        response is yielded only if the request sets ``triton_enable_empty_final_response``. An
        error response (or a failed ``infer``) raises, after the responses sent before it.
        Closing the iterator before the end cancels the request and records nothing.
        """
        loaded = self.registry.get(request.model_name, request.model_version)
        if not loaded.decoupled:
            yield await self.infer(request)
            return
        start = time.perf_counter_ns()
        timing = RequestTiming()
        queue: asyncio.Queue[StreamItem | object] = asyncio.Queue()
        sender = ResponseSender(queue.put_nowait, asyncio.get_running_loop())
        try:
            model_request = self._model_request(loaded, request)
            model_request.sender = sender
            priority, timeout_us = _schedule_parameters(request.parameters)
        except OIPServeError as error:
            self._record(loaded, request, time.perf_counter_ns() - start, None, error)
            raise
        empty_final = request.parameters.get(EMPTY_FINAL_RESPONSE) is True
        first_response_ns: int | None = None
        submit = asyncio.ensure_future(
            loaded.scheduler.submit_streaming(
                model_request, priority=priority, timeout_us=timeout_us, timing=timing
            )
        )
        submit.add_done_callback(lambda task: _executed(task, queue))
        finished = False
        try:
            while True:
                item = await queue.get()
                if item is _EXECUTED:
                    result = submit.result()  # raises the error that failed the request
                    if result is not None and not sender.closed:
                        sender.send(result, final=True)
                    continue
                assert isinstance(item, tuple)
                response, final = item
                if isinstance(response, Exception):
                    raise _model_error(loaded.name, response)
                if isinstance(response, InferResponse):
                    out = self._response(loaded, request, response.outputs, response.parameters)
                    out.final = final
                    if first_response_ns is None:  # Triton's first-response time, for metrics
                        first_response_ns = time.perf_counter_ns() - start
                    yield out
                elif final and empty_final:
                    yield InferenceResponse(
                        loaded.name, loaded.version, request.id, {}, [], final=True
                    )
                if final:
                    break
            finished = True
            if not submit.done():
                await asyncio.shield(submit)  # the model sent its final response mid-infer
            submit.result()
        except OIPServeError as error:
            finished = True
            self._record(loaded, request, time.perf_counter_ns() - start, None, error)
            raise
        finally:
            if not finished:  # the consumer went away: nobody waits for the responses
                sender.cancel()
                submit.cancel()
        timing.request_ns = time.perf_counter_ns() - start
        self._record(loaded, request, 0, timing, None, first_response_ns=first_response_ns)

    def _record(
        self,
        loaded: LoadedModel,
        request: InferenceRequest,
        failed_ns: int,
        timing: RequestTiming | None,
        error: OIPServeError | None,
        span: RequestSpan | None = None,
        first_response_ns: int | None = None,
    ) -> None:
        """The one place an inference request's outcome is recorded: its statistics (every
        ``inference_stats`` count moves together, as perf_analyzer requires), its metrics (the
        counters are the statistics; failures by Triton's reason, latency histograms), its trace
        spans and, for a server fault, one ERROR log line with the model, version, request id
        and the model's traceback. ``timing`` None with ``error`` None: the client went away."""
        statistics = loaded.statistics
        if timing is not None:
            statistics.record_success(
                elements=timing.elements,
                request_ns=timing.request_ns,
                queue_ns=timing.queue_ns,
                compute_infer_ns=timing.compute_infer_ns,
                compute_input_ns=timing.compute_input_ns,
                compute_output_ns=timing.compute_output_ns,
            )
            if self._metrics_on:
                loaded.observations.success(
                    timing.request_ns,
                    timing.queue_ns,
                    timing.compute_input_ns,
                    timing.compute_infer_ns,
                    timing.compute_output_ns,
                    first_response_ns,
                )
            if span is not None:
                span.succeeded(
                    input_ns=timing.compute_input_ns,
                    queue_ns=timing.queue_ns,
                    compute_ns=timing.compute_infer_ns,
                    end_wall_ns=time.time_ns(),
                    batch_size=timing.elements,
                )
            return
        statistics.record_failure(failed_ns)
        reason: FailureReason = "CANCELED" if error is None else failure_reason(error)
        loaded.observations.failure(reason)
        if error is None:
            return
        if span is not None:
            span.failed(error, time.time_ns())
        if error.kind is ErrorKind.INTERNAL:
            cause = error.__cause__
            logger.error(
                "inference failed: model '%s' version %s, request id '%s': %s",
                loaded.name,
                loaded.version,
                request.id,
                error.message,
                exc_info=(type(cause), cause, cause.__traceback__) if cause is not None else None,
                extra={"model": loaded.name, "version": loaded.version, "request_id": request.id},
            )

    # -- metrics, logging and trace settings (Triton's logging and trace extensions) -----------

    def metrics_data(self) -> ScrapeData:
        """What a scrape shows: every READY version's numbers, every known version's state, the
        transports' counters and the models' own families."""
        data = ScrapeData()
        for loaded in self.registry.loaded():
            data.models.append(
                ModelData.take(
                    loaded.name,
                    loaded.version,
                    loaded.statistics.snapshot(loaded.name, loaded.version),
                    loaded.observations,
                    loaded.scheduler.queued(),
                )
            )
            if loaded.custom_metrics is not None:
                data.custom.extend(loaded.custom_metrics.data())
        data.states = [
            (entry.name, entry.version, entry.state)
            for entry in self.registry.index()
            if entry.version and entry.state
        ]
        metrics = self.observability.metrics
        if metrics is not None:
            data.http = dict(metrics.transport.http)
            data.grpc = dict(metrics.transport.grpc)
        return data

    def metrics_text(self) -> str:
        """The Prometheus exposition (``GET /metrics``); empty when metrics are off."""
        metrics = self.observability.metrics
        if metrics is None:
            return ""
        data = self.metrics_data()
        data.custom = merge_custom(data.custom)
        return metrics.render(data)

    def log_settings(self) -> dict[str, Any]:
        return self.observability.logs.settings.as_dict()

    def update_log_settings(self, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a logging-extension update (checked whole first); the settings now in force."""
        return self.observability.logs.update(changes).as_dict()

    def _trace_model(self, name: str) -> None:
        """A per-model trace setting needs a known model (404) that is ready (400, Triton's
        text: server ``src/http_server.cc`` ``HandleTrace``)."""
        if name and not self.registry.readiness(name).ready:
            raise InvalidArgument(f"Request for unknown model : {name}")

    def trace_settings(self, model: str = "") -> dict[str, Any]:
        self._trace_model(model)
        return self.observability.tracing.control.report(model)

    def update_trace_settings(self, model: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Apply a trace-extension update (checked whole first); the settings now in force."""
        self._trace_model(model)
        self.observability.tracing.control.update(model, changes)
        return self.observability.tracing.control.report(model)

    def _model_request(self, loaded: LoadedModel, request: InferenceRequest) -> InferRequest:
        arrays = _check_inputs(loaded, request.inputs)
        requested = tuple(output.name for output in request.outputs)
        if len(set(requested)) != len(requested):
            # Triton's text: core's InferenceRequest::AddOriginalRequestedOutput (infer_request.cc)
            twice = next(name for name in requested if requested.count(name) > 1)
            raise InvalidArgument(f"output '{twice}' already exists in request")
        if loaded.outputs:
            unknown = [name for name in requested if name not in loaded.outputs]
            if unknown:
                raise InvalidArgument(
                    f"unexpected inference output '{unknown[0]}' for model '{loaded.name}'; "
                    f"it has {', '.join(loaded.outputs)}"
                )
        for name in request.parameters:
            if name.startswith("triton_") and name not in RESERVED_PARAMETERS:
                raise InvalidArgument(f"parameter '{name}' is reserved (triton_* keys)")
        return InferRequest(
            inputs=arrays,
            parameters={
                k: v for k, v in request.parameters.items() if k not in RESERVED_PARAMETERS
            },
            outputs=requested,
            input_parameters={t.name: t.parameters for t in request.inputs if t.parameters},
            id=request.id,
        )

    def _response(
        self,
        loaded: LoadedModel,
        request: InferenceRequest,
        outputs: Mapping[str, np.ndarray],
        parameters: dict[str, Parameter],
    ) -> InferenceResponse:
        names = [o.name for o in request.outputs] or list(outputs)
        requested = {o.name: o.parameters for o in request.outputs}  # for classification
        tensors: list[OutputTensor] = []
        for name in names:
            if name not in outputs:
                raise InvalidArgument(
                    f"model '{loaded.name}' produced no output '{name}' (it produced "
                    f"{', '.join(outputs) or 'none'})"
                )
            array = np.asarray(outputs[name])  # the same object when it is an array already
            spec = loaded.outputs.get(name)
            if spec is not None and spec.datatype != "BYTES":
                # the declared datatype wins (astype copies nothing when it already matches)
                array = array.astype(dtype_of(spec.datatype), copy=False)
            # -- classification extension (PROTOCOL.md §3.4) ------------------------------------
            wanted = requested.get(name)
            if wanted and classification.PARAMETER in wanted:
                array = classification.apply(
                    name,
                    array,
                    wanted[classification.PARAMETER],
                    loaded.labels.get(name),
                    batched=loaded.max_batch_size > 0,
                )
            # -- end classification ------------------------------------------------------------
            tensors.append(OutputTensor(name, datatype_of(array), array.shape, array))
        return InferenceResponse(
            model_name=loaded.name,
            model_version=loaded.version,
            id=request.id,
            parameters=parameters,
            outputs=tensors,
        )


class ModelCalls:
    """:class:`~oipserve.model.ServerCalls` over this dataplane: what a model asks of the server
    (Triton's BLS, ``pb_utils.load_model`` …) goes through the same use cases as a client's
    request — checked, queued, recorded in the callee's statistics."""

    def __init__(self, dataplane: DataPlane) -> None:
        self._dataplane = dataplane

    async def infer(self, model: str, version: str, request: InferRequest) -> InferResponse:
        response = await self._dataplane.infer(_protocol_request(model, version, request))
        return _model_response(response)

    async def infer_stream(
        self, model: str, version: str, request: InferRequest
    ) -> AsyncIterator[tuple[InferResponse | None, bool]]:
        protocol = _protocol_request(model, version, request)
        protocol.parameters[EMPTY_FINAL_RESPONSE] = True
        async for response in self._dataplane.infer_stream(protocol):
            if response.outputs or not response.final:
                yield _model_response(response), response.final
            else:
                yield None, True

    async def load_model(
        self, name: str, config: str | None = None, files: Mapping[str, bytes] | None = None
    ) -> None:
        await self._dataplane.repository_load(name, config, files)

    async def unload_model(self, name: str, unload_dependents: bool = False) -> None:
        await self._dataplane.repository_unload(name, unload_dependents)

    def is_model_ready(self, name: str, version: str = "") -> bool:
        try:
            return self._dataplane.model_readiness(name, version).ready
        except OIPServeError:
            return False


def _protocol_request(model: str, version: str, request: InferRequest) -> InferenceRequest:
    inputs = []
    for name, value in request.inputs.items():
        array = np.asarray(value)
        inputs.append(
            InputTensor(
                name,
                datatype_of(array),
                array.shape,
                array,
                dict(request.input_parameters.get(name, {})),
            )
        )
    return InferenceRequest(
        model_name=model,
        model_version=version,
        id=request.id,
        parameters=dict(request.parameters),
        inputs=inputs,
        outputs=[RequestedOutput(name) for name in request.outputs],
    )


def _model_response(response: InferenceResponse) -> InferResponse:
    return InferResponse({t.name: t.data for t in response.outputs}, dict(response.parameters))


def _executed(task: asyncio.Future[Any], queue: asyncio.Queue[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved here too: nobody may read it when the client has gone
    queue.put_nowait(_EXECUTED)


def _model_error(model: str, error: Exception) -> OIPServeError:
    """What the client sees for an error response a model sent (as the scheduler words a failed
    slot)."""
    if isinstance(error, OIPServeError):
        return error
    wrapped = InternalError(f"model '{model}' failed: {type(error).__name__}: {error}")
    wrapped.__cause__ = error
    return wrapped


def _check_inputs(loaded: LoadedModel, inputs: list[InputTensor]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for tensor in inputs:
        if tensor.name in arrays:
            raise InvalidArgument(f"input '{tensor.name}' is given more than once")
        arrays[tensor.name] = tensor.data
    if not loaded.inputs:
        return arrays
    for tensor in inputs:
        spec = loaded.inputs.get(tensor.name)
        if spec is None:
            raise InvalidArgument(
                f"unexpected inference input '{tensor.name}' for model '{loaded.name}'; it "
                f"expects {', '.join(loaded.inputs)}"
            )
        _check_tensor(loaded, spec, tensor)
    optional = {i.name for i in loaded.config.input if i.optional}
    missing = [n for n in loaded.inputs if n not in arrays and n not in optional]
    if missing:
        raise InvalidArgument(
            f"model '{loaded.name}' expects input '{missing[0]}', which the request does not have"
        )
    return arrays


def _check_tensor(loaded: LoadedModel, spec: TensorSpec, tensor: InputTensor) -> None:
    if tensor.datatype != spec.datatype and tensor.datatype not in spec.accepts:
        raise InvalidArgument(
            f"input '{tensor.name}' has datatype {tensor.datatype}, but model "
            f"'{loaded.name}' expects {spec.expected()}"
        )
    shape = tensor.shape
    expected = spec.shape
    if loaded.max_batch_size > 0:
        if not shape:
            raise InvalidArgument(
                f"input '{tensor.name}' needs a batch dimension (shape [-1, "
                f"{', '.join(map(str, expected))}])"
            )
        if shape[0] > loaded.max_batch_size:
            raise InvalidArgument(
                f"input '{tensor.name}' has batch size {shape[0]}, above the maximum of "
                f"{loaded.max_batch_size} for model '{loaded.name}'"
            )
        shape = shape[1:]
    if len(shape) != len(expected) or any(
        e not in (-1, s) for e, s in zip(expected, shape, strict=True)
    ):
        full = [-1, *expected] if loaded.max_batch_size > 0 else list(expected)
        raise InvalidArgument(
            f"input '{tensor.name}' has shape {list(tensor.shape)}, but model '{loaded.name}' "
            f"expects {full}"
        )


def _schedule_parameters(parameters: dict[str, Parameter]) -> tuple[int, int]:
    priority = parameters.get("priority", 0)
    timeout = parameters.get("timeout", 0)
    for key, value in (("priority", priority), ("timeout", timeout)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidArgument(f"parameter '{key}' must be a non-negative integer")
    assert isinstance(priority, int) and isinstance(timeout, int)
    return priority, timeout
