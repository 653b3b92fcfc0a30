"""The supervisor of ``--workers N``: N serving processes that look like one server.

What it does, in order (compare uvicorn's ``supervisors/multiprocess.py``, which shares one
pre-bound socket; grpc servers cannot take one, so here every worker binds its own socket with
``SO_REUSEPORT`` and the kernel spreads connections over them):

1. Resolve the ports: port 0 becomes a free port, chosen once for every worker; each port is
   probe-bound *without* ``SO_REUSEPORT`` first, so a port another process holds fails start-up
   with its name (``SO_REUSEPORT`` would otherwise share it silently with a process of the same
   user).
2. Spawn the workers (``python -m oipserve.workers.worker``: fresh interpreters, nothing inherited
   from this process but the control socket) and send each its settings.
3. Route the control channel (:mod:`oipserve.workers.control`): repository changes fan out to
   every worker before the call answers, sibling data (statistics) is gathered for the worker
   that asks, and readiness — every worker started and ready — is sent to all. In ``poll`` mode
   the one repository watcher runs here and fans its changes out.
4. Restart a worker that dies, after a backoff (0.1 s doubling to 5 s), and replay the repository
   changes made since start-up to it; more than ``worker_restarts`` restarts within
   ``worker_restart_window_secs`` end the server with an error and exit code 1. A worker that
   does not finish start-up within ``worker_startup_secs`` ends it too.
5. On SIGTERM / SIGINT, forward SIGTERM to every worker (each drains: listeners close, requests in
   flight finish, models unload), wait for them, exit 0 — also while a worker is restarting.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

import msgspec

import oipserve
from oipserve.errors import StartupError
from oipserve.repository import poll
from oipserve.settings import Settings
from oipserve.workers import control

logger = logging.getLogger("oipserve.workers")

_STOP_TIMEOUT_S: Final = 60.0


def _encode_settings(settings: Settings) -> bytes:
    return msgspec.msgpack.encode(settings, enc_hook=lambda o: str(o) if isinstance(o, Path) else o)


def describe_exit(code: int | None) -> str:
    if code is None:
        return "is running"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


def probe_ports(settings: Settings) -> Settings:
    """The settings with port 0 resolved; :class:`StartupError` naming a port that is taken."""
    probes: list[socket.socket] = []
    http, grpc = settings.http_port, settings.grpc_port
    try:
        if settings.allow_http:
            http = _probe(settings.host, settings.http_port, "HTTP", probes)
        if settings.allow_grpc:
            grpc = _probe(settings.host, settings.grpc_port, "gRPC", probes)
        metrics = settings.metrics_port
        if metrics is not None and settings.allow_metrics:
            metrics = _probe(settings.host, metrics, "metrics", probes)
    finally:
        for sock in probes:
            sock.close()
    return replace(settings, http_port=http, grpc_port=grpc, metrics_port=metrics)


def _probe(host: str, port: int, what: str, probes: list[socket.socket]) -> int:
    try:
        infos = socket.getaddrinfo(
            host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except socket.gaierror as exc:
        raise StartupError(f"cannot listen for {what} on {host}:{port}: {exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    probes.append(sock)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        raise StartupError(
            f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc} "
            f"(port {port} is already in use?)"
            if exc.errno == 98
            else f"cannot listen for {what} on {host}:{port}: {exc.strerror or exc}"
        ) from None
    bound: int = sock.getsockname()[1]
    return bound


@dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process | None = None
    channel: control.Channel | None = None
    started: bool = False
    """Start-up finished and the repository changes replayed: it takes part in fan-outs."""
    replaying: bool = False
    ready: bool = False
    reason: str = "starting"
    ever_started: bool = False
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def reachable(self) -> bool:
        return self.channel is not None and (self.started or self.replaying)


class Supervisor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.count = settings.workers
        self._workers = [_Worker(i) for i in range(self.count)]
        self._ops: dict[str, control.Operation] = {}
        """The latest repository change per model (in order): replayed to a restarted worker."""
        self._ids = itertools.count(1)
        self._waiting: dict[int, tuple[int, asyncio.Future[Any]]] = {}
        """Sub-request id → (worker index, its answer)."""
        self._stop = asyncio.Event()
        self._fatal = ""
        self._restarts: list[float] = []
        self._all_started = asyncio.Event()
        self._cluster: tuple[bool, str] = (False, "")
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- running ---------------------------------------------------------------------------

    def stop(self, why: str = "") -> None:
        if why and not self._fatal:
            self._fatal = why
        self._stop.set()

    async def run(self) -> int:
        """Serve until SIGTERM / SIGINT (0) or a fatal worker failure (1)."""
        self.settings = probe_ports(self.settings)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stop)
        root = self.settings.model_repository
        poller = None
        if self.settings.model_control_mode == "poll" and root.is_dir():
            poller = poll.RepositoryPoller(
                root,
                self.settings.repository_poll_secs,
                self._poll_load,
                self._poll_unload,
                baseline=poll.snapshot(root),
            )
        logger.info(
            "starting %d workers (REST on port %d, gRPC on port %d)",
            self.count,
            self.settings.http_port,
            self.settings.grpc_port,
        )
        for worker in self._workers:
            self._spawn_task(self._keep_running(worker))
        started = asyncio.ensure_future(self._all_started.wait())
        stopped = asyncio.ensure_future(self._stop.wait())
        await asyncio.wait({started, stopped}, return_when=asyncio.FIRST_COMPLETED)
        poll_task = None
        if self._all_started.is_set() and not self._stop.is_set():
            logger.info(
                "%d workers serving: REST at port %d, gRPC at port %d",
                self.count,
                self.settings.http_port,
                self.settings.grpc_port,
            )
            if poller is not None:
                poll_task = asyncio.create_task(poller.run(), name="oipserve-poll")
                logger.info(
                    "polling %s for model changes every %gs (one watcher for all workers)",
                    root,
                    self.settings.repository_poll_secs,
                )
        await stopped
        started.cancel()
        if poll_task is not None:
            poll_task.cancel()
        await self._shutdown()
        if self._fatal:
            logger.error("%s", self._fatal)
            return 1
        logger.info("stopped")
        return 0

    def _spawn_task(self, coroutine: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _keep_running(self, worker: _Worker) -> None:
        """Run ``worker``, restarting it when it dies, until the server stops."""
        while not self._stop.is_set():
            try:
                await self._start(worker)
            except OSError as exc:
                self.stop(f"worker {worker.index} could not be started: {exc}")
                return
            assert worker.process is not None
            watchdog = self._spawn_task(self._startup_deadline(worker, worker.process))
            code = await worker.process.wait()
            watchdog.cancel()
            self._gone(worker)
            if self._stop.is_set():
                return
            how = describe_exit(code)
            if not worker.ever_started and not self._all_started.is_set():
                self.stop(f"worker {worker.index} (pid {worker.pid}) {how} during start-up")
                return
            now = time.monotonic()
            window = self.settings.worker_restart_window_secs
            self._restarts = [t for t in self._restarts if now - t < window]
            self._restarts.append(now)
            if len(self._restarts) > self.settings.worker_restarts:
                self.stop(
                    f"workers died {len(self._restarts)} times within {window:g} s (last: "
                    f"worker {worker.index} (pid {worker.pid}) {how}); stopping the server"
                )
                return
            delay = min(5.0, 0.1 * 2 ** (len(self._restarts) - 1))
            logger.error(
                "worker %d (pid %d) %s; restarting it in %.1f s (%d of %d restarts within %g s)",
                worker.index,
                worker.pid,
                how,
                delay,
                len(self._restarts),
                self.settings.worker_restarts,
                window,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), delay)

    async def _start(self, worker: _Worker) -> None:
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        source = str(Path(oipserve.__file__).resolve().parent.parent)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (source, env.get("PYTHONPATH", "")) if p)
        try:
            worker.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "oipserve.workers.worker",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        worker.channel = await control.Channel.open(ours)
        worker.channel.send(
            control.Configure(worker.index, self.count, _encode_settings(self.settings))
        )
        worker.tasks.add(self._spawn_task(self._read(worker, worker.channel)))
        logger.info("worker %d started (pid %d)", worker.index, worker.pid)

    async def _startup_deadline(self, worker: _Worker, process: asyncio.subprocess.Process) -> None:
        limit = self.settings.worker_startup_secs
        deadline = time.monotonic() + limit
        while not worker.started and process.returncode is None:
            if time.monotonic() > deadline:
                self.stop(
                    f"worker {worker.index} (pid {worker.pid}) did not finish start-up within "
                    f"{limit:g} s (--worker-startup-secs); stopping the server"
                )
                return
            await asyncio.sleep(0.1)

    def _gone(self, worker: _Worker) -> None:
        """``worker``'s process ended: forget it, fail what waited for it."""
        if worker.channel is not None:
            worker.channel.close()
        worker.channel = None
        worker.started = worker.replaying = worker.ready = False
        worker.reason = "restarting"
        for task in worker.tasks:
            task.cancel()
        worker.tasks.clear()
        for key, (index, future) in list(self._waiting.items()):
            if index == worker.index and not future.done():
                future.set_result(None)
                del self._waiting[key]
        self._publish()

    async def _shutdown(self) -> None:
        running = [w for w in self._workers if w.process and w.process.returncode is None]
        for worker in running:
            assert worker.process is not None
            # a worker stuck in its start-up when the server gives up has nothing to drain
            stuck = self._fatal and not worker.started
            with contextlib.suppress(ProcessLookupError):
                worker.process.send_signal(signal.SIGKILL if stuck else signal.SIGTERM)
        for worker in running:
            assert worker.process is not None
            try:
                await asyncio.wait_for(worker.process.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                logger.error("worker %d did not stop within %g s: killed", worker.index, 60)
                with contextlib.suppress(ProcessLookupError):
                    worker.process.kill()
                await worker.process.wait()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # -- the control channel ---------------------------------------------------------------

    async def _read(self, worker: _Worker, channel: control.Channel) -> None:
        while True:
            message = await channel.from_worker()
            if message is None:
                return
            if isinstance(message, control.State):
                self._on_state(worker, message)
            elif isinstance(message, control.Broadcast):
                self._spawn_task(self._broadcast(worker, channel, message))
            elif isinstance(message, control.Gather):
                self._spawn_task(self._gather(worker, channel, message))
            elif isinstance(message, (control.Applied, control.Reported)):
                waiting = self._waiting.pop(message.id, None)
                if waiting is not None and not waiting[1].done():
                    waiting[1].set_result(message)
                if (
                    isinstance(message, control.Applied)
                    and message.state is not None
                    and worker.started
                ):
                    self._on_state(worker, message.state)

    def _on_state(self, worker: _Worker, state: control.State) -> None:
        if state.started and not worker.started and not worker.replaying:
            worker.replaying = True
            self._spawn_task(self._replay(worker, list(self._ops.values()), state))
            return
        if worker.started:
            worker.ready, worker.reason = state.ready, state.reason
            self._publish()

    async def _replay(
        self, worker: _Worker, ops: list[control.Operation], state: control.State
    ) -> None:
        """Bring a (re)started worker to the repository state its siblings serve."""
        for op in ops:
            answer = await self._ask(worker, lambda i, op=op: control.Apply(i, op))
            if isinstance(answer, control.Applied) and answer.state is not None:
                state = answer.state
        if worker.channel is None:
            return
        worker.replaying = False
        worker.started = worker.ever_started = True
        worker.ready, worker.reason = state.ready, state.reason
        logger.info("worker %d (pid %d) is serving", worker.index, worker.pid)
        if all(w.started for w in self._workers):
            self._all_started.set()
        self._publish()

    def _ask(self, worker: _Worker, build: Any) -> asyncio.Future[Any]:
        request_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if worker.channel is None:
            future.set_result(None)
            return future
        self._waiting[request_id] = (worker.index, future)
        worker.channel.send(build(request_id))
        return future

    def _record(self, op: control.Operation) -> None:
        self._ops.pop(op.name, None)
        self._ops[op.name] = op

    async def _apply_everywhere(
        self, op: control.Operation, origin: _Worker | None = None
    ) -> list[str]:
        self._record(op)
        targets = [w for w in self._workers if w is not origin and w.reachable()]
        answers = await asyncio.gather(
            *(self._ask(w, lambda i: control.Apply(i, op)) for w in targets)
        )
        errors = []
        for target, answer in zip(targets, answers, strict=True):
            if answer is None:
                errors.append(f"worker {target.index} exited before it applied the change")
            elif answer.error:
                errors.append(answer.error)
        return errors

    async def _broadcast(
        self, origin: _Worker, channel: control.Channel, message: control.Broadcast
    ) -> None:
        errors = await self._apply_everywhere(message.op, origin)
        channel.send(control.BroadcastDone(message.id, errors))

    async def _gather(
        self, origin: _Worker, channel: control.Channel, message: control.Gather
    ) -> None:
        targets = [w for w in self._workers if w is not origin and w.reachable()]
        answers = await asyncio.gather(
            *(
                self._ask(w, lambda i: control.Report(i, message.what, message.args))
                for w in targets
            )
        )
        payloads = [a.payload for a in answers if isinstance(a, control.Reported)]
        channel.send(control.Gathered(message.id, payloads))

    def _publish(self) -> None:
        """Send every worker the server's readiness when it changed."""
        ready, reason = True, ""
        for worker in self._workers:
            if not worker.started:
                ready, reason = False, f"worker {worker.index} is starting"
                break
            if not worker.ready:
                ready, reason = False, f"worker {worker.index}: {worker.reason}"
                break
        if (ready, reason) == self._cluster:
            return
        self._cluster = (ready, reason)
        for worker in self._workers:
            if worker.channel is not None:
                worker.channel.send(control.Cluster(ready, reason))

    # -- poll mode: one watcher ------------------------------------------------------------

    async def _poll_load(self, name: str) -> None:
        errors = await self._apply_everywhere(control.LoadOp(name))
        if errors:
            raise RuntimeError("; ".join(errors))

    async def _poll_unload(self, name: str) -> None:
        errors = await self._apply_everywhere(control.UnloadOp(name))
        if errors:
            raise RuntimeError("; ".join(errors))


def supervise(settings: Settings) -> int:
    """Run ``settings.workers`` workers until interrupted; the exit code."""

    async def main() -> int:
        return await Supervisor(settings).run()

    try:
        import uvloop
    except ImportError:  # pragma: no cover
        return asyncio.run(main())
    return uvloop.run(main())


__all__ = ["Supervisor", "describe_exit", "probe_ports", "supervise"]
