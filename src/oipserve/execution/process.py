"""Process instances: each instance of a model runs in its own process (``execution = "process"``).

A :class:`ProcessInstance` is the :class:`~oipserve.execution.instance.ModelInstance` of a model
whose ``[parameters]`` say ``execution = "process"``: ``instance_group`` *count* processes, each
holding its own copy of the model and running one batch at a time, so a Python model that holds
the GIL uses as many cores as it has instances, and a model that crashes its process (a segfault
in a native library, ``os._exit``, the kernel's OOM killer) takes only that process down.

* Start: a fresh interpreter (``python -m oipserve.execution.child``; nothing of the server's
  event loop, threads or gRPC state is inherited, which a fork would copy), a Unix socket pair
  for control messages (:mod:`oipserve.execution.wire`), tensors through shared memory
  (:mod:`oipserve.execution.shm`). A model that fails or crashes while loading fails the load with
  the reason.
* Crash: the batch the process held fails (500 "instance N of model 'm' crashed: ..."), the
  process is restarted (backoff 0.1 s doubling to 5 s) while the other instances keep serving.
  More than :data:`MAX_RESTARTS` crashes within :data:`RESTART_WINDOW_S` make the model
  UNAVAILABLE with the reason (the registry is told through ``on_unavailable``).
* Hang: a batch that takes longer than the execution timeout (``[parameters]
  execution_timeout_secs``, default 30 s like Triton's Python-backend ``stub_timeout_seconds``)
  kills its process, fails the batch, and the process is restarted as after a crash.

Triton runs Python-backend models the same way, one stub process per instance with shared memory
between them (triton-inference-server/python_backend: src/stub_launcher.cc,
src/shm_manager.cc).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import socket
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final

import oipserve
from oipserve.errors import InternalError, ModelLoadError, OIPServeError, Unavailable
from oipserve.execution import wire
from oipserve.execution.shm import Segment
from oipserve.model import InferRequest, InferResult, Signature

logger = logging.getLogger("oipserve.execution")

DEFAULT_EXECUTION_TIMEOUT_S: Final = 30.0
"""A batch running longer than this kills its instance (Triton's ``stub_timeout_seconds``)."""
MAX_RESTARTS: Final = 5
RESTART_WINDOW_S: Final = 60.0
_STOP_TIMEOUT_S: Final = 10.0

UnavailableHook = Callable[[object, str], None]
"""Told ``(instance, reason)`` when a process instance gives up (the registry's hook)."""


class _Died(Exception):
    """The instance process is gone (crashed, killed, or killed by us after a hang)."""


def _src_path() -> str:
    return str(Path(oipserve.__file__).resolve().parent.parent)


def execution_timeout(parameters: dict[str, str], model: str) -> float:
    """``[parameters] execution_timeout_secs`` checked (default 30 s)."""
    text = parameters.get("execution_timeout_secs", "")
    if not text:
        return DEFAULT_EXECUTION_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise ModelLoadError(
            f"model '{model}': parameter execution_timeout_secs = '{text}' is not a positive "
            "number of seconds"
        )
    return value


def describe_exit(code: int) -> str:
    """ "was killed by signal SIGSEGV" or "exited with code 3"."""
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by signal {signal.Signals(-code).name}"
        return f"was killed by signal {-code}"
    return f"exited with code {code}"


class _Process:
    """One instance process and its end of the control socket."""

    def __init__(self, label: str, load: wire.Load) -> None:
        self.label = label
        self._load = load
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._segment: Segment | None = None
        """The request segment (this side owns it; grown when a batch does not fit)."""
        self.generation = 0
        """Counts starts: an idle-queue entry of an earlier start is stale."""
        self.busy = False
        """A call is exchanging messages with the process (it notices a death itself)."""
        self.stopping = False

    @property
    def pid(self) -> int:
        return self.process.pid if self.process is not None else 0

    def alive(self) -> bool:
        """Not known to be dead (exited, or its end of the socket closed)."""
        if self.process is None or self.process.returncode is not None:
            return False
        return self._reader is not None and not self._reader.at_eof()

    async def start(self) -> wire.Loaded:
        """Start the process and load the model in it; :class:`_Died` or an error with the
        reason when it cannot."""
        self.generation += 1
        self.stopping = False
        ours, theirs = socket.socketpair()
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (_src_path(), env.get("PYTHONPATH", "")) if p
        )
        try:
            self.process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "oipserve.execution.child",
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env=env,
            )
        finally:
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        reply = await self._exchange(self._load)
        if isinstance(reply, wire.Loaded):
            return reply
        if isinstance(reply, wire.Failed):
            raise wire.rebuild(reply.failure, self._load.name)
        raise InternalError(f"{self.label} answered {type(reply).__name__} to Load")

    def _send(self, message: wire.ToInstance) -> None:
        assert self._writer is not None
        self._writer.write(wire.frame(message))

    async def _receive(self) -> wire.FromInstance:
        assert self._reader is not None
        try:
            header = await self._reader.readexactly(4)
            body = await self._reader.readexactly(wire.header_size(header))
        except (asyncio.IncompleteReadError, ConnectionError):
            raise _Died(await self.exit_reason()) from None
        return wire.from_instance_decoder.decode(body)

    async def _exchange(self, message: wire.ToInstance) -> wire.FromInstance:
        self._send(message)
        return await self._receive()

    async def exit_reason(self) -> str:
        """How the process ended ("was killed by signal SIGSEGV", "exited with code 3")."""
        if self.process is None:
            return "never started"
        try:
            code = await asyncio.wait_for(self.process.wait(), 5)
        except TimeoutError:
            self.kill()
            code = await self.process.wait()
        return describe_exit(code)

    async def infer(self, requests: list[InferRequest]) -> list[InferResult]:
        size = wire.segment_size([a for r in requests for a in r.inputs.values()])
        segment = None
        if size:
            segment = self._segment
            if segment is None or segment.size < size:
                if segment is not None:
                    segment.unlink()
                segment = self._segment = Segment.create(1 << (size - 1).bit_length())
        packed = wire.pack_requests(requests, segment)
        reply = await self._exchange(wire.Infer(segment.name if segment else "", packed))
        outputs: Segment | None = None
        try:
            if isinstance(reply, wire.NeedSpace):
                outputs = Segment.create(reply.size)
                reply = await self._exchange(wire.WriteOutputs(outputs.name))
            if isinstance(reply, wire.Failed):
                raise wire.rebuild(reply.failure, self._load.name)
            if not isinstance(reply, wire.Inferred):
                raise InternalError(f"{self.label} answered {type(reply).__name__} to Infer")
            return wire.unpack_results(reply.results, outputs, self._load.name)
        finally:
            if outputs is not None:
                outputs.unlink()  # the name only: the results' views keep the mapping

    async def stop(self) -> None:
        """Unload the model and let the process end (killed if it does not within 10 s)."""
        self.stopping = True
        try:
            if self.process is not None and self.process.returncode is None:
                reply = await asyncio.wait_for(self._exchange(wire.Unload()), _STOP_TIMEOUT_S)
                if isinstance(reply, wire.Failed):
                    logger.error(
                        "%s raised in unload(): %s", self.label, reply.failure.traceback.strip()
                    )
                await asyncio.wait_for(self.process.wait(), _STOP_TIMEOUT_S)
        except (TimeoutError, _Died, ConnectionError):
            pass
        finally:
            self.kill()
            self.close()

    def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self._segment is not None:
            self._segment.unlink()
            self._segment = None


class ProcessInstance:
    """``count`` processes, each a copy of the model running one batch at a time."""

    def __init__(
        self,
        *,
        backend: str,
        name: str,
        version: str,
        path: Path,
        config: bytes,
        model_file: Path | None,
        count: int,
        auto_complete: bool = False,
        timeout_s: float,
        on_unavailable: UnavailableHook | None = None,
    ) -> None:
        self._name = name
        self._version = version
        self._load = wire.Load(
            backend,
            name,
            version,
            str(path),
            config,
            str(model_file) if model_file else None,
            auto_complete,
        )
        self._count = max(1, count)
        self.timeout_s = timeout_s
        self._on_unavailable = on_unavailable
        self._processes: list[_Process] = []
        self._idle: asyncio.Queue[tuple[_Process, int] | None] = asyncio.Queue()
        self._watchers: set[asyncio.Task[None]] = set()
        self._crashes: list[float] = []
        self._restarts: set[asyncio.Task[None]] = set()
        self._broken = ""
        """Why the instance gave up (empty while it serves)."""
        self._closed = False

    @property
    def concurrency(self) -> int:
        return self._count

    def _label(self, index: int) -> str:
        return f"instance {index} of model '{self._name}' version {self._version}"

    async def load(self) -> Signature | None:
        self._processes = [_Process(self._label(i), self._load) for i in range(self._count)]
        outcomes = await asyncio.gather(
            *(p.start() for p in self._processes), return_exceptions=True
        )
        for process, outcome in zip(self._processes, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                await asyncio.gather(*(p.stop() for p in self._processes))
                self._processes = []
                if isinstance(outcome, _Died):
                    raise ModelLoadError(
                        f"{process.label} crashed while loading: the process {outcome}"
                    )
                if isinstance(outcome, OIPServeError):
                    raise ModelLoadError(outcome.message) from outcome.__cause__
                raise outcome
        for process in self._processes:
            self._ready(process)
        first = outcomes[0]
        assert isinstance(first, wire.Loaded)
        logger.info(
            "model '%s' version %s runs in %d processes (pids %s)",
            self._name,
            self._version,
            self._count,
            ", ".join(str(p.pid) for p in self._processes),
        )
        return first.signature

    def _ready(self, process: _Process) -> None:
        """``process`` (just started) takes batches; watch it die while idle."""
        self._idle.put_nowait((process, process.generation))
        task = asyncio.create_task(self._watch(process, process.generation))
        self._watchers.add(task)
        task.add_done_callback(self._watchers.discard)

    async def _watch(self, process: _Process, generation: int) -> None:
        assert process.process is not None
        code = await process.process.wait()
        if process.generation == generation and not (
            process.busy or process.stopping or self._stopping()
        ):
            # died while idle (killed from outside, the OOM killer): restart it now rather than
            # failing the next batch on it
            self._crashed(process, f"the process {describe_exit(code)}")

    async def _take(self) -> _Process:
        while True:
            entry = await self._idle.get()
            if entry is None:
                self._idle.put_nowait(None)  # wake the next waiter too
                raise Unavailable(f"model '{self._name}' is not available: {self._broken}")
            process, generation = entry
            if process.generation == generation and process.alive():
                return process

    async def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        process = await self._take()
        process.busy = True
        healthy = False
        try:
            results = await asyncio.wait_for(process.infer(requests), self.timeout_s)
            healthy = True
            return results
        except _Died as exc:
            reason = f"the process {exc}"
            self._crashed(process, reason)
            raise InternalError(f"{process.label} crashed: {reason}") from None
        except TimeoutError:
            process.kill()
            reason = f"did not answer within {self.timeout_s:g} s and was killed"
            await process.exit_reason()
            self._crashed(process, reason)
            raise InternalError(f"{process.label} {reason}") from None
        except asyncio.CancelledError:
            # the exchange stopped half-way: this process's state is unknown, start it afresh
            process.kill()
            self._restart_later(process, counted=False)
            raise
        except OIPServeError:
            healthy = True  # the model's own failure, reported by a live process
            raise
        finally:
            process.busy = False
            if healthy:
                self._idle.put_nowait((process, process.generation))

    def _crashed(self, process: _Process, reason: str) -> None:
        process.stopping = True  # known gone: its watcher stays quiet
        logger.error("%s (pid %d): %s", process.label, process.pid, reason)
        self._restart_later(process, counted=True, reason=reason)

    def _restart_later(self, process: _Process, *, counted: bool, reason: str = "") -> None:
        process.close()
        if self._closed or self._broken:
            return
        now = time.monotonic()
        if counted:
            self._crashes = [t for t in self._crashes if now - t < RESTART_WINDOW_S]
            self._crashes.append(now)
            if len(self._crashes) > MAX_RESTARTS:
                self._give_up(
                    f"its instances crashed {len(self._crashes)} times within "
                    f"{RESTART_WINDOW_S:g} s (last: {process.label}: {reason})"
                )
                return
        task = asyncio.create_task(self._restart(process, len(self._crashes)))
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def _restart(self, process: _Process, attempt: int) -> None:
        await asyncio.sleep(min(5.0, 0.1 * 2 ** max(0, attempt - 1)))
        if self._closed or self._broken:
            return
        try:
            await process.start()
        except Exception as exc:
            reason = f"the process {exc}" if isinstance(exc, _Died) else str(exc)
            logger.error("%s could not be restarted: %s", process.label, reason)
            process.kill()
            self._restart_later(process, counted=True, reason=reason)
            return
        if self._stopping():
            await process.stop()
            return
        logger.info("%s restarted (pid %d)", process.label, process.pid)
        self._ready(process)

    def _stopping(self) -> bool:
        return self._closed or bool(self._broken)

    def _give_up(self, reason: str) -> None:
        self._broken = reason
        logger.error("model '%s' version %s is UNAVAILABLE: %s", self._name, self._version, reason)
        for process in self._processes:
            process.kill()
        self._idle.put_nowait(None)
        if self._on_unavailable is not None:
            self._on_unavailable(self, reason)

    async def unload(self) -> None:
        self._closed = True
        for task in [*self._restarts, *self._watchers]:
            task.cancel()
        await asyncio.gather(*self._restarts, *self._watchers, return_exceptions=True)
        await asyncio.gather(*(p.stop() for p in self._processes))
        self._processes = []

    async def healthy(self) -> bool:
        return bool(self._processes) and not self._broken and not self._closed

    def pids(self) -> list[int]:
        """The instance processes' ids (tests and logs)."""
        return [p.pid for p in self._processes]


__all__ = ["DEFAULT_EXECUTION_TIMEOUT_S", "ProcessInstance", "execution_timeout"]
