"""The execution seam: a :class:`ModelInstance` runs the batches of one model version.

The registry never builds, loads or unloads a model object itself. It describes the version in an
:class:`InstanceSpec` (plain typed values: names, folder, config, instance count, execution kind),
asks an :data:`InstanceFactory` for an instance, and from then on speaks only the four async
methods of :class:`ModelInstance`. Nothing a caller sees is a shared Python object: requests and
results are :class:`~oipserve.model.InferRequest` / :class:`~oipserve.model.InferResponse` values
(numpy arrays inside), and ``load()`` answers with the model's :class:`~oipserve.model.Signature`,
so a process-backed implementation can sit behind the same interface (as vLLM's engine-core
client does, and httpx's transports: one small interface, several implementations chosen by
configuration, a fake for tests).

Implementations:

* :class:`InProcessInstance` (``execution`` absent or ``"thread"``): the model runs in this
  process, synchronous methods on the shared :class:`~oipserve.execution.executor.Executor`
  threads. An ``instance_group`` of *count* instances is *count* concurrency slots over one loaded
  object, unless the runtime declares ``thread_safe = False`` (see :class:`oipserve.Model`): then
  each slot is its own loaded copy.
* :class:`~oipserve.execution.process.ProcessInstance` (``execution = "process"`` in the
  config's ``[parameters]``): each of the *count* instances is its own process holding a copy of
  the model, tensors crossing through shared memory; a crash or hang fails only the batch that
  process held, and the process is restarted.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal, Protocol, TypeAlias, get_args

from oipserve.errors import InternalError, ModelLoadError
from oipserve.execution.executor import Executor
from oipserve.model import InferRequest, InferResult, LoadContext, Model, Signature
from oipserve.runtimes import instantiate

ExecutionKind: TypeAlias = Literal["thread", "process"]
"""Where a model's instances run: ``thread`` (in this process) or ``process`` (one process each)."""
EXECUTION_KINDS: Final[tuple[str, ...]] = get_args(ExecutionKind)


@dataclass(frozen=True, slots=True)
class InstanceSpec:
    """Everything execution needs to bring up the instances of one model version."""

    backend: str
    """The runtime (``sklearn``, ``python``, an entry-point name, ...)."""
    context: LoadContext
    """Name, version, folder, config and model file, as the model's ``load`` receives them."""
    count: int = 1
    """How many instances (``instance_group`` counts summed; at least 1)."""
    execution: ExecutionKind = "thread"
    kinds: tuple[str, ...] = ()
    """The ``instance_group`` kinds (``KIND_CPU``, ``KIND_GPU``, ...), one per group; the
    in-process implementation runs every kind on the CPU, as the server has no GPU support."""

    @property
    def name(self) -> str:
        return self.context.name

    @property
    def version(self) -> str:
        return self.context.version


class ModelInstance(Protocol):
    """What runs a model version's batches, wherever it runs.

    ``load`` once, then ``infer`` any number of times — at most :attr:`concurrency` calls at once —
    then ``unload``. ``infer`` takes N requests and returns exactly N results (an exception in a
    slot fails only that request); a failure of the whole call raises.
    """

    @property
    def concurrency(self) -> int:
        """How many ``infer`` calls may run at once (the scheduler's instance count)."""
        ...

    async def load(self) -> Signature | None:
        """Bring the instance up; what the model says about its tensors (``None``: nothing)."""
        ...

    async def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]: ...

    async def unload(self) -> None:
        """Release the model; safe to call once after a successful ``load``."""
        ...

    async def healthy(self) -> bool:
        """Whether the instance can run requests (loaded, and for a process: alive)."""
        ...


InstanceFactory: TypeAlias = Callable[[InstanceSpec], ModelInstance]
"""Builds a (not yet loaded) instance for a spec; the registry's only way to get one."""

_Infer: TypeAlias = Callable[
    [list[InferRequest]], Sequence[InferResult] | Awaitable[Sequence[InferResult]]
]


class InProcessInstance:
    """A model running in this process: ``count`` slots over one loaded object, or ``count``
    loaded copies when the runtime declares itself not thread-safe."""

    __slots__ = ("_executor", "_free", "_infer", "_models", "_spec")

    def __init__(self, spec: InstanceSpec, executor: Executor) -> None:
        self._spec = spec
        self._executor = executor
        self._models: list[Model] = []
        self._free: list[Model] | None = None
        """Idle copies, when each slot has its own (None: one shared, thread-safe object)."""
        self._infer: _Infer | None = None

    @property
    def concurrency(self) -> int:
        return max(1, self._spec.count)

    async def load(self) -> Signature | None:
        first = await self._load_one()
        self._models.append(first)
        if self.concurrency > 1 and not getattr(first, "thread_safe", True):
            try:
                for _ in range(self.concurrency - 1):
                    self._models.append(await self._load_one())
            except BaseException:
                await self.unload()
                raise
            self._free = list(self._models)
        else:
            self._infer = first.infer  # bound once: this is the hot path
        return first.signature()

    async def _load_one(self) -> Model:
        ctx = self._spec.context
        model = await self._executor.call(instantiate, self._spec.backend, ctx)
        await self._executor.call(model.load, ctx)
        return model

    async def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        infer = self._infer
        if infer is not None:
            results: Sequence[InferResult] = await self._executor.call(infer, requests)
        else:
            results = await self._infer_on_a_copy(requests)
        if len(results) != len(requests):
            raise InternalError(
                f"model '{self._spec.name}' returned {len(results)} results for "
                f"{len(requests)} requests"
            )
        return results

    async def _infer_on_a_copy(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        if not self._free:
            state = "is not loaded" if self._free is None else "has no idle instance"
            raise InternalError(f"model '{self._spec.name}' {state}")
        model = self._free.pop()
        try:
            results: Sequence[InferResult] = await self._executor.call(model.infer, requests)
            return results
        finally:
            self._free.append(model)

    async def unload(self) -> None:
        """Unload every loaded copy; the first error is raised once all were tried."""
        models, self._models = self._models, []
        self._infer = None
        self._free = None
        error: BaseException | None = None
        for model in models:
            try:
                await self._executor.call(model.unload)
            except Exception as exc:
                error = error or exc
        if error is not None:
            raise error

    async def healthy(self) -> bool:
        return bool(self._models)


class Execution:
    """The default :data:`InstanceFactory`: the implementation a spec's ``execution`` names."""

    def __init__(self, executor: Executor) -> None:
        self.executor = executor
        self.on_unavailable: Callable[[ModelInstance, str], None] | None = None
        """Told ``(instance, reason)`` when a process instance gives up after repeated crashes
        (the registry then marks its version UNAVAILABLE with the reason)."""

    def __call__(self, spec: InstanceSpec) -> ModelInstance:
        if spec.execution == "thread":
            return InProcessInstance(spec, self.executor)
        return _process_instance(spec, self._unavailable)

    def _unavailable(self, instance: object, reason: str) -> None:
        if self.on_unavailable is not None:
            self.on_unavailable(instance, reason)  # type: ignore[arg-type]

    def shutdown(self) -> None:
        self.executor.shutdown()


def _process_instance(
    spec: InstanceSpec, on_unavailable: Callable[[object, str], None]
) -> ModelInstance:
    import msgspec

    from oipserve.execution.process import ProcessInstance, execution_timeout

    ctx = spec.context
    return ProcessInstance(
        backend=spec.backend,
        name=ctx.name,
        version=ctx.version,
        path=ctx.path,
        config=msgspec.msgpack.encode(ctx.config),
        model_file=ctx.model_file,
        count=spec.count,
        auto_complete=ctx.auto_complete,
        timeout_s=execution_timeout(ctx.parameters, ctx.name),
        on_unavailable=on_unavailable,
    )


def execution_kind(value: str, model: str) -> ExecutionKind:
    """The ``[parameters] execution`` value of a config, checked (empty: ``thread``)."""
    if not value or value == "thread":
        return "thread"
    if value == "process":
        return "process"
    raise ModelLoadError(
        f"model '{model}': parameter execution = '{value}' is not one of "
        f"{', '.join(EXECUTION_KINDS)}"
    )


__all__ = [
    "EXECUTION_KINDS",
    "Execution",
    "ExecutionKind",
    "InProcessInstance",
    "InstanceFactory",
    "InstanceSpec",
    "ModelInstance",
    "execution_kind",
]
