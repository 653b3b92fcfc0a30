"""Every kind of bad REST input gets a clear error with the status of PROTOCOL.md §0, and the
server answers the next request normally, on the same keep-alive connection."""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.serving import EXAMPLES, RunningServer, serve

RAISING_MODEL = """
import numpy as np
import oipserve


class Raising(oipserve.Model):
    def infer(self, requests):
        results = []
        for request in requests:
            if float(np.asarray(request.inputs["INPUT0"]).ravel()[0]) < 0:
                results.append(ValueError("negative input is not allowed"))
            else:
                results.append(oipserve.InferResponse({"OUTPUT0": request.inputs["INPUT0"]}))
        return results
"""

CRASHING_MODEL = """
import oipserve


class Crashing(oipserve.Model):
    def infer(self, requests):
        raise RuntimeError("kaboom")
"""

BROKEN_MODEL = """
import oipserve

raise ImportError("this model cannot be imported")
"""

GOOD = {
    "inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [1] * 16},
    ]
}


def _python_model(root: Path, name: str, source: str, config: str = 'backend = "python"\n') -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "model.toml").write_text(config)
    (root / name / "1" / "model.py").write_text(source)


@pytest.fixture(scope="module")
def faulty_server(
    examples_repository: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("faulty-repo")
    shutil.copytree(EXAMPLES / "simple", root / "simple")
    _python_model(root, "raising", RAISING_MODEL)
    _python_model(root, "crashing", CRASHING_MODEL)
    _python_model(root, "broken", BROKEN_MODEL)
    with serve(
        root,
        "--http-max-request-mb",
        "1",
        tmp_dir=tmp_path_factory.mktemp("faulty-log"),
    ) as running:
        yield running


class Connection:
    """One keep-alive HTTP/1.1 connection; a request on a closed one fails the test."""

    def __init__(self, port: int) -> None:
        self._conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        self._conn.connect()
        self._socket = self._conn.sock

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        self._conn.request(method, path, body=body, headers=headers or {})
        response = self._conn.getresponse()
        data = response.read()
        assert self._conn.sock is self._socket, "the server closed the keep-alive connection"
        assert response.getheader("content-type") == "application/json"
        return response.status, json.loads(data) if data else {}

    def post_json(self, path: str, value: Any) -> tuple[int, dict[str, Any]]:
        return self.request("POST", path, json.dumps(value).encode())

    def close(self) -> None:
        self._conn.close()


@pytest.fixture
def conn(faulty_server: RunningServer) -> Iterator[Connection]:
    c = Connection(faulty_server.http_port)
    yield c
    c.close()


def assert_next_request_works(conn: Connection) -> None:
    status, body = conn.post_json("/v2/models/simple/infer", GOOD)
    assert status == 200, body
    assert body["outputs"][0]["data"] == [x + 1 for x in range(16)]


def _input(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "INPUT0",
        "shape": [1, 16],
        "datatype": "INT32",
        "data": [0] * 16,
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def _with_first_input(first: dict[str, Any]) -> dict[str, Any]:
    return {"inputs": [first, GOOD["inputs"][1]]}


MISSING = None


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [
        (b"{not json", 400, "malformed JSON"),
        (b"[1, 2, 3]", 400, "Expected `object`"),
        (b'"just a string"', 400, "Expected `object`"),
        (b"{}", 400, "inputs"),
        (b'{"inputs": []}', 400, "at least one input"),
        (json.dumps({"inputs": [_input(name=MISSING)]}).encode(), 400, "name"),
        (json.dumps({"inputs": [_input(shape=MISSING)]}).encode(), 400, "shape"),
        (json.dumps({"inputs": [_input(datatype=MISSING)]}).encode(), 400, "datatype"),
        (json.dumps(_with_first_input(_input(data=MISSING))).encode(), 400, "no 'data'"),
        (
            json.dumps(_with_first_input(_input(datatype="FLOAT99"))).encode(),
            400,
            "unknown datatype",
        ),
        (json.dumps(_with_first_input(_input(datatype="FP32"))).encode(), 400, "expects INT32"),
        (
            json.dumps(_with_first_input(_input(data=["a"] * 16, datatype="INT32"))).encode(),
            400,
            "cannot hold strings",
        ),
        (
            json.dumps(_with_first_input(_input(data=[1.5] * 16))).encode(),
            400,
            "non-integer",
        ),
        (json.dumps(_with_first_input(_input(data=[0] * 15))).encode(), 400, "needs 16 elements"),
        (json.dumps(_with_first_input(_input(shape=[1, -16]))).encode(), 400, "negative"),
        (
            json.dumps(_with_first_input(_input(shape=[2**40, 2**40]))).encode(),
            400,
            "too large",
        ),
        (
            # under --max-tensor-elements (over it: 413, tests/integration/test_limits.py)
            json.dumps(_with_first_input(_input(shape=[1, 2**23], data=[1]))).encode(),
            400,
            "needs 8388608 elements",
        ),
        (
            json.dumps(_with_first_input(_input(shape=[1, 99999999999999999999]))).encode(),
            400,
            "",
        ),
        (json.dumps(_with_first_input(_input(shape=[1, 8], data=[0] * 8))).encode(), 400, "shape"),
        (
            json.dumps(_with_first_input(_input(shape=[9, 16], data=[0] * 144))).encode(),
            400,
            "batch size 9",
        ),
        (json.dumps({**GOOD, "outputs": [{"name": "NOPE"}]}).encode(), 400, "NOPE"),
        (json.dumps({**GOOD, "parameters": {"x": [1]}}).encode(), 400, "parameters"),
        (json.dumps({**GOOD, "parameters": {"timeout": -5}}).encode(), 400, "timeout"),
        (json.dumps({"inputs": [GOOD["inputs"][0]]}).encode(), 400, "INPUT1"),
        (json.dumps({"inputs": [*GOOD["inputs"], _input(name="INPUT9")]}).encode(), 400, "INPUT9"),
    ],
)
def test_bad_request_bodies(conn: Connection, body: bytes, status: int, message: str) -> None:
    got_status, got = conn.request("POST", "/v2/models/simple/infer", body)
    assert got_status == status, got
    assert message in got["error"]
    assert_next_request_works(conn)


def test_value_out_of_range_for_uint8(conn: Connection) -> None:
    # "raising" declares no inputs, so only the datatype's own range applies
    status, body = conn.post_json(
        "/v2/models/raising/infer",
        {"inputs": [{"name": "INPUT0", "shape": [2], "datatype": "UINT8", "data": [1, 300]}]},
    )
    assert status == 400
    assert "300" in body["error"]
    assert_next_request_works(conn)


def test_unknown_model_version_and_output(conn: Connection) -> None:
    status, body = conn.post_json("/v2/models/ghost/infer", GOOD)
    assert status == 404
    assert body["error"].startswith("Request for unknown model: 'ghost'")
    status, body = conn.post_json("/v2/models/simple/versions/2/infer", GOOD)
    assert status == 404
    status, body = conn.post_json("/v2/models/simple/infer", {**GOOD, "outputs": [{"name": "X"}]})
    assert status == 400
    assert_next_request_works(conn)


def test_model_that_raises_fails_only_that_request(conn: Connection) -> None:
    bad = {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [-1.0]}]}
    status, body = conn.post_json("/v2/models/raising/infer", bad)
    assert status == 500
    assert "raising" in body["error"]
    assert "negative input is not allowed" in body["error"]
    ok = {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [2.0]}]}
    status, body = conn.post_json("/v2/models/raising/infer", ok)
    assert status == 200
    assert body["outputs"][0]["data"] == [2.0]
    assert_next_request_works(conn)


def test_model_whose_infer_crashes(conn: Connection) -> None:
    request = {"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    for _ in range(3):
        status, body = conn.post_json("/v2/models/crashing/infer", request)
        assert status == 500
        assert "crashing" in body["error"]
        assert "kaboom" in body["error"]
    assert_next_request_works(conn)


def test_model_that_failed_to_load(conn: Connection, faulty_server: RunningServer) -> None:
    # fix 7: not ready with the load error in the body; inference 503 with the load error
    status, body = conn.request("GET", "/v2/models/broken/ready")
    assert status == 503
    assert body["name"] == "broken"
    assert body["ready"] is False
    assert "UNAVAILABLE" in body["error"]
    assert "cannot be imported" in body["error"]
    status, body = conn.post_json("/v2/models/broken/infer", GOOD)
    assert status == 503
    assert "broken" in body["error"]
    assert "cannot be imported" in body["error"]
    # strict readiness: a model failed at start-up, so the server says not ready (and why)
    status, body = conn.request("GET", "/v2/health/ready")
    assert status == 503
    assert "broken" in body["error"]
    assert "cannot be imported" in faulty_server.log()
    assert_next_request_works(conn)


def test_oversized_body_is_refused_from_content_length(faulty_server: RunningServer) -> None:
    """A 100 MB Content-Length is answered with 413 before a byte of the body is sent."""
    with socket.create_connection(("127.0.0.1", faulty_server.http_port), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/simple/infer HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100000000\r\n\r\n{"
        )
        sock.settimeout(10)
        data = b""
        deadline = time.monotonic() + 10
        # headers and body may come in separate packets: read until the body is in too
        while b"limit" not in data and time.monotonic() < deadline:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    head = data.split(b"\r\n", 1)[0]
    assert b"413" in head
    assert b"limit" in data


def test_oversized_body_sent_whole(conn: Connection) -> None:
    payload = json.dumps(
        {
            "inputs": [
                {"name": "INPUT0", "shape": [400000], "datatype": "FP32", "data": [1.5] * 400000}
            ]
        }
    ).encode()
    assert len(payload) > 1024 * 1024
    status, body = conn.request("POST", "/v2/models/raising/infer", payload)
    assert status == 413
    assert "exceeds the limit" in body["error"]


def test_oversized_chunked_body(faulty_server: RunningServer) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"inputs": [{"name": "INPUT0", "shape": [1], "datatype": "FP32", "data": [1'
        for _ in range(40):
            yield b"0" * 65536
        yield b"]}]}"

    with httpx.Client(base_url=faulty_server.base_url) as client:
        response = client.post("/v2/models/raising/infer", content=chunks())
        assert response.status_code == 413
        assert client.post("/v2/models/simple/infer", json=GOOD).status_code == 200
