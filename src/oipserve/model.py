"""The model contract: what a runtime or a user's ``model.py`` implements.

A model is built with no arguments, then ``load(ctx)`` is called once, then ``infer(requests)`` any
number of times (with a list of N requests, returning exactly N results), then ``unload()``. Each of
the three may be a coroutine function. Synchronous ``infer`` runs on an executor thread, never on
the event loop.

Tensors are numpy arrays: ``BYTES`` as ``object`` arrays of :class:`bytes`, ``BF16`` as
``ml_dtypes.bfloat16``. A result slot holding an :class:`Exception` fails only that request.

Streaming (decoupled) models
----------------------------
A model is *decoupled* (Triton's ``model_transaction_policy { decoupled: true }``; in
``model.toml`` ``[model_transaction_policy] decoupled = true``; or ``Signature(decoupled=True)``
from the model itself) when it answers a request with 0..N responses instead of exactly one.
Each request it gets then carries a :class:`ResponseSender` in ``request.sender``:

* ``request.sender.send(response, final=False)`` sends one :class:`InferResponse` (or an
  :class:`Exception`: an error response, which ends the request), from any thread or from the
  event loop, at any time — during ``infer`` or after it returned (e.g. from a thread of the
  model's own);
* ``request.sender.send(final=True)`` (optionally with a last response) ends the request; a send
  after that raises :class:`SenderClosed`;
* ``request.is_cancelled()`` turns true once the client has gone (the stream was closed): the
  model should stop and may skip the final send; further sends are dropped.

``infer`` still returns N slots: ``None`` (the request is answered through its sender), an
:class:`InferResponse` (sent as the request's final response: an ordinary model serves a
decoupled config unchanged), or an :class:`Exception` (fails the request). A request whose slot
is ``None`` stays open until the model sends ``final=True`` or the client goes.

Clients reach a decoupled model through streaming endpoints only (gRPC ``ModelStreamInfer``, the
dataplane's ``infer_stream``); unary inference on it is refused as Triton refuses it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeAlias

import numpy as np

from oipserve.observability.custom import ModelMetrics
from oipserve.signature import Signature, TensorSpec

if TYPE_CHECKING:
    from oipserve.repository.config import ModelConfig

__all__ = [
    "InferRequest",
    "InferResponse",
    "InferResult",
    "LoadContext",
    "Model",
    "Parameter",
    "ResponseSender",
    "SenderClosed",
    "ServerCalls",
    "Signature",
    "TensorSpec",
    "select_outputs",
]

#: a request / input / output parameter value, as the protocol allows
Parameter: TypeAlias = bool | int | float | str


class ServerCalls(Protocol):
    """What a model may ask of the server it runs in (Triton's BLS and model control, as
    ``triton_python_backend_utils`` offers them). Coroutines of the server's event loop; errors
    are :class:`~oipserve.errors.OIPServeError`. Requests go through the server's own use cases:
    checked, queued and recorded like a client's."""

    async def infer(self, model: str, version: str, request: InferRequest) -> InferResponse:
        """One response of ``model`` (a decoupled one is refused: use :meth:`infer_stream`)."""
        ...

    def infer_stream(
        self, model: str, version: str, request: InferRequest
    ) -> AsyncIterator[tuple[InferResponse | None, bool]]:
        """The responses of ``model`` as ``(response, final)``; ``(None, True)`` ends a
        decoupled model's stream when its final flag came without a response."""
        ...

    async def load_model(
        self, name: str, config: str | None = None, files: Mapping[str, bytes] | None = None
    ) -> None: ...

    async def unload_model(self, name: str, unload_dependents: bool = False) -> None: ...

    def is_model_ready(self, name: str, version: str = "") -> bool: ...


@dataclass(frozen=True, slots=True)
class LoadContext:
    """Everything a model needs to load itself."""

    name: str
    version: str
    path: Path
    """The version folder (or the model folder when it has no version folders)."""
    config: ModelConfig
    model_file: Path | None = None
    """The model file the runtime should read (``model.joblib``, …), if one was found."""
    metrics_registry: ModelMetrics | None = None
    """Where :attr:`metrics` registers (the server passes its own; a fresh one otherwise)."""
    server: ServerCalls | None = None
    """The server the model runs in, for calls to other models (``None``: none, e.g. in a
    process instance)."""
    auto_complete: bool = False
    """Whether the runtime may complete the config from the model file as Triton's backends do
    (set for a ``config.pbtxt`` model unless ``--disable-auto-complete-config``): e.g. ONNX
    Runtime's default ``max_batch_size``, answered through :attr:`Signature.config`."""

    def __post_init__(self) -> None:
        if self.metrics_registry is None:
            object.__setattr__(self, "metrics_registry", ModelMetrics(self.name, self.version))

    @property
    def metrics(self) -> ModelMetrics:
        """The model's own metrics, exposed on ``/metrics`` beside the server's:
        ``ctx.metrics.counter(name, description, labels)``, ``.gauge(...)``,
        ``.histogram(..., buckets)`` (see docs/metrics.md)."""
        assert self.metrics_registry is not None
        return self.metrics_registry

    @property
    def parameters(self) -> dict[str, str]:
        """The config's ``[parameters]`` as plain strings."""
        return self.config.parameter_strings()


class SenderClosed(RuntimeError):
    """A response was sent after the request's final one (or after an error response)."""


StreamItem: TypeAlias = "tuple[InferResponse | Exception | None, bool]"
"""What a :class:`ResponseSender` delivers: a response (``None``: none) and whether it is final."""


class ResponseSender:
    """Sends the 0..N responses of one request of a decoupled model (see the module doc).

    Thread-safe: ``send`` may be called from an executor thread, a thread of the model's own or
    the event loop. ``deliver`` (given by whoever serves the request, e.g. the dataplane) runs on
    the event loop the sender was made on, once per send, in order.
    """

    __slots__ = ("_cancelled", "_closed", "_deliver", "_lock", "_loop", "_loop_thread")

    def __init__(
        self, deliver: Callable[[StreamItem], None], loop: asyncio.AbstractEventLoop
    ) -> None:
        self._deliver = deliver
        self._loop = loop
        self._loop_thread = threading.get_ident()
        self._lock = threading.Lock()
        self._closed = False
        self._cancelled = False

    def send(
        self, response: InferResponse | Exception | None = None, *, final: bool = False
    ) -> None:
        """Send ``response`` (``None``: no response, only the flag); ``final`` ends the request.

        An exception is an error response and ends the request too. Once the client has gone
        (:meth:`is_cancelled`) sends are dropped silently; after the final one they raise
        :class:`SenderClosed`.
        """
        final = final or isinstance(response, Exception)
        with self._lock:
            if self._closed:
                raise SenderClosed(
                    "unable to send a response: this request's final response was already sent"
                )
            self._closed = final
            if self._cancelled:
                return
        item: StreamItem = (response, final)
        if threading.get_ident() == self._loop_thread:
            self._deliver(item)
        else:
            with contextlib.suppress(RuntimeError):  # a closed loop: the server is gone
                self._loop.call_soon_threadsafe(self._deliver, item)

    def is_cancelled(self) -> bool:
        """Whether the client has gone (or the server stopped waiting for this request)."""
        return self._cancelled

    @property
    def closed(self) -> bool:
        """Whether the final response (or an error) was sent."""
        return self._closed

    def cancel(self) -> None:
        """Called by the server when nobody waits for the responses any more."""
        with self._lock:
            self._cancelled = True


@dataclass(slots=True)
class InferRequest:
    """One inference request as a model sees it."""

    inputs: dict[str, np.ndarray]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    """Names of the requested outputs; empty means every output."""
    input_parameters: dict[str, dict[str, Parameter]] = field(default_factory=dict)
    id: str = ""
    sender: ResponseSender | None = None
    """Where a decoupled model sends this request's responses (``None`` for a unary request)."""

    def is_cancelled(self) -> bool:
        """Whether the client went away (always False for a unary request)."""
        sender = self.sender
        return sender is not None and sender.is_cancelled()

    def wants(self, output: str) -> bool:
        """Whether the client asked for ``output`` (an empty request asks for every output)."""
        return not self.outputs or output in self.outputs


@dataclass(slots=True)
class InferResponse:
    """What a model answers for one request."""

    outputs: dict[str, np.ndarray]
    parameters: dict[str, Parameter] = field(default_factory=dict)


InferResult: TypeAlias = InferResponse | Exception | None
"""One slot of ``infer``'s answer: a response, an error for that request, or (decoupled models
only) ``None``: the request is answered through its :class:`ResponseSender`."""


class Model:
    """Base class of every model. Subclass it in ``model.py`` (one subclass per file).

    ``signature()`` may describe the model's inputs and outputs when its file says so; the config's
    ``input``/``output`` sections win where they are given. A model that declares no inputs accepts
    any tensors.

    ``thread_safe = False`` says that one object must not run two ``infer`` calls at once: an
    ``instance_group`` of *count* instances then loads *count* copies (each runs one batch at a
    time) instead of sharing one object between *count* concurrent slots.
    """

    thread_safe: ClassVar[bool] = True

    def load(self, ctx: LoadContext) -> Awaitable[None] | None:
        return None

    def infer(
        self, requests: list[InferRequest]
    ) -> Sequence[InferResult] | Awaitable[Sequence[InferResult]]:
        raise NotImplementedError(f"{type(self).__name__} does not implement infer()")

    def unload(self) -> Awaitable[None] | None:
        return None

    def signature(self) -> Signature | None:
        """What the model itself says about its tensors, once loaded; ``None`` if nothing."""
        return None


def select_outputs(
    request: InferRequest, outputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Keep only the outputs the request asked for (all when it asked for none)."""
    if not request.outputs:
        return dict(outputs)
    return {name: outputs[name] for name in request.outputs if name in outputs}


def batch_key(request: InferRequest) -> Hashable:
    """Requests with equal keys can be concatenated along dim 0."""
    return tuple((name, array.dtype, array.shape[1:]) for name, array in request.inputs.items())


def batch_size(request: InferRequest) -> int:
    """The leading dimension shared by a request's inputs (1 for rank-0 inputs)."""
    for array in request.inputs.values():
        return int(array.shape[0]) if array.ndim else 1
    return 1
