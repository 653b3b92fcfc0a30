"""Shared pieces of the benchmark scripts: start a pinned server, run wrk, parse its output."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"


@dataclass
class WrkResult:
    concurrency: int
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def taskset(core: str | None) -> list[str]:
    if core is None or shutil.which("taskset") is None:
        return []
    return ["taskset", "-c", core]


def server_pinning(core: str | None) -> list[str]:
    """``taskset`` for a server, and with ``BENCH_REALTIME=1`` also ``chrt -f 10``.

    On a machine shared with other work, a server that sleeps between calls waits for the
    scheduler to preempt whatever else runs on its core each time a request arrives (milliseconds
    under load), so an efficient server that is idle most of the time measures slower than a busy
    one. A real-time priority (SCHED_FIFO) makes every wake-up immediate; the server only runs
    while it has work, and the kernel's real-time throttling keeps 5% of the core for the rest.
    Needs root (or CAP_SYS_NICE).
    """
    prefix = taskset(core)
    if os.environ.get("BENCH_REALTIME") == "1" and shutil.which("chrt") is not None:
        prefix = ["chrt", "-f", "10", *prefix]
    return prefix


@contextmanager
def oipserve(
    repository: Path, *args: str, core: str | None = "0", env: dict[str, str] | None = None
) -> Iterator[str]:
    """Run ``oipserve serve`` pinned to ``core``; yields its base URL once ready."""
    http_port, grpc_port = free_port(), free_port()
    command = [
        *server_pinning(core),
        sys.executable,
        "-m",
        "oipserve",
        "serve",
        str(repository),
        "--host",
        "127.0.0.1",
        "--http-port",
        str(http_port),
        "--grpc-port",
        str(grpc_port),
        "--log-level",
        "warning",
        *args,
    ]
    url = f"http://127.0.0.1:{http_port}"
    with tempfile.NamedTemporaryFile(prefix="oipserve-bench-", suffix=".log") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        try:
            wait_ready(url, process)
            yield url
        finally:
            process.terminate()
            process.wait(timeout=30)


def wait_ready(
    url: str, process: subprocess.Popen[bytes] | None = None, timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} not ready after {timeout}s")


_LUA = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
{extra_headers}
local f = io.open("{body_path}", "rb")
wrk.body = f:read("*all")
f:close()
"""


def _to_ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value)
    if not match:
        raise ValueError(value)
    number, unit = float(match.group(1)), match.group(2)
    return number * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: int,
    *,
    headers: dict[str, str] | None = None,
    core: str | None = "1",
    threads: int = 1,
) -> WrkResult:
    """POST ``body`` to ``url`` with wrk at ``concurrency`` connections."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.bin"
        body_path.write_bytes(body)
        extra = "\n".join(f'wrk.headers["{k}"] = "{v}"' for k, v in (headers or {}).items())
        script = Path(tmp) / "post.lua"
        script.write_text(_LUA.format(body_path=body_path, extra_headers=extra))
        out = subprocess.run(
            [
                *taskset(core),
                "wrk",
                "-t",
                str(threads),
                "-c",
                str(concurrency),
                "-d",
                f"{duration_s}s",
                "--latency",
                "-s",
                str(script),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = _to_ms(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    p99 = _to_ms(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: (.*)", out)
    errors = int(non2xx.group(1)) if non2xx else 0
    if socket_errors:
        errors += sum(int(n) for n in re.findall(r"\d+", socket_errors.group(1)))
    return WrkResult(concurrency, rps, p50, p99, errors)


def markdown_table(title: str, rows: list[tuple[str, WrkResult]]) -> str:
    lines = [
        f"### {title}",
        "",
        "| case | concurrency | req/s | p50 ms | p99 ms | errors |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for case, r in rows:
        lines.append(
            f"| {case} | {r.concurrency} | {r.requests_per_s:,.0f} | {r.p50_ms:.2f} | "
            f"{r.p99_ms:.2f} | {r.errors} |"
        )
    return "\n".join(lines)


@dataclass
class H2loadResult:
    concurrency: int
    requests_per_s: float
    mean_ms: float
    errors: int


def run_h2load(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: int,
    *,
    headers: dict[str, str] | None = None,
    core: str | None = "1",
    warm_up_s: int = 0,
    streams_per_connection: int = 1,
    max_requests_per_connection: int | None = None,
) -> H2loadResult:
    """POST ``body`` to ``url`` over HTTP/2 (h2c) with h2load: ``concurrency`` connections.

    For gRPC pass the framed message (5-byte prefix + serialized protobuf) as ``body`` and
    ``{"content-type": "application/grpc", "te": "trailers"}`` as ``headers``. h2load counts HTTP
    statuses only, so a gRPC error (HTTP 200 with a non-zero grpc-status trailer) is not seen
    here: check one response with a gRPC client first.

    ``max_requests_per_connection``: h2load does not reconnect after a server's ``GOAWAY`` (it
    just stops using that connection), so against a server that recycles its connections (oipserve's
    gRPC server, see ``h2load_request_budget``) the run sends a fixed number of requests instead of
    running for ``duration_s``: as many as a 1-second probe says fit into ``duration_s``, at most
    this many per connection.
    """
    if max_requests_per_connection is not None:
        total = h2load_request_budget(
            url, body, concurrency, duration_s, headers or {}, core, max_requests_per_connection
        )
        timing = ["-n", str(total)]
        return h2load_run(url, body, concurrency, timing, headers, core, streams_per_connection)
    timing = ["-D", str(duration_s), *(["--warm-up-time", str(warm_up_s)] if warm_up_s else [])]
    return h2load_run(url, body, concurrency, timing, headers, core, streams_per_connection)


def h2load_request_budget(
    url: str,
    body: bytes,
    concurrency: int,
    duration_s: int,
    headers: dict[str, str],
    core: str | None,
    max_requests_per_connection: int,
) -> int:
    """Requests for a ``-n`` run of about ``duration_s``, at most the per-connection cap each."""
    probe = h2load_run(url, body, concurrency, ["-D", "1"], headers, core, 1)
    per_connection = int(probe.requests_per_s * duration_s / concurrency)
    return concurrency * max(1, min(per_connection, max_requests_per_connection))


def h2load_run(
    url: str,
    body: bytes,
    concurrency: int,
    timing: list[str],
    headers: dict[str, str] | None,
    core: str | None,
    streams_per_connection: int = 1,
) -> H2loadResult:
    """One h2load run; ``timing`` is ``["-D", seconds]`` or ``["-n", requests]`` (and options)."""
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.bin"
        body_path.write_bytes(body)
        header_args = [arg for k, v in (headers or {}).items() for arg in ("-H", f"{k}: {v}")]
        out = subprocess.run(
            [
                *taskset(core),
                "h2load",
                "-c",
                str(concurrency),
                "-m",
                str(streams_per_connection),
                *timing,
                *header_args,
                "-d",
                str(body_path),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    rps = float(re.search(r"finished in \S+, ([\d.]+) req/s", out).group(1))  # type: ignore[union-attr]
    # "failed" counts every request that did not succeed: non-2xx statuses, errors and timeouts
    failed = re.search(r"\d+ succeeded, (\d+) failed", out)
    mean = re.search(r"time for request:\s+\S+\s+\S+\s+(\S+)", out)
    errors = int(failed.group(1)) if failed else 0
    mean_ms = _to_ms(mean.group(1)) if mean else float("nan")
    return H2loadResult(concurrency, rps, mean_ms, errors)
