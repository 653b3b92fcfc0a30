"""``/metrics`` on a real server: exact values after a known sequence of requests, agreement with
the statistics extension, the exposition read by prometheus-client's parser and by promtool, the
metrics port, ``--allow-metrics`` and metrics published by a model."""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serving import EXAMPLES, RunningServer, free_port, serve

# Holds each batch until the test creates the release file, so the test decides what queues.
GATED_MODEL = """
import os
import time

import oipserve


class Gated(oipserve.Model):
    def load(self, ctx):
        self.folder = ctx.parameters["folder"]
        self.batches = ctx.metrics.counter(
            "gated_batches", "Batches the gated model ran", labels=("size",)
        )
        self.own = ctx.metrics.gauge(
            "gated_temperature", "A gauge that names its own model", labels=("model", "version")
        )

    def infer(self, requests):
        open(os.path.join(self.folder, "running"), "w").close()
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(self.folder, "release")):
            if time.monotonic() > deadline:
                raise RuntimeError("never released")
            time.sleep(0.005)
        self.batches.labels(size=str(len(requests))).inc()
        self.own.labels(model="thermometer", version="7").set(21.5)
        return [oipserve.InferResponse({"y": r.inputs["x"] * 2}) for r in requests]
"""

GATED_CONFIG = """
backend = "python"
max_batch_size = 8
[[input]]
name = "x"
data_type = "TYPE_FP32"
dims = [2]
[[output]]
name = "y"
data_type = "TYPE_FP32"
dims = [2]
[dynamic_batching]
[dynamic_batching.default_queue_policy]
max_queue_size = 4
[parameters]
folder = "{folder}"
"""

BROKEN_MODEL = """
import oipserve


class Broken(oipserve.Model):
    def infer(self, requests):
        raise ValueError("this model always fails")
"""

BROKEN_CONFIG = """
backend = "python"
max_batch_size = 0
[[input]]
name = "x"
data_type = "TYPE_FP32"
dims = [2]
[[output]]
name = "y"
data_type = "TYPE_FP32"
dims = [2]
"""


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("metrics-repo")
    shutil.copytree(EXAMPLES / "iris", root / "iris")
    gate = tmp_path_factory.mktemp("gate")
    for name, code, config in (
        ("gated", GATED_MODEL, GATED_CONFIG.format(folder=gate)),
        ("broken", BROKEN_MODEL, BROKEN_CONFIG),
    ):
        (root / name / "1").mkdir(parents=True)
        (root / name / "model.toml").write_text(config)
        (root / name / "1" / "model.py").write_text(code)
    return root


def _gate(repository: Path) -> Path:
    text = (repository / "gated" / "model.toml").read_text()
    return Path(text.split('folder = "')[1].split('"')[0])


Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            name = family.name if family.type == "counter" else sample.name
            found[(name, frozenset(sample.labels.items()))] = sample.value
    return found


def labels(model: str, version: str = "1", **extra: str) -> frozenset[tuple[str, str]]:
    return frozenset({("model", model), ("version", version), *extra.items()})


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


def infer_body(rows: int = 1, **parameters: int) -> dict[str, object]:
    body: dict[str, object] = {
        "inputs": [{"name": "x", "shape": [rows, 2], "datatype": "FP32", "data": [1.0, 2.0] * rows}]
    }
    if parameters:
        body["parameters"] = parameters
    return body


def test_metrics_follow_a_known_sequence_of_requests(repository: Path, tmp_path: Path) -> None:
    gate = _gate(repository)
    with (
        serve(repository, tmp_dir=tmp_path) as server,
        httpx.Client(base_url=server.base_url, timeout=30) as client,
    ):

        def scrape() -> Samples:
            return parse(client.get("/metrics").text)

        def pending() -> float:
            return scrape()[("nv_inference_pending_request_count", labels("gated"))]

        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            url = "/v2/models/gated/infer"
            # A runs alone and holds the model
            first = pool.submit(client.post, url, json=infer_body())
            wait_for((gate / "running").exists, "the first batch to start")
            # F waits 1 ms at most, while A holds the model: REJECTED by its deadline
            late = client.post(url, json=infer_body(timeout=1000))
            assert late.status_code == 503, late.text
            # B, C, D queue (one of them with 2 rows) ...
            queued = [pool.submit(client.post, url, json=infer_body(rows)) for rows in (1, 2, 1)]
            wait_for(lambda: pending() == 3, "three pending requests")
            # ... G queues too, then its client goes away: CANCELED
            leaving = socket.create_connection(("127.0.0.1", server.http_port))
            payload = json.dumps(infer_body()).encode()
            leaving.sendall(
                b"POST /v2/models/gated/infer HTTP/1.1\r\nHost: x\r\n"
                b"Content-Type: application/json\r\n"
                + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                + payload
            )
            wait_for(lambda: pending() == 4, "four pending requests")
            # E finds the queue full (4): REJECTED
            full = client.post(url, json=infer_body())
            assert full.status_code == 503, full.text
            leaving.close()
            wait_for(lambda: pending() == 3, "the cancelled request to leave the queue")
            (gate / "release").touch()
            assert first.result().status_code == 200
            assert [f.result().status_code for f in queued] == [200, 200, 200]
        # BACKEND: a model that raises; OTHER: a request the server refuses (wrong shape)
        assert client.post("/v2/models/broken/infer", json=infer_body(0)).status_code == 400
        broken = client.post(
            "/v2/models/broken/infer",
            json={"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1, 2]}]},
        )
        assert broken.status_code == 500, broken.text
        samples = scrape()
        statistics = client.get("/v2/models/gated/stats").json()["model_stats"][0]

    gated = labels("gated")
    assert samples[("nv_inference_request_success", gated)] == 4
    assert samples[("nv_inference_count", gated)] == 5  # rows: 1 + 1 + 2 + 1
    assert samples[("nv_inference_exec_count", gated)] == 2  # A alone, then B, C, D together
    assert samples[("nv_inference_pending_request_count", gated)] == 0
    failures = {
        reason: samples[("nv_inference_request_failure", labels("gated", reason=reason))]
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER")
    }
    assert failures == {"REJECTED": 2, "CANCELED": 1, "BACKEND": 0, "OTHER": 0}
    broken_failures = {
        reason: samples[("nv_inference_request_failure", labels("broken", reason=reason))]
        for reason in ("REJECTED", "CANCELED", "BACKEND", "OTHER")
    }
    assert broken_failures == {"REJECTED": 0, "CANCELED": 0, "BACKEND": 1, "OTHER": 1}
    # the statistics extension says the same
    stats = statistics["inference_stats"]
    assert stats["success"]["count"] == 4
    assert stats["fail"]["count"] == sum(failures.values())
    assert statistics["inference_count"] == 5
    assert statistics["execution_count"] == 2
    assert [b["batch_size"] for b in statistics["batch_stats"]] == [1, 4]
    for metric, key in (
        ("nv_inference_request_duration_us", "success"),
        ("nv_inference_queue_duration_us", "queue"),
        ("nv_inference_compute_input_duration_us", "compute_input"),
        ("nv_inference_compute_infer_duration_us", "compute_infer"),
        ("nv_inference_compute_output_duration_us", "compute_output"),
    ):
        assert samples[(metric, gated)] == stats[key]["ns"] // 1000, metric
    assert samples[("oipserve_batch_size_count", gated)] == 2
    assert samples[("oipserve_batch_size_sum", gated)] == 5
    assert samples[("oipserve_request_duration_seconds_count", gated)] == 4
    assert samples[("oipserve_model_state", labels("gated", state="READY"))] == 1
    assert samples[("nv_model_load_duration_secs", gated)] > 0
    # what the model published itself, with model/version added only where it had none
    assert samples[("gated_batches", labels("gated", size="1"))] == 1
    assert samples[("gated_batches", labels("gated", size="3"))] == 1
    assert samples[("gated_temperature", labels("thermometer", "7"))] == 21.5
    http = frozenset({("route", "model_infer"), ("method", "POST"), ("status", "200")})
    assert samples[("oipserve_http_requests", http)] == 4


def test_scrape_answers_any_accept_and_refuses_post(server: RunningServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for accept in ("application/openmetrics-text; version=1.0.0", "application/json", "*/*"):
            response = client.get("/metrics", headers={"Accept": accept})
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            assert list(text_string_to_metric_families(response.text))
        refused = client.post("/metrics", content=b"")
        assert refused.status_code == 405
        assert client.get("/metrics/extra").status_code == 404
        metadata = client.get("/v2").json()
        assert {"logging", "trace"} <= set(metadata["extensions"])


def test_promtool_reads_the_exposition(server: RunningServer, tmp_path: Path) -> None:
    promtool = shutil.which("promtool")
    if promtool is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing in CI (.ci/run installs Debian's prometheus package)")
        pytest.skip("promtool is not installed (Debian package 'prometheus')")
    text = httpx.get(f"{server.base_url}/metrics").text
    result = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    problems = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    # Triton's names are lint findings (no _total on counters, _us units), never parse errors;
    # oipserve's own families lint clean
    assert not [p for p in problems if "error" in p.lower() and "lint" not in p.lower()], problems
    assert not [p for p in problems if p.startswith("oipserve_")], problems
    assert all(p.startswith("nv_") for p in problems), problems


def test_metrics_port_and_allow_metrics(tmp_path: Path) -> None:
    metrics_port = free_port()
    with serve(EXAMPLES, "--metrics-port", str(metrics_port), tmp_dir=tmp_path) as server:
        response = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics")
        assert response.status_code == 200
        assert "nv_inference_request_success" in response.text
        assert httpx.get(f"http://127.0.0.1:{metrics_port}/v2").status_code == 404
        assert httpx.get(f"{server.base_url}/metrics").status_code == 200
    with serve(EXAMPLES, "--allow-metrics=false", tmp_dir=tmp_path) as server:
        assert httpx.get(f"{server.base_url}/metrics").status_code == 404


def _start_fails(args: list[str], tmp_path: Path) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "oipserve", "serve", str(EXAMPLES), "--host", "127.0.0.1", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_a_metrics_port_that_clashes_is_a_startup_error(tmp_path: Path) -> None:
    http_port, grpc_port = free_port(), free_port()
    ports = ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    output = _start_fails([*ports, "--metrics-port", str(http_port)], tmp_path)
    assert "--metrics-port" in output
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = _start_fails([*ports, "--metrics-port", str(port)], tmp_path)
        assert "metrics" in output and str(port) in output


def test_a_bad_metrics_config_is_a_startup_error(tmp_path: Path) -> None:
    output = _start_fails(["--metrics-config", "summary_latencies=maybe"], tmp_path)
    assert "summary_latencies" in output


@pytest.fixture
def summaries_server(tmp_path: Path) -> Iterator[RunningServer]:
    with serve(
        EXAMPLES,
        "--metrics-config",
        "summary_latencies=true",
        "--metrics-config",
        "summary_quantiles=0.5:0.05,0.99:0.001",
        "--metrics-config",
        "histogram_latencies=true",
        tmp_dir=tmp_path,
    ) as server:
        yield server


def test_metrics_config_adds_summaries_and_histograms(summaries_server: RunningServer) -> None:
    with httpx.Client(base_url=summaries_server.base_url) as client:
        body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                            "data": [5.1, 3.5, 1.4, 0.2]}]}  # fmt: skip
        for _ in range(3):
            assert client.post("/v2/models/iris/infer", json=body).status_code == 200
        samples = parse(client.get("/metrics").text)
    iris = labels("iris")
    assert samples[("nv_inference_request_summary_us_count", iris)] == 3
    assert ("nv_inference_request_summary_us", iris | {("quantile", "0.99")}) in samples
    assert ("nv_inference_request_summary_us", iris | {("quantile", "0.9")}) not in samples
    assert samples[("nv_inference_first_response_histogram_ms_count", iris)] == 3
    buckets = [
        samples[("nv_inference_first_response_histogram_ms_bucket", iris | {("le", le)})]
        for le in ("100", "500", "2000", "5000", "+Inf")  # Triton's default buckets, in ms
    ]
    assert buckets == sorted(buckets) and buckets[-1] == 3


def test_grpc_calls_are_counted_by_method_and_code(server: RunningServer) -> None:
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    def count(method: str, code: str) -> float:
        samples = parse(httpx.get(f"{server.base_url}/metrics").text)
        key = ("oipserve_grpc_requests", frozenset({("method", method), ("code", code)}))
        return samples.get(key, 0.0)

    live_before, missing_before = count("ServerLive", "OK"), count("ModelMetadata", "NOT_FOUND")
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        assert client.is_server_live()
        with pytest.raises(InferenceServerException):
            client.get_model_metadata("no-such-model")
    finally:
        client.close()
    assert count("ServerLive", "OK") == live_before + 1
    assert count("ModelMetadata", "NOT_FOUND") == missing_before + 1


def test_metrics_are_never_behind_the_api_key(tmp_path: Path) -> None:
    args = ("--api-key", "s3cret", "--http-restricted-api", "logging,trace:admin-key=yes")
    with (
        serve(EXAMPLES, *args, tmp_dir=tmp_path) as server,
        httpx.Client(base_url=server.base_url) as client,
    ):
        assert client.get("/metrics").status_code == 200  # no key
        assert client.get("/v2/logging").status_code == 401  # the API key is asked for
        keyed = {"Authorization": "Bearer s3cret"}
        assert client.get("/v2/logging", headers=keyed).status_code == 403  # restricted
        both = {**keyed, "admin-key": "yes"}
        assert client.get("/v2/logging", headers=both).status_code == 200
        assert client.get("/v2/trace/setting", headers=both).status_code == 200


SLOW_STREAM = """
import threading
import time

import numpy as np

from oipserve import InferResponse, Model


class SlowStream(Model):
    '''One response at once, the final one a second later.'''

    def infer(self, requests):
        for request in requests:
            request.sender.send(InferResponse({"OUT": np.array([1], dtype=np.int32)}))
            threading.Thread(target=self._finish, args=(request,)).start()
        return [None] * len(requests)

    def _finish(self, request):
        time.sleep(1.0)
        request.sender.send(InferResponse({"OUT": np.array([0], dtype=np.int32)}), final=True)
"""

STREAM_TOML = """
backend = "python"
max_batch_size = 0
[model_transaction_policy]
decoupled = true
[[input]]
name = "IN"
data_type = "TYPE_INT32"
dims = [1]
[[output]]
name = "OUT"
data_type = "TYPE_INT32"
dims = [1]
"""


def test_first_response_histogram_of_a_stream(tmp_path: Path) -> None:
    """Triton's first-response histogram times a decoupled request's first response, not its
    whole stream."""
    import queue

    import numpy as np
    import tritonclient.grpc as grpcclient

    root = tmp_path / "repo"
    (root / "stream").mkdir(parents=True)
    (root / "stream" / "model.py").write_text(SLOW_STREAM)
    (root / "stream" / "model.toml").write_text(STREAM_TOML)
    args = ("--metrics-config", "histogram_latencies=true")
    with serve(root, *args, tmp_dir=tmp_path) as server:
        results: queue.Queue[object] = queue.Queue()
        client = grpcclient.InferenceServerClient(server.grpc_url)
        try:
            client.start_stream(callback=lambda result, error: results.put(error or result))
            tensor = grpcclient.InferInput("IN", [1], "INT32")
            tensor.set_data_from_numpy(np.array([1], dtype=np.int32))
            client.async_stream_infer("stream", [tensor])
            for _ in range(2):
                assert not isinstance(results.get(timeout=30), Exception)
            client.stop_stream()
        finally:
            client.close()

        def recorded() -> bool:
            return (
                parse(httpx.get(f"{server.base_url}/metrics").text).get(
                    ("nv_inference_request_success", labels("stream"))
                )
                == 1
            )

        wait_for(recorded, "the stream to be recorded")
        samples = parse(httpx.get(f"{server.base_url}/metrics").text)
    stream = labels("stream")
    assert samples[("nv_inference_request_duration_us", stream)] >= 1_000_000
    first = ("nv_inference_first_response_histogram_ms_bucket", stream | {("le", "500")})
    assert samples[first] == 1  # the first response came long before the stream ended
    assert samples[("nv_inference_first_response_histogram_ms_count", stream)] == 1
