"""Start a server pinned to a core in its own process group, wait until it is ready, measure its
memory, stop it and every process it started."""

from __future__ import annotations

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks._harness import free_port, server_pinning

POLL_S = 0.01


@dataclass(frozen=True)
class ServerSpec:
    """How to start one server: ``command(http_port, grpc_port)`` builds its argv."""

    label: str
    command: Callable[[int, int], list[str]]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    http: bool = True  # ready when GET /v2/health/ready answers 200
    grpc: bool = True  # and when the gRPC port accepts connections
    timeout_s: float = 90.0


@dataclass
class Running:
    label: str
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    ready_s: float
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"


class ServerFailed(RuntimeError):
    pass


def _http_ready(port: int) -> bool:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        connection.request("GET", "/v2/health/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@contextlib.contextmanager
def running(spec: ServerSpec, log: Path, core: str | None = "0") -> Iterator[Running]:
    """Run ``spec`` pinned to ``core``; yields once ready (``ready_s``: from spawn to ready)."""
    http_port, grpc_port = free_port(), free_port()
    command = [*server_pinning(core), *spec.command(http_port, grpc_port)]
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            command,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **spec.env},
            cwd=spec.cwd,
            start_new_session=True,  # its own process group: stop() ends every process it made
        )
    try:
        ready_s = _wait_ready(spec, process, http_port, grpc_port, started, log)
        yield Running(spec.label, process, http_port, grpc_port, ready_s, log)
    finally:
        stop(process)


def _wait_ready(
    spec: ServerSpec,
    process: subprocess.Popen[bytes],
    http_port: int,
    grpc_port: int,
    started: float,
    log: Path,
) -> float:
    deadline = started + spec.timeout_s
    ready_s: float | None = None
    while time.perf_counter() < deadline:
        if process.poll() is not None:
            raise ServerFailed(
                f"{spec.label} exited with {process.returncode} during start-up:\n{log_tail(log)}"
            )
        if ready_s is None and (not spec.http or _http_ready(http_port)):
            ready_s = time.perf_counter() - started
        if ready_s is not None and (not spec.grpc or _port_open(grpc_port)):
            if not spec.http:
                ready_s = time.perf_counter() - started
            return ready_s
        time.sleep(POLL_S)
    raise ServerFailed(f"{spec.label} not ready after {spec.timeout_s:.0f}s:\n{log_tail(log)}")


def stop(process: subprocess.Popen[bytes], timeout_s: float = 30) -> None:
    """SIGTERM the process group, wait for all of it to go, SIGKILL what is left."""
    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        process.poll()
        try:
            os.killpg(group, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    else:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait()


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants, from the parent ids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _kib(path: Path, key: str) -> int:
    try:
        for line in path.read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class Memory:
    processes: int
    rss_mib: float  # the sum of every process's resident set (shared pages counted in each)
    pss_mib: float  # the proportional set size: shared pages split between their processes


def memory(root: int) -> Memory:
    pids = process_tree(root)
    rss = sum(_kib(Path(f"/proc/{pid}/status"), "VmRSS:") for pid in pids)
    pss = sum(_kib(Path(f"/proc/{pid}/smaps_rollup"), "Pss:") for pid in pids)
    return Memory(len(pids), rss / 1024, pss / 1024)
