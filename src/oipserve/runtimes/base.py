"""Base of the framework runtimes: one concatenated batch in, split results out.

A framework runtime implements :meth:`BatchedModel.predict` on a single dict of arrays whose first
dimension is the batch. :meth:`BatchedModel.infer` takes the list of requests the scheduler hands
over, concatenates those whose non-batch dimensions agree along dim 0, calls ``predict`` once per
group with the union of the outputs they asked for, splits the results back by each request's batch
size and keeps, per request, only the outputs it asked for. A request that names no output gets
:attr:`BatchedModel.default_outputs`: every output of the model's metadata (the protocol's rule),
see :func:`default_output_names`.

A zero-config tabular model (scikit-learn, XGBoost, LightGBM with no ``input`` in its config)
takes its input in any numeric datatype and converts it as the framework would
(:attr:`BatchedModel.converts`, :func:`to_float`); each request is converted on its own, before
requests are grouped, so one request's bad value fails only that request.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any

import numpy as np

from oipserve.errors import InternalError, InvalidArgument, OIPServeError
from oipserve.model import (
    InferRequest,
    InferResponse,
    InferResult,
    LoadContext,
    Model,
    Signature,
    batch_key,
    batch_size,
    select_outputs,
)
from oipserve.protocol.datatypes import datatype_of


class BatchedModel(Model):
    """A model whose ``predict`` takes one concatenated batch."""

    default_outputs: tuple[str, ...] = ()
    """What a request that names no output gets: every output of the model's metadata."""

    converts: Mapping[str, np.dtype[Any]] = MappingProxyType({})
    """Inputs taken in any numeric datatype, and the dtype each is converted to before
    ``predict`` (set at load by a runtime whose signature says so; empty: none converted)."""

    def predict(
        self, inputs: dict[str, np.ndarray], outputs: tuple[str, ...]
    ) -> dict[str, np.ndarray]:
        """Run the model on a batch.

        Must return every output named in ``outputs``, and :attr:`default_outputs` when
        ``outputs`` is empty.
        """
        raise NotImplementedError

    def _select(
        self, request: InferRequest, outputs: dict[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """The outputs ``request`` asked for; its defaults when it asked for none by name."""
        if not request.outputs and self.default_outputs:
            return {name: outputs[name] for name in self.default_outputs if name in outputs}
        return select_outputs(request, outputs)

    def _union_of_outputs(self, requests: list[InferRequest]) -> tuple[str, ...]:
        names: dict[str, None] = {}
        if any(not r.outputs for r in requests):
            names.update(dict.fromkeys(self.default_outputs))
        for r in requests:
            names.update(dict.fromkeys(r.outputs))
        return tuple(names)

    def convert_inputs(self, request: InferRequest) -> InferRequest:
        """``request`` with each input of :attr:`converts` converted (see :func:`to_float`)."""
        converted = {
            name: to_float(array, self.converts[name], name) if name in self.converts else array
            for name, array in request.inputs.items()
        }
        return replace(request, inputs=converted)

    def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        if not self.converts:
            return self._infer(requests)
        results: list[InferResult | None] = [None] * len(requests)
        ready: list[tuple[int, InferRequest]] = []
        for index, request in enumerate(requests):
            try:
                ready.append((index, self.convert_inputs(request)))
            except OIPServeError as exc:
                results[index] = exc
        if ready:
            answers = self._infer([request for _, request in ready])
            for (index, _), answer in zip(ready, answers, strict=True):
                results[index] = answer
        return [r if r is not None else InternalError("no result") for r in results]

    def _infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        if len(requests) == 1:
            try:
                return self._run_group(requests)
            except Exception as exc:
                return [exc]
        results: list[InferResult | None] = [None] * len(requests)
        groups: dict[Hashable, list[int]] = {}
        for index, request in enumerate(requests):
            groups.setdefault(batch_key(request), []).append(index)
        for indices in groups.values():
            members = [requests[i] for i in indices]
            try:
                group_results = self._run_group(members)
            except Exception as exc:
                group_results = [exc] * len(members)
            for i, result in zip(indices, group_results, strict=True):
                results[i] = result
        return [r if r is not None else InternalError("no result") for r in results]

    def _run_group(self, requests: list[InferRequest]) -> list[InferResult]:
        if len(requests) == 1:
            request = requests[0]
            outputs = self.predict(request.inputs, request.outputs)
            return [InferResponse(self._select(request, outputs))]
        wanted = self._union_of_outputs(requests)
        names = list(requests[0].inputs)
        inputs = {name: np.concatenate([r.inputs[name] for r in requests]) for name in names}
        outputs = self.predict(inputs, wanted)
        sizes = [batch_size(r) for r in requests]
        total = sum(sizes)
        bounds = np.cumsum(sizes)[:-1]
        split: dict[str, list[np.ndarray]] = {}
        for name, array in outputs.items():
            if array.ndim == 0 or array.shape[0] != total:
                raise InternalError(
                    f"output '{name}' has shape {list(array.shape)}, expected a first "
                    f"dimension of {total} (the batch)"
                )
            split[name] = np.split(array, bounds)
        return [
            InferResponse(self._select(request, {k: v[i] for k, v in split.items()}))
            for i, request in enumerate(requests)
        ]


def require_inputs(inputs: dict[str, np.ndarray], *names: str) -> list[np.ndarray]:
    """The named inputs, or :class:`InvalidArgument` naming the missing one."""
    try:
        return [inputs[name] for name in names]
    except KeyError as exc:
        raise InvalidArgument(f"missing input {exc.args[0]!r}") from None


def feature_matrix(
    inputs: dict[str, np.ndarray], name: str, features: int | None, framework: str
) -> np.ndarray:
    """The one ``[rows, features]`` input of a tabular model (one row may come as ``[features]``),
    checked against the feature count the model file gives (``None``: unknown)."""
    if len(inputs) != 1:
        raise InvalidArgument(f"{framework} models take one input ('{name}'), got {len(inputs)}")
    (matrix,) = inputs.values()
    if matrix.ndim == 1:
        matrix = matrix.reshape(1, -1)
    elif matrix.ndim != 2:
        raise InvalidArgument(
            f"input '{name}' must be [rows, features], got shape {list(matrix.shape)}"
        )
    if features and matrix.shape[-1] != features:
        raise InvalidArgument(f"expected {features} features per row, got {matrix.shape[-1]}")
    return matrix


def default_output_names(ctx: LoadContext, signature: Signature | None) -> tuple[str, ...]:
    """What a request naming no output gets: every output of the model's metadata, which is the
    config's ``output`` list when it has one (a config that lists fewer outputs narrows both),
    else every output the model's own signature gives."""
    declared = tuple(spec.name for spec in ctx.config.output_specs())
    if declared:
        return declared
    return tuple(spec.name for spec in signature.outputs) if signature is not None else ()


def to_float(array: np.ndarray, dtype: np.dtype[Any], name: str) -> np.ndarray:
    """``array`` as ``dtype`` (a float type), converted as a tabular framework converts its input.

    BOOL, the integer types and FP16/32/64 convert (a float to a narrower float rounds, as
    XGBoost rounds FP64 to float32 itself); an integer that ``dtype`` cannot hold exactly — above
    2**53 in magnitude for FP64, 2**24 for FP32 — is :class:`InvalidArgument`, found from the
    array's minimum and maximum (and only for integer types wide enough to hold one). BYTES and
    BF16 arrays are refused (the dataplane refuses them first, from the model's signature).
    """
    if array.dtype == dtype:
        return array
    kind = array.dtype.kind
    if kind in "iu":
        bits = np.finfo(dtype).nmant + 1
        exact = 2**bits
        limits = np.iinfo(array.dtype)
        if array.size and (limits.max > exact or limits.min < -exact):
            low, high = int(array.min()), int(array.max())
            if high > exact or low < -exact:
                value = high if high > exact else low
                target = datatype_of(np.empty(0, dtype))
                raise InvalidArgument(
                    f"input '{name}' holds {value}, which {target} cannot hold exactly: "
                    f"{datatype_of(array)} values convert to {target} exactly only from "
                    f"-2**{bits} to 2**{bits}; send {target} values instead"
                )
    elif kind not in "bf":
        raise InvalidArgument(
            f"input '{name}' has datatype {datatype_of(array)}, which cannot be converted to "
            f"{datatype_of(np.empty(0, dtype))}: send BOOL, an integer type, FP16, FP32 or FP64"
        )
    return array.astype(dtype)


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: a framework's error, short enough for a log line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
