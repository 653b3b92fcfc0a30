"""oipserve on Ray Serve, on a real two-node Ray cluster (tests/ray_cluster.py).

Slow (two Ray nodes start, each application deploys in tens of seconds): marked ``slow``. Without
the ``ray`` package they skip, except in CI (``CI=true``), where they must run.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from tests.ray_cluster import HEAD_PROXY_PORT, WORKER_PROXY_PORT, RayCluster

if importlib.util.find_spec("ray") is None:
    if os.environ.get("CI") == "true":
        raise RuntimeError("CI must run the Ray Serve tests: install oipserve[ray]")
    pytest.skip(
        "the ray package is not installed (pip install 'oipserve[ray]')", allow_module_level=True
    )

pytestmark = [
    pytest.mark.slow,
    # Ray's own code uses APIs its dependencies deprecate (pydantic's Field extras, ...)
    pytest.mark.filterwarnings("ignore::DeprecationWarning:ray"),
]

APP = "oipserve"
DEPLOY_TIMEOUT_S = 240.0


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    from ray import serve

    from tests.ray_cluster import network_namespace, two_node_cluster

    with network_namespace(), two_node_cluster(tmp_path_factory.mktemp("ray")) as running:
        serve.start(http_options={"host": "127.0.0.1", "port": HEAD_PROXY_PORT})
        try:
            yield running
        finally:
            serve.shutdown()  # type: ignore[no-untyped-call]


@pytest.fixture
def deployed(cluster: RayCluster) -> Iterator[Callable[..., Any]]:
    """Deploy with oipserve.ray.deploy; the application is deleted after the test."""
    from ray import serve

    import oipserve.ray

    def deploy(repository: Path, **options: Any) -> Any:
        return oipserve.ray.deploy(repository, name=APP, **options)

    yield deploy
    serve.delete(APP)


def _iris_inputs() -> list[httpclient.InferInput]:
    features = httpclient.InferInput("input-0", [2, 4], "FP32")
    features.set_data_from_numpy(
        np.array([[5.1, 3.5, 1.4, 0.2], [6.8, 2.8, 4.8, 1.4]], dtype=np.float32)
    )
    return [features]


def _client(port: int) -> httpclient.InferenceServerClient:
    return httpclient.InferenceServerClient(
        f"127.0.0.1:{port}", connection_timeout=10, network_timeout=30
    )


def _wait_until(
    condition: Callable[[], bool], what: str, timeout_s: float = DEPLOY_TIMEOUT_S
) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except Exception:  # a proxy that is not up yet refuses connections
            pass
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def _replica_nodes(deployment: str) -> dict[str, str]:
    """Alive replica actors of ``deployment``: actor id → node id (Ray's GCS actor table; the
    public state API needs the dashboard, which this cluster does not run)."""
    from ray._private import state

    return {
        actor_id: info["Address"]["NodeID"]
        for actor_id, info in state.actors().items()
        if info["State"] == "ALIVE" and info["ActorClassName"].endswith(f":{APP}:{deployment}")
    }


def _server_ready(port: int) -> bool:
    ready: bool = _client(port).is_server_ready()
    return ready


def _infer_iris(port: int) -> list[int]:
    result = _client(port).infer("iris", _iris_inputs())
    predictions: list[int] = result.as_numpy("predict").tolist()
    return predictions


def _iris_repository(tmp_path: Path, examples_repository: Path) -> Path:
    repository = tmp_path / "repository"
    shutil.copytree(examples_repository / "iris", repository / "iris")
    return repository


def test_two_replicas_on_both_nodes_through_either_proxy(
    deployed: Callable[..., Any], examples_repository: Path, tmp_path: Path
) -> None:
    import ray

    repository = _iris_repository(tmp_path, examples_repository)
    options = {
        "num_replicas": 2,
        "max_replicas_per_node": 1,
        "ray_actor_options": {"num_cpus": 0.5},
    }
    deployed(repository, models={"iris": options})
    nodes = _replica_nodes("oipserve-model-iris")
    assert len(nodes) == 2
    alive = {node["NodeID"] for node in ray.nodes() if node["Alive"]}  # type: ignore[no-untyped-call]
    assert set(nodes.values()) == alive, "one replica on each node"
    for port in (HEAD_PROXY_PORT, WORKER_PROXY_PORT):
        _wait_until(functools.partial(_server_ready, port), f"the proxy on port {port}")
        client = _client(port)
        assert client.is_model_ready("iris")
        assert client.get_model_metadata("iris")["name"] == "iris"
        assert _infer_iris(port) == [0, 1]
        assert client.get_model_repository_index() == [
            {"name": "iris", "version": "1", "state": "READY"}
        ]
        with pytest.raises(InferenceServerException, match="unknown model: 'nope'"):
            client.infer("nope", _iris_inputs())
        with pytest.raises(InferenceServerException, match="not allowed"):
            client.load_model("iris")


def test_killed_replica_is_replaced_and_retried_requests_succeed(
    deployed: Callable[..., Any], examples_repository: Path, tmp_path: Path
) -> None:
    import ray

    repository = _iris_repository(tmp_path, examples_repository)
    options = {
        "num_replicas": 2,
        "max_replicas_per_node": 1,
        "ray_actor_options": {"num_cpus": 0.5},
    }
    deployed(repository, models={"iris": options})
    _wait_until(lambda: _client(HEAD_PROXY_PORT).is_server_ready(), "the head's proxy")
    before = _replica_nodes("oipserve-model-iris")
    stop = threading.Event()
    outcomes: list[str] = []

    def load() -> None:
        while not stop.is_set():
            for attempt in range(20):  # the client retries what failed while a replica died
                try:
                    assert _infer_iris(HEAD_PROXY_PORT) == [0, 1]
                    outcomes.append("ok" if attempt == 0 else "retried")
                    break
                except (InferenceServerException, ConnectionError, OSError):
                    time.sleep(0.2)
            else:
                outcomes.append("failed")

    threads = [threading.Thread(target=load) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        _wait_until(lambda: len(outcomes) >= 20, "requests before the kill", 60)
        victim = next(iter(before))
        ray.kill(ray.get_actor(_actor_name(victim), namespace="serve"), no_restart=True)

        def replaced() -> bool:
            now = _replica_nodes("oipserve-model-iris")
            return len(now) == 2 and victim not in now

        _wait_until(replaced, "a replacement replica")
        served = len(outcomes)
        _wait_until(lambda: len(outcomes) >= served + 20, "requests after the replacement", 60)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    assert "failed" not in outcomes
    assert outcomes.count("ok") + outcomes.count("retried") == len(outcomes)


def _actor_name(actor_id: str) -> str:
    from ray._private import state

    name: str = state.actors()[actor_id]["Name"]
    return name


SLOW_MODEL = """\
import time

import oipserve


class Slow(oipserve.Model):
    def infer(self, requests):
        time.sleep(0.05)
        return [oipserve.InferResponse(dict(r.inputs)) for r in requests]
"""


def test_autoscaling_adds_and_removes_a_replica(
    deployed: Callable[..., Any], tmp_path: Path
) -> None:
    repository = tmp_path / "repository"
    (repository / "slow").mkdir(parents=True)
    (repository / "slow" / "model.py").write_text(SLOW_MODEL)
    autoscaling = {
        "min_replicas": 1,
        "max_replicas": 2,
        "target_ongoing_requests": 1,
        "upscale_delay_s": 0.5,
        "downscale_delay_s": 2,
        "metrics_interval_s": 0.2,
        "look_back_period_s": 1,
    }
    options = {"autoscaling_config": autoscaling, "ray_actor_options": {"num_cpus": 0.5}}
    deployed(repository, models={"slow": options})
    assert len(_replica_nodes("oipserve-model-slow")) == 1
    stop = threading.Event()
    errors: list[str] = []

    def load() -> None:
        client = _client(HEAD_PROXY_PORT)
        tensor = httpclient.InferInput("x", [1], "FP32")
        tensor.set_data_from_numpy(np.array([1.0], dtype=np.float32))
        while not stop.is_set():
            try:
                client.infer("slow", [tensor])
            except InferenceServerException as exc:
                errors.append(str(exc))

    threads = [threading.Thread(target=load) for _ in range(6)]
    for thread in threads:
        thread.start()
    try:
        _wait_until(
            lambda: len(_replica_nodes("oipserve-model-slow")) == 2, "a second replica", 120
        )
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=60)
    _wait_until(lambda: len(_replica_nodes("oipserve-model-slow")) == 1, "scale-down to one", 120)
    assert not errors


def test_a_model_that_fails_to_load_fails_the_deploy(cluster: RayCluster, tmp_path: Path) -> None:
    from ray import serve

    import oipserve.ray

    repository = tmp_path / "repository"
    (repository / "broken").mkdir(parents=True)
    (repository / "broken" / "model.joblib").write_bytes(b"not a pickle")
    try:
        with pytest.raises(oipserve.ray.DeployError) as info:
            oipserve.ray.deploy(
                repository,
                name="broken-app",
                deployment_options={"ray_actor_options": {"num_cpus": 0.5}},
            )
    finally:
        serve.delete("broken-app")
    message = str(info.value)
    assert "model 'broken' failed to load" in message
    assert "cannot read model.joblib" in message
