"""Start a real ``oipserve serve`` process on free loopback ports, for integration tests."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples" / "models"
STARTUP_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    http_port: int
    grpc_port: int
    log_path: Path

    @property
    def http_url(self) -> str:
        return f"127.0.0.1:{self.http_port}"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def _wait_until_listening(
    server: RunningServer, wait_ready: bool, tls: ssl.SSLContext | None = None
) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    base_url = server.base_url if tls is None else f"https://127.0.0.1:{server.http_port}"
    verify: ssl.SSLContext | bool = tls if tls is not None else True
    with httpx.Client(base_url=base_url, timeout=2.0, verify=verify) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{server.log()}")
            try:
                response = client.get("/v2/health/ready")
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            if not wait_ready or response.status_code == 200:
                return
            if response.status_code == 503 and "failed" in response.text:
                return  # start-up finished with failures: the test decides
            time.sleep(0.05)
    raise RuntimeError(f"server not ready within {STARTUP_TIMEOUT_S}s:\n{server.log()}")


@contextmanager
def serve(
    repository: Path,
    *extra_args: str,
    tmp_dir: Path,
    wait_ready: bool = True,
    env: dict[str, str] | None = None,
) -> Iterator[RunningServer]:
    """Run ``oipserve serve repository`` until the block ends; stop it with SIGTERM. ``env`` adds
    to the environment."""
    http_port, grpc_port = free_port(), free_port()
    command = [
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
        *extra_args,
    ]
    with run_command(
        command, http_port, grpc_port, tmp_dir=tmp_dir, wait_ready=wait_ready, env=env
    ) as running:
        yield running


@contextmanager
def run_command(
    command: list[str],
    http_port: int,
    grpc_port: int,
    *,
    tmp_dir: Path,
    env: dict[str, str] | None = None,
    wait_ready: bool = True,
    tls: ssl.SSLContext | None = None,
) -> Iterator[RunningServer]:
    """Run a server ``command`` that listens on ``http_port`` / ``grpc_port`` (as the command
    itself says) until the block ends; stop it with SIGTERM. ``env`` adds to the environment;
    ``tls``: the server speaks HTTPS, probed with this client context."""
    log_path = tmp_dir / f"server-{http_port}.log"
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "COLUMNS": "200",
        # tests stop servers with SIGTERM: no drain grace period unless a test asks for one
        "OIPSERVE_DRAIN_GRACE_SECS": "0",
        **(env or {}),
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=full_env)
    server = RunningServer(process, http_port, grpc_port, log_path)
    try:
        _wait_until_listening(server, wait_ready, tls)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
