"""The control channel between the supervisor and its workers.

One Unix socket pair per worker; msgspec Structs (msgpack), each framed by a 4-byte length. Two
kinds of traffic, both routed by the supervisor so a worker never needs to know its siblings:

* **Fan-out of server state** (``Broadcast`` → ``Apply`` to every other worker → ``Applied`` →
  ``BroadcastDone``): a repository load or unload made through one worker is applied in every
  worker before the call answers. The supervisor keeps the latest operation per model and replays
  them to a worker that (re)starts, so a restarted worker serves what its siblings serve. Later
  server state (logging and trace settings, shared-memory regions) is another :data:`Operation`.
* **Gathering** (``Gather`` → ``Report`` to every other worker → ``Reported`` → ``Gathered``):
  one worker asks its siblings for plain data — ``"statistics"`` (summed by
  :func:`oipserve.scheduling.statistics.merge_statistics`) today, metric state next — each
  worker answering from its handler table (:meth:`oipserve.workers.worker.WorkerLink.on_report`).

Readiness flows the other way: each worker reports its own (``State``) when start-up ends and after
every repository change; the supervisor sends every worker the server's (``Cluster``): ready when
every worker has started and is ready.
"""

from __future__ import annotations

import asyncio
import struct
from typing import Any, Final, TypeAlias

import msgspec

_HEADER: Final = struct.Struct("<I")


class LoadOp(msgspec.Struct, tag=True, array_like=True):
    name: str
    config: str | None = None
    files: dict[str, bytes] | None = None


class UnloadOp(msgspec.Struct, tag=True, array_like=True):
    name: str


Operation: TypeAlias = LoadOp | UnloadOp
"""A change of server state every worker applies."""


# -- worker → supervisor ---------------------------------------------------------------------


class State(msgspec.Struct, tag=True, array_like=True):
    """This worker's own readiness (``started``: its start-up has finished)."""

    started: bool
    ready: bool
    reason: str = ""


class Broadcast(msgspec.Struct, tag=True, array_like=True):
    id: int
    op: Operation


class Gather(msgspec.Struct, tag=True, array_like=True):
    id: int
    what: str
    args: dict[str, str] = {}


class Applied(msgspec.Struct, tag=True, array_like=True):
    id: int
    error: str = ""
    state: State | None = None


class Reported(msgspec.Struct, tag=True, array_like=True):
    id: int
    payload: Any = None


# -- supervisor → worker ---------------------------------------------------------------------


class Configure(msgspec.Struct, tag=True, array_like=True):
    """The first message: the settings (ports resolved) and the worker's index."""

    index: int
    count: int
    settings: bytes


class Apply(msgspec.Struct, tag=True, array_like=True):
    id: int
    op: Operation


class Report(msgspec.Struct, tag=True, array_like=True):
    id: int
    what: str
    args: dict[str, str] = {}


class BroadcastDone(msgspec.Struct, tag=True, array_like=True):
    id: int
    errors: list[str] = []


class Gathered(msgspec.Struct, tag=True, array_like=True):
    id: int
    payloads: list[Any] = []


class Cluster(msgspec.Struct, tag=True, array_like=True):
    """The server's readiness over every worker."""

    ready: bool
    reason: str = ""


ToSupervisor: TypeAlias = State | Broadcast | Gather | Applied | Reported
ToWorker: TypeAlias = Configure | Apply | Report | BroadcastDone | Gathered | Cluster

_encoder = msgspec.msgpack.Encoder()
_to_supervisor = msgspec.msgpack.Decoder(ToSupervisor)
_to_worker = msgspec.msgpack.Decoder(ToWorker)


class Channel:
    """One end of a control socket (asyncio streams)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    @classmethod
    async def open(cls, sock: Any) -> Channel:
        reader, writer = await asyncio.open_unix_connection(sock=sock, limit=2**20)
        return cls(reader, writer)

    def send(self, message: ToSupervisor | ToWorker) -> None:
        body = _encoder.encode(message)
        if not self._writer.is_closing():
            self._writer.write(_HEADER.pack(len(body)) + body)

    async def _body(self) -> bytes | None:
        try:
            header = await self._reader.readexactly(_HEADER.size)
            size: int = _HEADER.unpack(header)[0]
            return await self._reader.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError):
            return None

    async def from_worker(self) -> ToSupervisor | None:
        """The next message from the worker; ``None`` once it closed the socket."""
        body = await self._body()
        return None if body is None else _to_supervisor.decode(body)

    async def from_supervisor(self) -> ToWorker | None:
        """The next message from the supervisor; ``None`` once it closed the socket."""
        body = await self._body()
        return None if body is None else _to_worker.decode(body)

    def close(self) -> None:
        self._writer.close()


__all__ = [
    "Applied",
    "Apply",
    "Broadcast",
    "BroadcastDone",
    "Channel",
    "Cluster",
    "Configure",
    "Gather",
    "Gathered",
    "LoadOp",
    "Operation",
    "Report",
    "Reported",
    "State",
    "ToSupervisor",
    "ToWorker",
    "UnloadOp",
]
