"""Start-up, model failures and request refusals on a real server (issue 11, fixes 2, 3, 9):
a READY model answers while others still load, a model that raises is logged once, duplicate
requested outputs are refused."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import EXAMPLES, serve

WAIT_S = 60.0

ECHO = """\
import numpy as np
import oipserve


class Echo(oipserve.Model):
    def infer(self, requests):
        return [oipserve.InferResponse({"y": r.inputs["x"] * 2}) for r in requests]
"""

GATED = """\
import pathlib
import time

import numpy as np
import oipserve

GATE = pathlib.Path({gate!r})


class Gated(oipserve.Model):
    def load(self, ctx):
        deadline = time.monotonic() + 120
        while not GATE.exists():  # the test opens the gate; bounded either way
            if time.monotonic() > deadline:
                raise RuntimeError("the gate never opened")
            time.sleep(0.02)

    def infer(self, requests):
        return [oipserve.InferResponse({{"y": r.inputs["x"] * 3}}) for r in requests]
"""

RAISING = """\
import oipserve


def explode_on_purpose(value):
    raise ValueError(f"kaboom-{value}")


class Raising(oipserve.Model):
    def infer(self, requests):
        explode_on_purpose(len(requests))
"""

BROKEN = """\
import oipserve


class Broken(oipserve.Model):
    def load(self, ctx):
        raise RuntimeError("broken-on-purpose")
"""

CONFIG = """\
backend = "python"
[[input]]
name = "x"
data_type = "TYPE_FP32"
dims = [-1]
[[output]]
name = "y"
data_type = "TYPE_FP32"
dims = [-1]
"""


def write(root: Path, name: str, source: str) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "1" / "model.py").write_text(source)
    (root / name / "model.toml").write_text(CONFIG)


def wait_until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.05)


def body(value: float = 1.0) -> dict[str, object]:
    return {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [value]}]}


def test_a_ready_model_answers_while_others_are_still_loading(tmp_path: Path) -> None:
    """Fix 3: models come up one by one (sorted by name): "a-ready" serves while "b-gated" is
    loading and "c-later" has not started; the server turns ready only once all are loaded."""
    gate = tmp_path / "gate"
    repo = tmp_path / "repo"
    write(repo, "a-ready", ECHO)
    write(repo, "b-gated", GATED.format(gate=str(gate)))
    write(repo, "c-later", ECHO)
    with (
        serve(repo, tmp_dir=tmp_path, wait_ready=False) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        wait_until(
            lambda: client.get("/v2/models/a-ready/ready").status_code == 200, "a-ready is READY"
        )
        assert client.get("/v2/health/ready").status_code == 503  # the server waits for all
        response = client.post("/v2/models/a-ready/infer", json=body(2.0))
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [4.0]
        triton = httpclient.InferenceServerClient(running.http_url)
        try:
            assert triton.is_model_ready("a-ready")
            assert not triton.is_server_ready()
        finally:
            triton.close()

        for name in ("b-gated", "c-later"):  # loading, or announced and not started yet
            response = client.post(f"/v2/models/{name}/infer", json=body())
            assert response.status_code == 503, response.text
            assert "LOADING" in response.json()["error"]
            ready = client.get(f"/v2/models/{name}/ready")
            assert ready.status_code == 503
            assert ready.json()["ready"] is False
            assert "LOADING" in ready.json()["error"]
        grpc_client = grpcclient.InferenceServerClient(running.grpc_url)
        try:
            inputs = [grpcclient.InferInput("x", [1], "FP32")]
            inputs[0].set_data_from_numpy(np.array([1.0], np.float32))
            with pytest.raises(InferenceServerException) as info:
                grpc_client.infer("b-gated", inputs)
            assert info.value.status() == "StatusCode.UNAVAILABLE"
            assert "LOADING" in info.value.message()
            assert grpc_client.infer("a-ready", inputs).as_numpy("y").tolist() == [2.0]
        finally:
            grpc_client.close()

        gate.touch()
        wait_until(lambda: client.get("/v2/health/ready").status_code == 200, "server ready")
        response = client.post("/v2/models/b-gated/infer", json=body(2.0))
        assert response.json()["outputs"][0]["data"] == [6.0]
        assert client.post("/v2/models/c-later/infer", json=body()).status_code == 200


def test_model_failures_are_logged_once(tmp_path: Path) -> None:
    """Fix 2: a model that raises is logged once per failed request at ERROR, with its traceback,
    model, version and request id; a start-up load failure is logged once."""
    repo = tmp_path / "repo"
    write(repo, "broken", BROKEN)
    write(repo, "raising", RAISING)
    with (
        serve(repo, "--log-level", "info", tmp_dir=tmp_path) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        request = {"id": "req-42", **body()}
        response = client.post("/v2/models/raising/infer", json=request)
        assert response.status_code == 500
        assert "kaboom-1" in response.json()["error"]

        def logged() -> bool:
            return "request id 'req-42'" in running.log()

        wait_until(logged, "the failure is logged")
        assert client.get("/v2/health/live").status_code == 200  # still serving
        log = running.log()
    failure_lines = [line for line in log.splitlines() if "request id 'req-42'" in line]
    assert len(failure_lines) == 1, log
    assert failure_lines[0].startswith("E")  # Triton's default format: level letter first
    assert "'raising'" in failure_lines[0]
    assert "version 1" in failure_lines[0]
    assert "Traceback" in log
    assert "explode_on_purpose" in log  # the model's own frame, from its traceback
    # the start-up failure: one log record (was three), with the model's traceback
    assert log.count("failed to load") == 1, log
    assert "model 'broken' version 1 failed to load" in log
    assert "model broken/1 is not ready" not in log  # the old third record


def test_duplicate_requested_outputs_are_refused(tmp_path: Path) -> None:
    """Fix 9: Triton refuses a request naming an output twice (INVALID_ARG, core's
    ``InferenceRequest::AddOriginalRequestedOutput``): 400 / INVALID_ARGUMENT."""
    with (
        serve(EXAMPLES, "--load-model", "simple", tmp_dir=tmp_path) as running,
        httpx.Client(base_url=running.base_url, timeout=10) as client,
    ):
        data = list(range(16))
        request = {
            "inputs": [
                {"name": name, "shape": [1, 16], "datatype": "INT32", "data": data}
                for name in ("INPUT0", "INPUT1")
            ],
            "outputs": [{"name": "OUTPUT0"}, {"name": "OUTPUT1"}, {"name": "OUTPUT0"}],
        }
        response = client.post("/v2/models/simple/infer", json=request)
        assert response.status_code == 400
        assert response.json() == {"error": "output 'OUTPUT0' already exists in request"}

        grpc_client = grpcclient.InferenceServerClient(running.grpc_url)
        try:
            inputs = []
            for name in ("INPUT0", "INPUT1"):
                tensor = grpcclient.InferInput(name, [1, 16], "INT32")
                tensor.set_data_from_numpy(np.arange(16, dtype=np.int32).reshape(1, 16))
                inputs.append(tensor)
            outputs = [grpcclient.InferRequestedOutput(n) for n in ("OUTPUT1", "OUTPUT1")]
            with pytest.raises(InferenceServerException) as info:
                grpc_client.infer("simple", inputs, outputs=outputs)
            assert info.value.status() == str(grpc.StatusCode.INVALID_ARGUMENT)
            assert "output 'OUTPUT1' already exists in request" in info.value.message()
            # the next request is answered normally
            result = grpc_client.infer("simple", inputs)
            assert result.as_numpy("OUTPUT0").tolist() == [list(range(0, 32, 2))]
        finally:
            grpc_client.close()
