"""What a model says about its tensors: :class:`TensorSpec` and :class:`Signature`.

These sit below both the model contract (:mod:`oipserve.model`, which re-exports them) and the
configuration schema (:mod:`oipserve.repository.config`, whose ``input_specs()`` builds them), so
neither of those imports the other's module to name them: the import graph stays acyclic
(``tests/unit/test_import_cycles.py``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from oipserve.protocol.datatypes import DATATYPES, NUMERIC_DATATYPES


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """A declared input or output. ``shape`` excludes the batch dimension; ``-1`` is variable."""

    name: str
    datatype: str
    shape: tuple[int, ...]
    accepts: frozenset[str] = frozenset()
    """Datatypes besides ``datatype`` that the model takes for this input and converts itself
    (a zero-config tabular model takes every numeric datatype). Empty: ``datatype`` only. A
    datatype written in a config file is always strict; only a runtime's signature widens it."""

    def takes(self, datatype: str) -> bool:
        """Whether a request may send this input as ``datatype``."""
        return datatype == self.datatype or datatype in self.accepts

    def expected(self) -> str:
        """What a request must send, for an error message: ``FP64``, or the datatypes accepted."""
        if not self.accepts:
            return self.datatype
        others = ", ".join(d for d in DATATYPES if d in self.accepts)
        return f"{self.datatype} (or {others}, converted to {self.datatype})"

    def converting(self) -> TensorSpec:
        """This spec taking every numeric datatype (converted to :attr:`datatype` by the model)."""
        return TensorSpec(self.name, self.datatype, self.shape, NUMERIC_DATATYPES - {self.datatype})


@dataclass(frozen=True, slots=True)
class Signature:
    """What a runtime found in the model file; the config overrides it where it speaks."""

    inputs: tuple[TensorSpec, ...] = ()
    outputs: tuple[TensorSpec, ...] = ()
    platform: str = ""
    decoupled: bool = False
    """The model answers each request with 0..N responses through its sender (a streaming
    model), whatever the config says."""
    config: dict[str, Any] = field(default_factory=dict)
    """Top-level fields of the model's config (Triton's JSON spelling, e.g. ``max_batch_size``,
    ``dynamic_batching``) that the model completed itself (Triton's auto-complete); each replaces
    the folder's field of that name."""
