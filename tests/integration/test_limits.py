"""Connection and request limits on a real server (issue 13; PROTOCOL.md §0): header size and
count (431), the header and body deadlines (408; a slowloris client and one that stops mid-body,
over raw sockets with bounded loops), the connection limit (closed at once), the in-flight limit
(503 with Retry-After), tensor elements and bytes (413 / RESOURCE_EXHAUSTED), JSON nesting (400);
after each refusal the next request is answered normally."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.integration.test_repository import write_model
from tests.serving import RunningServer, serve

TIMEOUT_S = 30.0
INFER = json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [0]}]})


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("limits-repo")
    write_model(root, "plain")
    slow = write_model(root, "slow")
    (slow / "model.toml").write_text(
        (slow / "model.toml").read_text() + '[parameters]\ndelay_s = "1.0"\n'
    )
    with serve(
        root,
        "--http-header-timeout-secs", "1",
        "--http-body-timeout-secs", "1",
        "--http-max-header-kb", "4",
        "--http-max-headers", "20",
        "--max-connections", "30",
        "--max-in-flight", "4",
        "--max-tensor-elements", "1000",
        "--grpc-max-concurrent-streams", "2",
        "--http-keep-alive-secs", "1",
        "--model-threads", "8",
        tmp_dir=tmp_path_factory.mktemp("limits"),
    ) as running:  # fmt: skip
        yield running


def _connect(server: RunningServer) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.http_port), timeout=TIMEOUT_S)


def _read_all(sock: socket.socket, limit_s: float = 10.0) -> bytes:
    """Everything the server sends until it closes (bounded by ``limit_s``)."""
    sock.settimeout(limit_s)
    chunks = []
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except (ConnectionResetError, TimeoutError):
            break
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks)


def _healthy(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/v2/models/plain/infer", content=INFER, timeout=TIMEOUT_S
    )
    assert response.status_code == 200, response.text


def test_too_many_headers_is_431(server: RunningServer) -> None:
    headers = {f"x-h{i}": "v" for i in range(30)}
    response = httpx.get(f"{server.base_url}/v2/health/live", headers=headers)
    assert response.status_code == 431
    assert "request headers too large" in response.json()["error"]
    _healthy(server)


def test_headers_too_large_is_431(server: RunningServer) -> None:
    response = httpx.get(f"{server.base_url}/v2/health/live", headers={"x-big": "a" * 8000})
    assert response.status_code == 431
    # one endless header, sent without ever ending: refused as it grows
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Endless: ")
        answer = b""
        for _ in range(100):  # bounded: 100 x 1 KiB, well past the 4 KiB limit
            try:
                sock.sendall(b"a" * 1024)
            except (BrokenPipeError, ConnectionResetError):
                break
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431"), answer[:100]
    _healthy(server)


def test_slowloris_headers_get_408(server: RunningServer) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n")
        closed = False
        for i in range(40):  # bounded: one header line every 0.1 s, never the end of headers
            try:
                sock.sendall(f"X-Slow-{i}: 1\r\n".encode())
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
            time.sleep(0.1)
        answer = _read_all(sock)
        elapsed = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), (closed, answer[:200])
    assert b"did not arrive within 1s" in answer
    assert elapsed < 8
    _healthy(server)


def test_a_silent_connection_is_closed(server: RunningServer) -> None:
    with _connect(server) as sock:
        started = time.monotonic()
        assert _read_all(sock, limit_s=10) == b""  # closed by the server, no response
        assert time.monotonic() - started < 8


def test_an_idle_keep_alive_connection_is_closed(server: RunningServer) -> None:
    with _connect(server) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _read_response(sock).startswith(b"HTTP/1.1 200")
        started = time.monotonic()
        assert _read_all(sock, limit_s=10) == b""  # closed after --http-keep-alive-secs 1
        assert 0.5 < time.monotonic() - started < 8


def test_a_body_that_stops_halfway_gets_408(server: RunningServer) -> None:
    with _connect(server) as sock:
        sock.sendall(
            b"POST /v2/models/plain/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000\r\n\r\n" + INFER.encode()[:20]
        )
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"body did not arrive" in answer
    _healthy(server)


def test_the_connection_limit_closes_new_connections(server: RunningServer) -> None:
    held = []
    try:
        for _ in range(30):
            sock = _connect(server)
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_response(sock).startswith(b"HTTP/1.1 200")
            held.append(sock)  # kept alive
        extra = _connect(server)
        with extra:
            extra.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _read_all(extra, limit_s=5) == b""  # closed at once, no answer
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:  # the server notices the closed connections
        try:
            _healthy(server)
            return
        except (httpx.TransportError, AssertionError):
            time.sleep(0.05)
    _healthy(server)


def _read_response(sock: socket.socket) -> bytes:
    sock.settimeout(TIMEOUT_S)
    data = b""
    for _ in range(100):
        data += sock.recv(65536)
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length")
            )
            if len(body) >= length:
                return data
    return data


def test_in_flight_limit_is_503_with_retry_after(server: RunningServer) -> None:
    url = f"{server.base_url}/v2/models/slow/infer"
    statuses: list[int] = []
    retry_after: list[str] = []
    lock = threading.Lock()

    def call() -> None:
        response = httpx.post(url, content=INFER, timeout=TIMEOUT_S)
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 503:
                retry_after.append(response.headers.get("retry-after", ""))

    threads = [threading.Thread(target=call) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TIMEOUT_S)
    assert statuses.count(200) >= 4
    assert 503 in statuses, statuses
    assert set(retry_after) == {"1"}
    # health answers while the server is full
    assert httpx.get(f"{server.base_url}/v2/health/ready").status_code == 200
    _healthy(server)


def test_tensor_elements_over_the_limit_are_413(server: RunningServer) -> None:
    body = {"inputs": [{"name": "x", "shape": [2000], "datatype": "INT32", "data": [0] * 2000}]}
    response = httpx.post(f"{server.base_url}/v2/models/plain/infer", json=body)
    assert response.status_code == 413
    assert "--max-tensor-elements" in response.json()["error"]
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        inputs = [grpcclient.InferInput("x", [2000], "INT32")]
        inputs[0].set_data_from_numpy(np.zeros(2000, dtype=np.int32))
        with pytest.raises(InferenceServerException) as info:
            client.infer("plain", inputs)
        assert info.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    finally:
        client.close()
    _healthy(server)


def test_deep_json_is_400(server: RunningServer) -> None:
    response = httpx.post(
        f"{server.base_url}/v2/repository/index", content=b"[" * 5000 + b"]" * 5000
    )
    assert response.status_code == 400
    _healthy(server)


def test_grpc_concurrent_calls_per_connection_are_bounded(server: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)  # one channel, one connection
    inputs = [grpcclient.InferInput("x", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.zeros(1, dtype=np.int32))
    outcomes: list[str] = []
    done = threading.Event()

    def callback(result: object, error: InferenceServerException | None) -> None:
        outcomes.append("ok" if error is None else str(error.status()))
        if len(outcomes) == 3:
            done.set()

    try:
        for _ in range(3):
            client.async_infer("slow", inputs, callback)
        assert done.wait(TIMEOUT_S)
    finally:
        client.close()
    assert outcomes.count("ok") == 2, outcomes
    assert outcomes.count("StatusCode.RESOURCE_EXHAUSTED") == 1, outcomes
    _healthy(server)
