"""Process instances through a real server and Triton's clients: a killed instance fails only what
it held and comes back, the model stays READY; a model that crashes on every request ends
UNAVAILABLE with the reason while the other models serve; a corrupt LightGBM file fails to load
with the reason."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.serving import serve

MODEL = """\
import os
import numpy as np
import oipserve


class Model(oipserve.Model):
    def infer(self, requests):
        results = []
        for r in requests:
            x = r.inputs["x"]
            if x.flat[0] < 0:
                os._exit(7)
            results.append(oipserve.InferResponse({
                "y": x * 2, "pid": np.full((x.shape[0], 1), os.getpid(), dtype=np.int64)
            }))
        return results
"""

CONFIG = """\
backend = "python"
max_batch_size = 0
[[input]]
name = "x"
data_type = "TYPE_FP32"
dims = [-1, 20]
[[output]]
name = "y"
data_type = "TYPE_FP32"
dims = [-1, 20]
[[output]]
name = "pid"
data_type = "TYPE_INT64"
dims = [-1, 1]
[[instance_group]]
count = {count}
[parameters]
execution = "process"
"""


def write(root: Path, name: str, count: int) -> None:
    folder = root / name / "1"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(MODEL)
    (root / name / "model.toml").write_text(CONFIG.format(count=count))


def http_infer(client: httpclient.InferenceServerClient, model: str, x: np.ndarray) -> np.ndarray:
    tensor = httpclient.InferInput("x", list(x.shape), "FP32")
    tensor.set_data_from_numpy(x, binary_data=True)
    result = client.infer(model, [tensor])
    np.testing.assert_array_equal(result.as_numpy("y"), x * 2)
    pids: np.ndarray = result.as_numpy("pid")
    return pids


def wait_until(condition: Callable[[], bool], what: str, limit_s: float = 60) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        assert time.monotonic() < deadline, f"not {what} within {limit_s} s"
        time.sleep(0.05)


def test_a_killed_instance_fails_only_what_it_held_and_is_restarted(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "pm", count=2)
    with serve(root, tmp_dir=tmp_path) as server:
        client = httpclient.InferenceServerClient(server.http_url, concurrency=4)
        grpc = grpcclient.InferenceServerClient(server.grpc_url)
        batch = np.random.default_rng(1).random((1000, 20), dtype=np.float32)
        pids = set()
        for _ in range(20):
            pids.add(int(http_infer(client, "pm", batch)[0, 0]))
            if len(pids) == 2:
                break
        assert len(pids) == 2 and server.process.pid not in pids
        gtensor = grpcclient.InferInput("x", [2, 20], "FP32")
        gtensor.set_data_from_numpy(batch[:2])
        answer = grpc.infer("pm", [gtensor])
        np.testing.assert_array_equal(answer.as_numpy("y"), batch[:2] * 2)

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        # once the server noticed (it watches idle instances), the model stays READY and keeps
        # answering on the other instance while that one restarts
        wait_until(
            lambda: f"(pid {victim}): the process was killed by signal SIGKILL" in server.log(),
            "noticed",
        )
        assert client.is_model_ready("pm")
        for _ in range(10):
            assert int(http_infer(client, "pm", batch[:3])[0, 0]) != victim
        wait_until(lambda: "restarted" in server.log(), "restarted")
        # a request that crashes its instance gets a 500 naming the model and instance
        with pytest.raises(InferenceServerException) as crashed:
            http_infer(client, "pm", -np.ones((1, 20), np.float32))
        assert crashed.value.status() == "500"
        assert "of model 'pm' version 1 crashed: the process exited with code 7" in str(
            crashed.value
        )
        assert client.is_server_ready() and client.is_model_ready("pm")
        seen: set[int] = set()

        def both_serve() -> bool:
            seen.add(int(http_infer(client, "pm", batch[:1])[0, 0]))
            return len(seen) == 2

        wait_until(both_serve, "served by two processes again")
        client.close()
        grpc.close()


def test_a_model_that_crashes_on_every_request_becomes_unavailable(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    write(root, "crashy", count=1)
    write(root, "steady", count=1)
    with serve(root, tmp_dir=tmp_path) as server:
        client = httpclient.InferenceServerClient(server.http_url)
        bad = -np.ones((1, 20), np.float32)

        def gave_up() -> bool:
            try:
                http_infer(client, "crashy", bad)
            except InferenceServerException as exc:
                return bool(exc.status() == "503")
            return False

        wait_until(gave_up, "UNAVAILABLE", limit_s=120)
        assert not client.is_model_ready("crashy")
        ready = httpx.get(f"{server.base_url}/v2/models/crashy/ready")  # the reason, in the body
        assert ready.status_code == 503
        assert "crashed 6 times within 60 s" in ready.text
        index = {e["name"]: e for e in client.get_model_repository_index()}
        assert index["crashy"]["state"] == "UNAVAILABLE"
        assert "crashed 6 times within 60 s" in index["crashy"]["reason"]
        # every other model unaffected
        assert client.is_model_ready("steady")
        http_infer(client, "steady", np.ones((2, 20), np.float32))
        # a reload brings it back
        client.load_model("crashy")
        assert client.is_model_ready("crashy")
        http_infer(client, "crashy", np.ones((1, 20), np.float32))
        client.close()


def test_a_corrupt_lightgbm_file_fails_to_load_in_its_process_with_the_reason(
    tmp_path: Path,
) -> None:
    pytest.importorskip("lightgbm")
    root = tmp_path / "repo"
    folder = root / "gbm" / "1"
    folder.mkdir(parents=True)
    (folder / "model.txt").write_text("tree\nversion=v4\nnum_class=1\nthis is not a model\n")
    (root / "gbm" / "model.toml").write_text(
        'backend = "lightgbm"\n[parameters]\nexecution = "process"\n'
    )
    with serve(root, tmp_dir=tmp_path) as server:
        client = httpclient.InferenceServerClient(server.http_url)
        assert not client.is_model_ready("gbm")
        (entry,) = client.get_model_repository_index()
        assert entry["state"] == "UNAVAILABLE"
        assert entry["reason"]
        assert "gbm" in server.log() and entry["reason"][:40] in server.log()
        assert client.is_server_live()
        client.close()
