"""Base of the framework runtimes: one concatenated batch in, split results out.

A framework runtime implements :meth:`BatchedModel.predict` on a single dict of arrays whose first
dimension is the batch. :meth:`BatchedModel.infer` takes the list of requests the scheduler hands
over, concatenates those whose non-batch dimensions agree along dim 0, calls ``predict`` once per
group with the union of the outputs they asked for, splits the results back by each request's batch
size and keeps, per request, only the outputs it asked for.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np

from oipserve.errors import InternalError, InvalidArgument
from oipserve.model import (
    InferRequest,
    InferResponse,
    InferResult,
    Model,
    batch_key,
    batch_size,
    select_outputs,
)


class BatchedModel(Model):
    """A model whose ``predict`` takes one concatenated batch."""

    default_outputs: tuple[str, ...] = ()
    """What ``predict`` returns when asked for no output by name."""

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

    def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
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


def first_line(exc: BaseException) -> str:
    """``Type: first line of the message``: a framework's error, short enough for a log line."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"
