"""Calls as values (sans I/O): a dialect builds them, a sync or async transport performs them.

Each public method of :class:`~oipserve.client.Client` and :class:`~oipserve.client.AsyncClient`
asks its dialect (REST or gRPC) for a call, hands it to its transport and returns what the call's
``parse`` makes of the reply. So the protocol logic is written once per wire format, the I/O once
per (wire format, sync/async) pair, and the two clients stay thin.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RestReply:
    status: int
    headers: Mapping[str, str]
    content: bytes


@dataclass(frozen=True, slots=True)
class RestCall(Generic[T]):
    method: str
    path: str
    parse: Callable[[RestReply], T]
    content: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    raise_for_status: bool = True
    """False: every status goes to ``parse`` (readiness answers 503 for "not ready")."""


@dataclass(frozen=True, slots=True)
class GrpcCall(Generic[T]):
    rpc: str
    request: Any
    response_type: Any
    parse: Callable[[Any], T]
    metadata: tuple[tuple[str, str], ...] = ()
    false_on_error: bool = False
    """Readiness: a status the server answered (not a connection failure) means "not ready"."""
