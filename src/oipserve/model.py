"""The model contract: what a runtime or a user's ``model.py`` implements.

A model is built with no arguments, then ``load(ctx)`` is called once, then ``infer(requests)`` any
number of times (with a list of N requests, returning exactly N results), then ``unload()``. Each of
the three may be a coroutine function. Synchronous ``infer`` runs on an executor thread, never on
the event loop.

Tensors are numpy arrays: ``BYTES`` as ``object`` arrays of :class:`bytes`, ``BF16`` as
``ml_dtypes.bfloat16``. A result slot holding an :class:`Exception` fails only that request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, TypeAlias

import numpy as np

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
    "Signature",
    "TensorSpec",
    "select_outputs",
]

#: a request / input / output parameter value, as the protocol allows
Parameter: TypeAlias = bool | int | float | str


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

    @property
    def parameters(self) -> dict[str, str]:
        """The config's ``[parameters]`` as plain strings."""
        return self.config.parameter_strings()


@dataclass(slots=True)
class InferRequest:
    """One inference request as a model sees it."""

    inputs: dict[str, np.ndarray]
    parameters: dict[str, Parameter] = field(default_factory=dict)
    outputs: tuple[str, ...] = ()
    """Names of the requested outputs; empty means every output."""
    input_parameters: dict[str, dict[str, Parameter]] = field(default_factory=dict)
    id: str = ""

    def wants(self, output: str) -> bool:
        """Whether the client asked for ``output`` (an empty request asks for every output)."""
        return not self.outputs or output in self.outputs


@dataclass(slots=True)
class InferResponse:
    """What a model answers for one request."""

    outputs: dict[str, np.ndarray]
    parameters: dict[str, Parameter] = field(default_factory=dict)


InferResult: TypeAlias = InferResponse | Exception


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
