"""Logs and traces on a real server: JSON log lines, Triton's logging and trace extensions through
tritonclient (HTTP and gRPC), and OpenTelemetry spans exported over OTLP/HTTP to a receiver run by
the test, with W3C ``traceparent`` propagation over REST and gRPC."""

from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from oipserve.protocol.messages import pb
from tests.serving import EXAMPLES, RunningServer, serve

IRIS_ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)


def test_json_logs_parse_line_by_line(tmp_path: Path) -> None:
    args = ("--log-format", "json", "--log-level", "debug", "--access-log")
    with serve(EXAMPLES, *args, tmp_dir=tmp_path) as server:
        with httpx.Client(base_url=server.base_url) as client:
            assert client.get("/v2/health/ready").status_code == 200
            bad = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                               "data": [1, 2, 3]}]}  # fmt: skip
            assert client.post("/v2/models/iris/infer", json=bad).status_code == 400
        server.process.terminate()
        server.process.wait(timeout=15)
        lines = [line for line in server.log().splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= set(e) for e in entries)
    loggers = {e["logger"] for e in entries}
    assert "oipserve" in loggers or any(name.startswith("oipserve.") for name in loggers)
    assert any("READY" in e["message"] for e in entries)
    access = [e for e in entries if e["logger"] == "oipserve.access"]
    refused = next(e for e in access if e.get("path") == "/v2/models/iris/infer")
    assert (refused["method"], refused["status"], refused["model"]) == ("POST", 400, "iris")


def test_default_format_is_tritons(tmp_path: Path) -> None:
    with serve(EXAMPLES, "--log-format", "ISO8601", tmp_dir=tmp_path) as server:
        lines = [line for line in server.log().splitlines() if line.strip()]
    assert lines
    for line in lines:
        stamp, level, _pid, source, *_ = line.split(" ", 4)
        assert stamp.endswith("Z") and "T" in stamp, line
        assert level in ("I", "W", "E", "V"), line
        assert source.endswith("]"), line


def test_logging_extension_over_http(server: RunningServer) -> None:
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        settings = client.get_log_settings()
        assert settings == {
            "log_file": "",
            "log_info": True,
            "log_warning": True,
            "log_error": True,
            "log_verbose_level": 0,
            "log_format": "default",
        }
        updated = client.update_log_settings({"log_verbose_level": 1, "unknown": 3})
        assert updated["log_verbose_level"] == 1
        with pytest.raises(InferenceServerException, match="log_info") as raised:
            client.update_log_settings({"log_info": "yes", "log_verbose_level": 0})
        assert raised.value.status() == "400"
        assert client.get_log_settings()["log_verbose_level"] == 1  # nothing changed
        with pytest.raises(InferenceServerException, match="log_format"):
            client.update_log_settings({"log_format": "xml"})
        restored = client.update_log_settings({"log_verbose_level": 0, "log_info": None})
        assert restored == settings
    finally:
        client.close()


def test_logging_extension_over_grpc(server: RunningServer) -> None:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        settings = client.get_log_settings(as_json=True)["settings"]
        assert settings["log_info"] == {"bool_param": True}
        assert settings["log_format"] == {"string_param": "default"}
        updated = client.update_log_settings({"log_warning": False}, as_json=True)["settings"]
        assert updated["log_warning"] == {"bool_param": False}
        with pytest.raises(InferenceServerException, match="log_format") as raised:
            client.update_log_settings({"log_format": "xml"})
        assert "INVALID_ARGUMENT" in str(raised.value.status())
        # a wrong type (tritonclient itself never sends one): our own messages, raw
        wrong = pb.LogSettingsRequest()
        wrong.settings["log_info"].string_param = "yes"
        with grpc.insecure_channel(server.grpc_url) as channel:
            call = channel.unary_unary(
                "/inference.GRPCInferenceService/LogSettings",
                request_serializer=pb.LogSettingsRequest.SerializeToString,
                response_deserializer=pb.LogSettingsResponse.FromString,
            )
            with pytest.raises(grpc.RpcError) as rpc_error:
                call(wrong)
        assert rpc_error.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "log_info" in (rpc_error.value.details() or "")
        client.update_log_settings({"log_warning": True})
        assert client.get_log_settings(as_json=True)["settings"]["log_warning"] == {
            "bool_param": True
        }
    finally:
        client.close()


def test_trace_extension_without_opentelemetry(server: RunningServer) -> None:
    client = httpclient.InferenceServerClient(server.http_url)
    try:
        assert client.get_trace_settings() == {
            "trace_level": ["OFF"],
            "trace_rate": "1000",
            "trace_count": "-1",
            "log_frequency": "0",
            "trace_file": "",
            "trace_mode": "triton",
        }
        with pytest.raises(InferenceServerException, match="trace_level"):
            client.update_trace_settings(settings={"trace_level": ["TIMESTAMPS"]})
        with pytest.raises(InferenceServerException, match="Request for unknown model"):
            client.get_trace_settings(model_name="nope")
    finally:
        client.close()


# -- OpenTelemetry -------------------------------------------------------------------------------


class _Receiver(http.server.BaseHTTPRequestHandler):
    spans: list[Any]

    def do_POST(self) -> None:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = ExportTraceServiceRequest.FromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.server.spans.extend(scope.spans)  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def collector() -> Iterator[tuple[str, list[Any]]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    server.spans = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", server.spans  # type: ignore[attr-defined]
    server.shutdown()
    server.server_close()


@pytest.fixture
def traced_server(
    collector: tuple[str, list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[RunningServer]:
    url, _ = collector
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "otlp")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url)
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
    with serve(EXAMPLES, tmp_dir=tmp_path) as server:
        yield server


def _wait_spans(spans: list[Any], trace_id: str, count: int) -> list[Any]:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        mine = [s for s in spans if s.trace_id.hex() == trace_id]
        if len(mine) >= count:
            return mine
        time.sleep(0.05)
    raise AssertionError(f"spans of trace {trace_id} not exported: {len(spans)} spans in all")


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_traceparent_is_continued_over_both_transports(
    transport: str, traced_server: RunningServer, collector: tuple[str, list[Any]]
) -> None:
    _, spans = collector
    trace_id = "4bf92f3577b34da6a3ce929d0e0e4736" if transport == "http" else "a" * 32
    parent_span = "00f067aa0ba902b7"
    headers = {"traceparent": f"00-{trace_id}-{parent_span}-01"}
    if transport == "http":
        http_client = httpclient.InferenceServerClient(traced_server.http_url)
        tensor = httpclient.InferInput("input-0", [1, 4], "FP32")
        tensor.set_data_from_numpy(IRIS_ROW)
        http_client.infer("iris", [tensor], headers=headers, request_id="r-http")
        http_client.close()
    else:
        grpc_client = grpcclient.InferenceServerClient(traced_server.grpc_url)
        grpc_tensor = grpcclient.InferInput("input-0", [1, 4], "FP32")
        grpc_tensor.set_data_from_numpy(IRIS_ROW)
        grpc_client.infer("iris", [grpc_tensor], headers=headers, request_id="r-grpc")
        grpc_client.close()
    mine = {s.name: s for s in _wait_spans(spans, trace_id, 3)}
    assert set(mine) == {"InferRequest", "queue", "compute"}
    root = mine["InferRequest"]
    assert root.parent_span_id.hex() == parent_span
    assert mine["queue"].parent_span_id == root.span_id
    assert mine["compute"].parent_span_id == root.span_id
    attributes = {a.key: a.value for a in mine["compute"].attributes}
    assert attributes["triton.model_name"].string_value == "iris"
    assert attributes["oipserve.batch_size"].int_value == 1
    root_attributes = {a.key: a.value.string_value for a in root.attributes}
    assert root_attributes["triton.request_id"] == f"r-{transport}"


def test_a_malformed_traceparent_starts_a_new_trace(
    traced_server: RunningServer, collector: tuple[str, list[Any]]
) -> None:
    _, spans = collector
    body = {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32",
                        "data": [5.1, 3.5, 1.4, 0.2]}]}  # fmt: skip
    response = httpx.post(
        f"{traced_server.base_url}/v2/models/iris/infer",
        json=body,
        headers={"traceparent": "00-zz-not-a-trace-01"},
    )
    assert response.status_code == 200
    deadline = time.monotonic() + 20
    while not any(s.name == "InferRequest" for s in spans):
        assert time.monotonic() < deadline, "no span exported"
        time.sleep(0.05)
    root = next(s for s in spans if s.name == "InferRequest")
    assert root.parent_span_id == b""


def test_trace_extension_in_opentelemetry_mode(traced_server: RunningServer) -> None:
    http_client = httpclient.InferenceServerClient(traced_server.http_url)
    grpc_client = grpcclient.InferenceServerClient(traced_server.grpc_url)
    try:
        settings = http_client.get_trace_settings()
        assert settings["trace_mode"] == "opentelemetry"
        assert settings["trace_level"] == ["TIMESTAMPS"]
        assert settings["bsp_schedule_delay"] == "50"
        model = http_client.update_trace_settings(
            model_name="iris", settings={"trace_rate": "10", "trace_count": "3"}
        )
        assert (model["trace_rate"], model["trace_count"]) == ("10", "3")
        assert http_client.get_trace_settings()["trace_rate"] == "1"  # global unchanged
        with pytest.raises(InferenceServerException, match="trace_count"):
            http_client.update_trace_settings(model_name="iris", settings={"trace_count": "-2"})
        with pytest.raises(InferenceServerException, match="OFF"):
            http_client.update_trace_settings(settings={"trace_level": ["OFF", "TIMESTAMPS"]})
        over_grpc = grpc_client.get_trace_settings(model_name="iris", as_json=True)["settings"]
        assert over_grpc["trace_rate"] == {"value": ["10"]}
        cleared = grpc_client.update_trace_settings(
            model_name="iris", settings={"trace_rate": None}, as_json=True
        )["settings"]
        assert cleared["trace_rate"] == {"value": ["1"]}
        with pytest.raises(InferenceServerException, match="trace_rate") as raised:
            grpc_client.update_trace_settings(settings={"trace_rate": "often"})
        assert "INVALID_ARGUMENT" in str(raised.value.status())
    finally:
        http_client.close()
        grpc_client.close()
