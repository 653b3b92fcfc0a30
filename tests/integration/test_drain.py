"""Graceful drain (issue 13): SIGTERM under load on REST and gRPC loses no accepted request.

On SIGTERM the server turns not ready at once, keeps serving for ``--drain-grace-secs`` (every
HTTP response now says ``Connection: close``), then closes its listeners (new connections
refused, gRPC GOAWAY) and lets requests queued and running finish within ``--shutdown-timeout``.
Clients here run closed loops against a model that takes 0.2 s; every request either succeeds or
is refused before the server accepted it (connection refused, or gRPC's shutting-down refusal).
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from tests.integration.test_repository import write_model
from tests.serving import serve

INFER = b'{"inputs": [{"name": "x", "shape": [1], "datatype": "INT32", "data": [0]}]}'
GRACE_S = 2.0
REFUSALS = ("connecterror", "connection refused", "failed to connect", "shutting down")
"""What a request refused before the server accepted it says (never "disconnected": a request
the server dropped after accepting it is lost)."""


def test_sigterm_under_load_loses_no_accepted_request(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    slow = write_model(root, "slow")
    (slow / "model.toml").write_text(
        (slow / "model.toml").read_text() + '[parameters]\ndelay_s = "0.2"\n'
    )
    with serve(
        root,
        "--model-threads",
        "16",
        tmp_dir=tmp_path,
        env={"OIPSERVE_DRAIN_GRACE_SECS": str(GRACE_S), "OIPSERVE_SHUTDOWN_TIMEOUT_SECS": "10"},
    ) as server:
        stop = threading.Event()
        lock = threading.Lock()
        ok_before: list[str] = []
        ok_after: list[str] = []
        refused: list[str] = []
        lost: list[str] = []
        signalled: list[float] = []

        def record(kind: str, outcome: str, error: str = "") -> None:
            with lock:
                if outcome == "ok":
                    (ok_after if signalled else ok_before).append(kind)
                elif any(text in error.lower() for text in REFUSALS):
                    refused.append(f"{kind}: {error}")
                else:
                    lost.append(f"{kind}: {error}")

        def rest_worker() -> None:
            with httpx.Client(base_url=server.base_url, timeout=30) as client:
                while not stop.is_set():
                    try:
                        response = client.post("/v2/models/slow/infer", content=INFER)
                    except httpx.ConnectError as exc:
                        record("rest", "refused", f"ConnectError: {exc}")
                        return  # the listener is closed: nothing more will be accepted
                    except httpx.HTTPError as exc:
                        record("rest", "error", repr(exc))
                        return
                    if response.status_code == 200:
                        record("rest", "ok")
                    else:
                        record("rest", "error", f"HTTP {response.status_code} {response.text}")

        def grpc_worker() -> None:
            client = grpcclient.InferenceServerClient(server.grpc_url)
            inputs = [grpcclient.InferInput("x", [1], "INT32")]
            inputs[0].set_data_from_numpy(np.zeros(1, dtype=np.int32))
            try:
                while not stop.is_set():
                    try:
                        client.infer("slow", inputs, client_timeout=30)
                    except InferenceServerException as exc:
                        record("grpc", "error", f"{exc.status()}: {exc.message()}")
                        if any(text in str(exc.message()).lower() for text in REFUSALS):
                            return
                        continue
                    record("grpc", "ok")
            finally:
                client.close()

        threads = [threading.Thread(target=rest_worker) for _ in range(6)]
        threads += [threading.Thread(target=grpc_worker) for _ in range(3)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while len(ok_before) < 20 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(ok_before) >= 20, "the load never got going"

        signalled.append(time.monotonic())
        server.process.send_signal(signal.SIGTERM)
        # readiness turns false at once, while the server still answers (new connections too)
        not_ready_within = None
        while time.monotonic() - signalled[0] < GRACE_S / 2:
            response = httpx.get(f"{server.base_url}/v2/health/ready", timeout=5)
            if response.status_code == 503:
                not_ready_within = time.monotonic() - signalled[0]
                assert "shutting down" in response.json()["error"]
                break
            time.sleep(0.01)
        assert not_ready_within is not None and not_ready_within < 0.5
        live = httpx.get(f"{server.base_url}/v2/health/live", timeout=5)
        assert live.headers.get("connection") == "close"

        assert server.process.wait(timeout=30) == 0
        stopped_after = time.monotonic() - signalled[0]
        stop.set()
        for thread in threads:
            thread.join(30)
        assert not lost, lost
        assert {"rest", "grpc"} <= set(ok_after), "requests stopped being served at SIGTERM"
        assert len(ok_after) >= 10
        assert GRACE_S <= stopped_after < GRACE_S + 10
        log = server.log()
        assert "draining" in log
        assert "Traceback" not in log
