"""Start-up logs, SIGTERM / SIGINT stop the server cleanly, readiness while loading."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.serving import free_port, serve


def test_startup_logs_name_models_and_url(examples_repository: Path, tmp_path: Path) -> None:
    with serve(examples_repository, tmp_dir=tmp_path) as running:
        log = running.log()
        for name in ("simple", "identity", "iris"):
            assert f"model '{name}' version 1 is READY" in log
        assert f"http://127.0.0.1:{running.http_port}/v2" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(examples_repository: Path, tmp_path: Path, sig: int) -> None:
    with serve(examples_repository, tmp_dir=tmp_path) as running:
        assert httpx.get(f"{running.base_url}/v2/health/live").status_code == 200
        running.process.send_signal(sig)
        assert running.process.wait(timeout=20) == 0
        assert "stopped" in running.log()
        assert "Traceback" not in running.log()


def test_failed_model_reported_and_others_serve(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "bad" / "1").mkdir(parents=True)
    (repo / "bad" / "1" / "model.joblib").write_bytes(b"not a pickle")
    (repo / "good" / "1").mkdir(parents=True)
    (repo / "good" / "1" / "model.py").write_text(
        "import oipserve\n\n\nclass Echo(oipserve.Model):\n"
        "    def infer(self, requests):\n"
        "        return [oipserve.InferResponse(dict(r.inputs)) for r in requests]\n"
    )
    with serve(repo, tmp_dir=tmp_path) as running:
        ready = httpx.get(f"{running.base_url}/v2/health/ready")
        assert ready.status_code == 503
        assert "bad" in ready.json()["error"]
        assert httpx.get(f"{running.base_url}/v2/models/good/ready").status_code == 200
        assert httpx.get(f"{running.base_url}/v2/models/bad/ready").status_code == 503
        body = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
        response = httpx.post(f"{running.base_url}/v2/models/good/infer", json=body)
        assert response.status_code == 200
        assert "model 'bad' version 1 failed to load" in running.log()
        assert "cannot read model.joblib" in running.log()
    with serve(repo, "--strict-readiness", "false", tmp_dir=tmp_path) as running:
        assert httpx.get(f"{running.base_url}/v2/health/ready").status_code == 200


def test_module_entry_point_help() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "oipserve", "serve", "--help"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert "MODEL_REPOSITORY" in out


def test_port_in_use_is_a_clean_failure(examples_repository: Path, tmp_path: Path) -> None:
    with serve(examples_repository, tmp_dir=tmp_path) as running:
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "oipserve",
                "serve",
                str(examples_repository),
                "--host",
                "127.0.0.1",
                "--http-port",
                str(running.http_port),
                "--grpc-port",
                str(free_port()),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 1
    # StartupError, turned by the CLI into exit code 1 and one log line
    output = result.stderr + result.stdout
    assert output.count(f"could not listen on 127.0.0.1:{running.http_port}") == 1
    assert "Traceback" not in result.stderr + result.stdout


ASYNC_MODEL = '''
import asyncio

import numpy as np
import oipserve


class Scaler(oipserve.Model):
    """load, infer and unload are all coroutines; infer reads a parameter from model.toml."""

    async def load(self, ctx):
        await asyncio.sleep(0)
        self.factor = float(ctx.parameters["factor"])

    async def infer(self, requests):
        await asyncio.sleep(0)
        return [
            oipserve.InferResponse({"y": np.asarray(r.inputs["x"]) * self.factor},
                                   parameters={"seen": str(r.parameters.get("tag", ""))})
            for r in requests
        ]

    async def unload(self):
        await asyncio.sleep(0)
'''


def test_async_python_model(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "scaler" / "1").mkdir(parents=True)
    (repo / "scaler" / "model.toml").write_text('backend = "python"\n[parameters]\nfactor = "3"\n')
    (repo / "scaler" / "1" / "model.py").write_text(ASYNC_MODEL)
    with serve(repo, tmp_dir=tmp_path) as running:
        body = {
            "parameters": {"tag": "t1"},
            "inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 2.5]}],
        }
        response = httpx.post(f"{running.base_url}/v2/models/scaler/infer", json=body)
        assert response.status_code == 200, response.text
        assert response.json()["outputs"][0]["data"] == [3.0, 7.5]
        assert response.json()["parameters"] == {"seen": "t1"}
