"""A worker process of ``--workers N``: ``python -m oipserve.workers.worker FD``.

Spawned by the supervisor (a fresh interpreter: no event loop or listener is inherited), it reads
its settings from the control socket ``FD`` (never the command line: the API key is in them),
then runs an ordinary :class:`~oipserve.server.Server` whose listeners bind with ``SO_REUSEPORT``
beside its siblings' — the kernel spreads connections over the workers — and whose dataplane
reaches its siblings through a :class:`WorkerLink`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import signal
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from oipserve.workers import control

if TYPE_CHECKING:
    from oipserve.server import Server

logger = logging.getLogger("oipserve.workers")

ReportHandler = Callable[[dict[str, str]], Any]
"""Answers a sibling's ``Gather``: plain data (msgpack-encodable), or ``None`` for nothing."""


class WorkerLink:
    """This worker's side of the control channel: what the dataplane calls its siblings."""

    def __init__(self, channel: control.Channel, index: int, count: int) -> None:
        self.channel = channel
        self.index = index
        self.count = count
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._cluster = control.Cluster(False, "the workers are starting")
        self._started = False
        self._ops: asyncio.Queue[control.Apply] = asyncio.Queue()
        self.report_handlers: dict[str, ReportHandler] = {}
        """``what`` → handler: what this worker tells a sibling that gathers ``what``. Another
        kind of shared state (metrics) registers its handler here."""
        self.load_model: Callable[[str, str | None, Mapping[str, bytes] | None], Awaitable[None]]
        self.unload_model: Callable[[str], Awaitable[None]]
        """How this worker applies a sibling's change (its dataplane's, whatever the mode)."""
        self.state: Callable[[], tuple[bool, str]] = lambda: (False, "starting")
        self.on_closed: Callable[[], None] = lambda: None

    def attach(self, server: Server) -> None:
        """Become ``server``'s link to its siblings: its dataplane's :class:`Siblings`, its
        dataplane applies their changes and reports its statistics; a closed channel stops it."""
        dataplane = server.dataplane
        dataplane.siblings = self
        self.load_model = dataplane.load_model
        self.unload_model = dataplane.unload_model
        self.state = dataplane.own_readiness
        self.on_closed = server.stop
        self.report_handlers["statistics"] = lambda args: dataplane.statistics(
            args.get("model", ""), args.get("version", "")
        )

    # -- what the dataplane uses (oipserve.dataplane.Siblings) -----------------------------

    async def load(
        self, name: str, config: str | None, files: Mapping[str, bytes] | None
    ) -> list[str]:
        op = control.LoadOp(name, config, dict(files) if files else None)
        done: control.BroadcastDone = await self._ask(lambda i: control.Broadcast(i, op))
        return done.errors

    async def unload(self, name: str) -> list[str]:
        done: control.BroadcastDone = await self._ask(
            lambda i: control.Broadcast(i, control.UnloadOp(name))
        )
        return done.errors

    async def gather(self, what: str, args: dict[str, str]) -> list[Any]:
        gathered: control.Gathered = await self._ask(lambda i: control.Gather(i, what, args))
        return [payload for payload in gathered.payloads if payload is not None]

    def ready(self) -> tuple[bool, str]:
        """The server's readiness over every worker, as the supervisor last said."""
        return self._cluster.ready, self._cluster.reason

    def changed(self) -> None:
        """This worker's readiness may have changed: tell the supervisor."""
        if self._started:
            self.channel.send(self._state())

    # -- the channel -----------------------------------------------------------------------

    def _state(self) -> control.State:
        ready, reason = self.state()
        return control.State(self._started, ready, reason)

    def started(self) -> None:
        """Start-up has finished (listening, every start-up model tried)."""
        self._started = True
        self.channel.send(self._state())

    async def _ask(self, build: Callable[[int], control.ToSupervisor]) -> Any:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            self.channel.send(build(request_id))
            return await future
        finally:
            self._pending.pop(request_id, None)

    async def run(self) -> None:
        """Read the supervisor's messages until it closes the channel (then stop the server)."""
        applier = asyncio.create_task(self._apply_in_order())
        try:
            while True:
                message = await self.channel.from_supervisor()
                if message is None:
                    break
                if isinstance(message, control.Apply):
                    self._ops.put_nowait(message)
                elif isinstance(message, control.Report):
                    self.channel.send(control.Reported(message.id, self._report(message)))
                elif isinstance(message, control.Cluster):
                    self._cluster = message
                elif isinstance(message, (control.BroadcastDone, control.Gathered)):
                    future = self._pending.get(message.id)
                    if future is not None and not future.done():
                        future.set_result(message)
        finally:
            applier.cancel()
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the supervisor went away"))
        logger.warning("worker %d: the supervisor closed the control channel; stopping", self.index)
        self.on_closed()

    def _report(self, message: control.Report) -> Any:
        handler = self.report_handlers.get(message.what)
        if handler is None:
            return None
        try:
            return handler(message.args)
        except Exception:
            return None  # e.g. the model is not loaded in this worker: nothing to add

    async def _apply_in_order(self) -> None:
        """Operations from siblings, one at a time, in the order the supervisor sent them."""
        while True:
            message = await self._ops.get()
            error = ""
            op = message.op
            try:
                if isinstance(op, control.LoadOp):
                    await self.load_model(op.name, op.config, op.files)
                else:
                    await self.unload_model(op.name)
            except Exception as exc:
                error = f"worker {self.index}: {exc}"
            self.channel.send(control.Applied(message.id, error, self._state()))


def _configure_logging(level: str, index: int) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format=f"[worker {index}] %(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
    )


async def _serve(sock: socket.socket) -> int:
    from oipserve.errors import StartupError
    from oipserve.server import Server
    from oipserve.settings import Settings

    channel = await control.Channel.open(sock)
    first = await channel.from_supervisor()
    if not isinstance(first, control.Configure):
        return 1
    settings = msgspec.msgpack.decode(
        first.settings, type=Settings, dec_hook=lambda kind, value: Path(value)
    )
    _configure_logging(settings.log_level, first.index)
    link = WorkerLink(channel, first.index, first.count)
    try:
        await Server(settings, link=link).serve()
    except StartupError as exc:
        logging.getLogger("oipserve").error("%s", exc)
        return 1
    return 0


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the supervisor forwards SIGTERM instead
    sock = socket.socket(fileno=int(argv[1]))
    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(_serve(sock))
    with contextlib.suppress(KeyboardInterrupt):
        return uvloop.run(_serve(sock))
    return 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
