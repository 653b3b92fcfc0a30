"""Fix 6: port 0 logs the port actually bound; each transport can be switched off with Triton's
spelling (``--allow-grpc=false``, ``--allow-http=false``); both off, or a port out of range, is a
usage error before anything starts."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
import tritonclient.grpc as grpcclient

from tests.serving import EXAMPLES, free_port

DEADLINE_S = 60.0
REST_LINE = re.compile(r"REST API at http://127\.0\.0\.1:(\d+)/v2")
GRPC_LINE = re.compile(r"gRPC API at 127\.0\.0\.1:(\d+)")


@contextmanager
def _oipserve(tmp_path: Path, *args: str) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    log_path = tmp_path / "server.log"
    env = dict(os.environ, PYTHONUNBUFFERED="1", COLUMNS="200")
    command = [sys.executable, "-m", "oipserve", "serve", str(EXAMPLES), "--host", "127.0.0.1"]
    with log_path.open("wb") as log:
        process = subprocess.Popen([*command, *args], stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        yield process, log_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_for_log(process: subprocess.Popen[bytes], log_path: Path, text: str) -> str:
    """The log once it holds ``text`` (the start-up summary), polled with a bound."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        log = log_path.read_text(errors="replace")
        if text in log:
            return log
        if process.poll() is not None:
            raise AssertionError(f"server exited early:\n{log}")
        time.sleep(0.05)
    raise AssertionError(f"no '{text}' within {DEADLINE_S}s:\n{log_path.read_text()}")


def _refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_port_zero_logs_the_ports_bound(tmp_path: Path) -> None:
    with _oipserve(tmp_path, "--http-port", "0", "--grpc-port=0") as (process, log_path):
        log = _wait_for_log(process, log_path, "model control mode")
        rest, grpc_ = REST_LINE.search(log), GRPC_LINE.search(log)
        assert rest and grpc_, log
        http_port, grpc_port = int(rest[1]), int(grpc_[1])
        assert 0 not in (http_port, grpc_port)
        assert http_port != grpc_port
        response = httpx.get(f"http://127.0.0.1:{http_port}/v2/health/ready", timeout=5)
        assert response.json() == {"ready": True}
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_port}")
        try:
            assert client.is_server_ready()
            assert client.is_model_ready("iris")
        finally:
            client.close()


def test_allow_grpc_false_serves_rest_only(tmp_path: Path) -> None:
    grpc_port = free_port()
    args = ("--http-port", "0", "--grpc-port", str(grpc_port), "--allow-grpc=false")
    with _oipserve(tmp_path, *args) as (process, log_path):
        log = _wait_for_log(process, log_path, "model control mode")
        assert "gRPC API off (--allow-grpc=false)" in log
        assert not GRPC_LINE.search(log)
        rest = REST_LINE.search(log)
        assert rest, log
        response = httpx.get(f"http://127.0.0.1:{rest[1]}/v2/health/ready", timeout=5)
        assert response.status_code == 200
        assert _refuses_connections(grpc_port)


def test_allow_http_false_serves_grpc_only(tmp_path: Path) -> None:
    http_port = free_port()
    args = ("--http-port", str(http_port), "--grpc-port", "0", "--allow-http=false")
    with _oipserve(tmp_path, *args) as (process, log_path):
        log = _wait_for_log(process, log_path, "model control mode")
        assert "REST API off (--allow-http=false)" in log
        grpc_ = GRPC_LINE.search(log)
        assert grpc_, log
        client = grpcclient.InferenceServerClient(f"127.0.0.1:{grpc_[1]}")
        try:
            assert client.is_server_ready()
        finally:
            client.close()
        assert _refuses_connections(http_port)
        process.terminate()  # SIGTERM still stops a server without an HTTP listener
        assert process.wait(timeout=15) == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--grpc-port", "70000"),
            "Invalid value for '--grpc-port' / '--grpc_port': 70000 is not in the range",
        ),
        (
            ("--http-port=-1",),
            "Invalid value for '--http-port' / '--http_port': -1 is not in the range",
        ),
        (
            ("--allow-http=false", "--allow-grpc=false"),
            "allow_http and allow_grpc are both false: nothing would be served",
        ),
    ],
)
def test_refused_before_starting(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    command = [sys.executable, "-m", "oipserve", "serve", str(EXAMPLES), *args]
    env = dict(os.environ, COLUMNS="200")
    result = subprocess.run(
        command, check=False, capture_output=True, text=True, timeout=60, env=env
    )
    assert result.returncode == 2
    assert message in result.stderr
