"""``--access-log`` on a real server: one line per request on the ``oipserve.access`` logger."""

from __future__ import annotations

import re
import time
from pathlib import Path

import httpx

from tests.serving import RunningServer, serve


def _wait_for(server: RunningServer, pattern: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = server.log()
        if re.search(pattern, log):
            return log
        time.sleep(0.05)
    raise AssertionError(f"{pattern!r} not in the log:\n{server.log()}")


def test_access_log_lines(examples_repository: Path, tmp_path: Path) -> None:
    with serve(examples_repository, "--access-log", tmp_dir=tmp_path) as server:
        row = {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
        with httpx.Client(base_url=server.base_url) as client:
            reply = client.post("/v2/models/iris/infer", json={"inputs": [row]})
            assert reply.status_code == 200
            assert client.get("/v2/models/nothing/ready").status_code == 404
        size = reply.headers["content-length"]  # as sent (httpx asks for gzip)
        # the default log format JSON-escapes each message, as Triton's does: \" around the request
        _wait_for(server, rf'\\"POST /v2/models/iris/infer\\" 200 {size}B [\d.]+ms model=iris')
        _wait_for(server, r'\\"GET /v2/models/nothing/ready\\" 404 \d+B [\d.]+ms model=nothing')


def test_no_access_log_by_default(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        assert client.get("/v2/health/live").status_code == 200
        assert client.get("/v2/models/nothing").status_code == 404
    log = server.log()
    assert "/v2/health/live" not in log
    assert "/v2/models/nothing" not in log
