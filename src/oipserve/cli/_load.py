"""The closed-loop load generator behind ``oipserve bench``: cheap enough to measure a fast server.

REST: one :class:`asyncio.Protocol` per connection on HTTP/1.1 keep-alive, each sending the same
pre-encoded request bytes, reading back only the status line and ``Content-Length`` of each
response, and sending the next request as soon as a response is complete (closed loop: at most one
request in flight per connection, ``concurrency`` connections). A general-purpose HTTP client
spends tens of microseconds per request building and parsing objects; this spends a few, so one
core drives more than 20,000 requests/s against a bare ASGI server (``benchmarks/bench_crosscheck
.py`` checks it, and its figures, against wrk). gRPC: ``concurrency`` coroutines on one grpc.aio
channel, each sending the pre-serialized ``ModelInferRequest`` bytes and reading the reply's bytes.

Latencies are from the write of a request to the last byte of its response, with
:func:`time.perf_counter_ns`. Only requests that start after the warm-up and finish before the end
of the measured window count.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, cast

import numpy as np


@dataclass(frozen=True, slots=True)
class LevelResult:
    concurrency: int
    requests: int
    errors: int
    duration_s: float
    throughput: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    first_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    concurrency: int, latencies_ns: list[int], errors: int, duration_s: float, first_error: str
) -> LevelResult:
    if latencies_ns:
        values = np.asarray(latencies_ns, dtype=np.float64) / 1e6
        p50, p90, p99 = (float(v) for v in np.percentile(values, [50, 90, 99]))
        highest = float(values.max())
    else:
        p50 = p90 = p99 = highest = float("nan")
    return LevelResult(
        concurrency,
        len(latencies_ns),
        errors,
        duration_s,
        len(latencies_ns) / duration_s if duration_s > 0 else 0.0,
        p50,
        p90,
        p99,
        highest,
        first_error,
    )


class _Window:
    """The measured window of one level, and its tally."""

    __slots__ = ("end", "errors", "first_error", "latencies", "start", "stopping")

    def __init__(self, start: int, end: int) -> None:
        self.start = start
        self.end = end
        self.latencies: list[int] = []
        self.errors = 0
        self.first_error = ""
        self.stopping = False

    def error(self, text: str) -> None:
        self.errors += 1
        if not self.first_error:
            self.first_error = text


class _Connection(asyncio.Protocol):
    __slots__ = ("buffer", "done", "request", "sent_at", "transport", "window")

    def __init__(self, request: bytes, window: _Window, done: asyncio.Future[None]) -> None:
        self.request = request
        self.window = window
        self.done = done
        self.buffer = b""
        self.sent_at = 0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not registered as asyncio.Transport subclasses
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        now = time.perf_counter_ns()
        if now >= self.window.end or self.window.stopping:
            self._finish()
            return
        self.sent_at = now
        assert self.transport is not None
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        if self.buffer:
            data = self.buffer + data
            self.buffer = b""
        end = data.find(b"\r\n\r\n")
        if end < 0:
            self.buffer = data
            return
        at = data.find(b"content-length:", 0, end)
        if at < 0:
            at = data[:end].lower().find(b"content-length:")
            if at < 0:
                self.window.error("a response without Content-Length (chunked bodies unsupported)")
                self._finish()
                return
        line_end = data.find(b"\r\n", at, end + 2)
        total = end + 4 + int(data[at + 15 : line_end])
        if len(data) < total:
            self.buffer = data
            return
        now = time.perf_counter_ns()
        window = self.window
        if data[9:12] == b"200":
            if self.sent_at >= window.start and now <= window.end:
                window.latencies.append(now - self.sent_at)
        elif now <= window.end:
            window.error(data[:end].split(b"\r\n", 1)[0].decode("latin-1"))
        self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            if not self.window.stopping and time.perf_counter_ns() < self.window.end:
                self.window.error(f"connection lost: {exc or 'closed by the server'}")
            self.done.set_result(None)

    def _finish(self) -> None:
        if self.transport is not None:
            self.transport.close()
        if not self.done.done():
            self.done.set_result(None)


def http_request(host: str, path: str, headers: dict[str, str], body: bytes) -> bytes:
    """One HTTP/1.1 request, encoded once, sent as is for every request of the run."""
    lines = [f"POST {path} HTTP/1.1", f"host: {host}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"content-length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


Progress = Callable[[int, float], None]
"""Called about four times a second: (requests counted so far, seconds elapsed)."""


async def _watch(window: _Window, total_s: float, started: float, progress: Progress) -> None:
    while True:
        await asyncio.sleep(0.25)
        progress(len(window.latencies), min(time.perf_counter() - started, total_s))


async def run_http_level(
    host: str,
    port: int,
    request: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    progress: Progress | None = None,
    tls: ssl.SSLContext | None = None,
) -> LevelResult:
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    now = time.perf_counter_ns()
    start = now + int(warmup_s * 1e9)
    window = _Window(start, start + int(duration_s * 1e9))
    finished: list[asyncio.Future[None]] = []
    transports: list[asyncio.BaseTransport] = []
    watcher = (
        asyncio.ensure_future(_watch(window, warmup_s + duration_s, started, progress))
        if progress
        else None
    )
    try:
        for _ in range(concurrency):
            done: asyncio.Future[None] = loop.create_future()
            made, _ = await loop.create_connection(
                lambda done=done: _Connection(request, window, done),
                host,
                port,
                ssl=tls,
            )
            transports.append(made)
            finished.append(done)
        try:
            await asyncio.wait_for(asyncio.gather(*finished), warmup_s + duration_s + 30)
        except TimeoutError:
            window.error("the server stopped answering (no response 30 s after the end)")
    finally:
        window.stopping = True
        for opened in transports:
            opened.close()
        if watcher is not None:
            watcher.cancel()
    return summarize(concurrency, window.latencies, window.errors, duration_s, window.first_error)


async def run_grpc_level(
    target: str,
    method: str,
    request: bytes,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 0.0,
    progress: Progress | None = None,
    metadata: tuple[tuple[str, str], ...] = (),
    credentials: Any = None,
) -> LevelResult:
    import grpc
    import grpc.aio

    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    channel = (
        grpc.aio.secure_channel(target, credentials, options=options)
        if credentials is not None
        else grpc.aio.insecure_channel(target, options=options)
    )
    call = channel.unary_unary(method, None, None)  # bytes in, bytes out: no (de)serialization
    started = time.perf_counter()
    start = time.perf_counter_ns() + int(warmup_s * 1e9)
    window = _Window(start, start + int(duration_s * 1e9))

    async def worker() -> None:
        while True:
            sent = time.perf_counter_ns()
            if sent >= window.end:
                return
            try:
                await call(request, metadata=metadata)
            except grpc.RpcError as exc:
                if time.perf_counter_ns() <= window.end:
                    window.error(f"{exc.code().name}: {exc.details()}")
                continue
            now = time.perf_counter_ns()
            if sent >= window.start and now <= window.end:
                window.latencies.append(now - sent)

    watcher = (
        asyncio.ensure_future(_watch(window, warmup_s + duration_s, started, progress))
        if progress
        else None
    )
    try:
        await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        if watcher is not None:
            watcher.cancel()
        await channel.close(None)
    return summarize(concurrency, window.latencies, window.errors, duration_s, window.first_error)


def event_loop_runner() -> asyncio.Runner:
    """An asyncio runner on uvloop when installed (a cheaper loop: more requests per core)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.Runner()
    return asyncio.Runner(loop_factory=uvloop.new_event_loop)
