"""Custom metrics of a Triton Python-backend model (python_backend examples/custom_metrics):
pb_utils.MetricFamily / Metric published on /metrics through the server's model-metrics API."""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import tritonclient.http as httpclient

from tests.serving import RunningServer, serve

CUSTOM_METRICS = """
import time

import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        self.latency = pb_utils.MetricFamily(
            name="requests_process_latency_ns",
            description="Cumulative time spent processing requests",
            kind=pb_utils.MetricFamily.COUNTER,
        )
        self.latency_metric = self.latency.Metric(
            labels={"model": args["model_name"], "version": args["model_version"]}
        )
        self.inflight = pb_utils.MetricFamily(
            name="requests_in_flight", description="Requests running",
            kind=pb_utils.MetricFamily.GAUGE,
        ).Metric(labels={"kind": "all"})
        self.sizes = pb_utils.MetricFamily(
            name="request_values", description="Values seen",
            kind=pb_utils.MetricFamily.HISTOGRAM,
        ).Metric(labels={"kind": "input"}, buckets=[1.0, 10.0, 100.0])

    def execute(self, requests):
        start = time.perf_counter_ns()
        self.inflight.increment(len(requests))
        responses = []
        for request in requests:
            x = pb_utils.get_input_tensor_by_name(request, "IN").as_numpy()
            for value in x.reshape(-1):
                self.sizes.observe(float(value))
            responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor("OUT", x)]))
        self.inflight.set(0)
        self.latency_metric.increment(time.perf_counter_ns() - start)
        return responses
"""

TOML = """
backend = "python"
[[input]]
name = "IN"
data_type = "TYPE_FP32"
dims = [2]
[[output]]
name = "OUT"
data_type = "TYPE_FP32"
dims = [2]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("custom-metrics")
    (root / "custom_metrics" / "1").mkdir(parents=True)
    (root / "custom_metrics" / "1" / "model.py").write_text(CUSTOM_METRICS)
    (root / "custom_metrics" / "model.toml").write_text(TOML)
    with serve(root, tmp_dir=tmp_path_factory.mktemp("custom-metrics-server")) as running:
        yield running


def test_metric_families_appear_on_metrics(server: RunningServer) -> None:
    client = httpclient.InferenceServerClient(server.http_url)
    tensor = httpclient.InferInput("IN", [2], "FP32")
    tensor.set_data_from_numpy(np.array([0.5, 50.0], dtype=np.float32))
    for _ in range(3):
        client.infer("custom_metrics", [tensor])
    text = httpx.get(f"{server.base_url}/metrics").text
    assert "# TYPE requests_process_latency_ns counter" in text
    latency = re.search(
        r'^requests_process_latency_ns\{model="custom_metrics",version="1"\} (\S+)$', text, re.M
    )
    assert latency is not None and float(latency.group(1)) > 0
    assert re.search(r'^requests_in_flight\{[^}]*kind="all"[^}]*\} 0(\.0)?$', text, re.M)
    assert re.search(r'^request_values_bucket\{[^}]*le="1(\.0)?"[^}]*\} 3(\.0)?$', text, re.M)
    assert re.search(r"^request_values_count\{[^}]*\} 6(\.0)?$", text, re.M)
