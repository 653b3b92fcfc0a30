"""The process side of a process instance: ``python -m oipserve.execution.child FD``.

Started by :class:`~oipserve.execution.process.ProcessInstance` (a fresh interpreter: nothing of
the server's event loop, threads or gRPC state is inherited), it serves one model copy over the
socket ``FD``: ``Load``, then ``Infer`` any number of times, one at a time, then ``Unload``. It
exits when the server closes the socket, and on Linux when the server process dies
(``PR_SET_PDEATHSIG``), so a killed server leaves no instance behind. SIGINT is ignored: a Ctrl+C
in a terminal reaches the whole process group, and the server decides when instances stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import signal
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from oipserve.execution import wire
from oipserve.execution.shm import Segment
from oipserve.model import LoadContext, Model


def _die_with_parent() -> None:
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Instance:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.model: Model | None = None
        self.segment: Segment | None = None
        self.loop = asyncio.new_event_loop()

    def send(self, message: wire.FromInstance) -> None:
        self.sock.sendall(wire.frame(message))

    def receive(self) -> wire.ToInstance | None:
        body = wire.receive_blocking(self.sock)
        if body is None:
            return None
        return wire.to_instance_decoder.decode(body)

    def call(self, fn: Callable[..., Any], *args: object) -> Any:
        result = fn(*args)
        if inspect.isawaitable(result):
            return self.loop.run_until_complete(result)
        return result

    def run(self) -> None:
        while True:
            message = self.receive()
            if message is None:
                return
            if isinstance(message, wire.Load):
                self.load(message)
            elif isinstance(message, wire.Infer):
                self.infer(message)
            elif isinstance(message, wire.Unload):
                self.unload()
                return

    def load(self, message: wire.Load) -> None:
        from oipserve.repository.config import ModelConfig
        from oipserve.runtimes import instantiate

        try:
            config = msgspec.msgpack.decode(message.config, type=ModelConfig)
            ctx = LoadContext(
                message.name,
                message.version,
                Path(message.path),
                config,
                Path(message.model_file) if message.model_file else None,
                auto_complete=message.auto_complete,
            )
            model = instantiate(message.backend, ctx)
            self.call(model.load, ctx)
            self.model = model
            signature = model.signature()
        except Exception as exc:
            self.send(wire.Failed(wire.describe(exc)))
            return
        self.send(wire.Loaded(signature, getattr(model, "thread_safe", True)))

    def _segment(self, name: str) -> Segment | None:
        if not name:
            return None
        if self.segment is None or self.segment.name != name:
            self.segment = Segment.attach(name)  # the server grew it: a new name
        return self.segment

    def infer(self, message: wire.Infer) -> None:
        model = self.model
        try:
            if model is None:
                raise RuntimeError("the instance has no model loaded")
            requests = wire.unpack_requests(message.requests, self._segment(message.segment))
            results = self.call(model.infer, requests)
            if len(results) != len(requests):
                raise RuntimeError(
                    f"the model returned {len(results)} results for {len(requests)} requests"
                )
        except Exception as exc:
            self.send(wire.Failed(wire.describe(exc)))
            return
        size = wire.segment_size(wire.output_arrays(results))
        if size <= wire.INLINE_LIMIT:
            self.send(wire.Inferred(wire.pack_results(results, None)))
            return
        self.send(wire.NeedSpace(size))
        answer = self.receive()
        if not isinstance(answer, wire.WriteOutputs):
            raise SystemExit(0)  # the server went away (or gave up on this call)
        packed = wire.pack_results(results, Segment.attach(answer.segment))
        self.send(wire.Inferred(packed))

    def unload(self) -> None:
        model, self.model = self.model, None
        try:
            if model is not None:
                self.call(model.unload)
        except Exception as exc:
            self.send(wire.Failed(wire.describe(exc)))
            return
        self.send(wire.Unloaded())


def main(argv: list[str]) -> int:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sock = socket.socket(fileno=int(argv[1]))
    sock.setblocking(True)
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        _Instance(sock).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
