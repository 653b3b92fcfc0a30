"""Domain values the use cases return and every transport may render.

The dataplane answers with these (and with :mod:`oipserve.protocol.types`), never with the
registry's own objects: a transport imports this module, never :mod:`oipserve.registry`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class ModelState(enum.Enum):
    """A model version's lifecycle state, spelled as Triton's repository index spells it."""

    UNKNOWN = "UNKNOWN"
    LOADING = "LOADING"
    READY = "READY"
    UNAVAILABLE = "UNAVAILABLE"
    UNLOADING = "UNLOADING"


@dataclass(frozen=True, slots=True)
class IndexEntry:
    """One row of the repository index: a model folder, or one version of it with its state."""

    name: str
    version: str = ""
    state: str = ""
    reason: str = ""


@dataclass(frozen=True, slots=True)
class ModelReadiness:
    """Whether a model (version) answers inference, and if not, why (its state and reason)."""

    name: str
    ready: bool
    reason: str = ""
    """Empty when ready; otherwise e.g. ``LOADING`` or ``UNAVAILABLE: <load error>``."""


__all__ = ["IndexEntry", "ModelReadiness", "ModelState"]
