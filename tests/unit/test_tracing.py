"""Trace settings, sampling and the OpenTelemetry spans, in memory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from oipserve.errors import InvalidArgument, Unsupported
from oipserve.observability.tracing import (
    TraceConfig,
    TraceControl,
    Tracing,
    reset_carrier,
    set_carrier,
)

OTEL = TraceConfig.parse(["mode=opentelemetry", "level=TIMESTAMPS", "rate=1"], environ={})


def test_default_settings_are_tritons() -> None:
    control = TraceControl(TraceConfig.parse([], environ={}))
    assert control.report() == {
        "trace_level": ["OFF"],
        "trace_rate": "1000",
        "trace_count": "-1",
        "log_frequency": "0",
        "trace_file": "",
        "trace_mode": "triton",
    }


def test_opentelemetry_mode_reports_its_own_settings() -> None:
    config = TraceConfig.parse(
        ["mode=opentelemetry", "opentelemetry,url=http://collector:4318/v1/traces",
         "opentelemetry,resource=service.name=iris", "count=5"],
        environ={"OTEL_BSP_SCHEDULE_DELAY": "100"},
    )  # fmt: skip
    report = TraceControl(config).report()
    assert report == {
        "trace_level": ["TIMESTAMPS"],
        "trace_rate": "1",
        "trace_count": "5",
        "trace_mode": "opentelemetry",
        "url": "http://collector:4318/v1/traces",
        "resource": "service.name=iris",
        "bsp_max_queue_size": "2048",
        "bsp_schedule_delay": "100",
        "bsp_max_export_batch_size": "512",
    }


def test_the_exporter_variable_turns_opentelemetry_on() -> None:
    assert TraceConfig.parse([], environ={"OTEL_TRACES_EXPORTER": "otlp"}).mode == "opentelemetry"
    assert TraceConfig.parse([], environ={"OTEL_TRACES_EXPORTER": "none"}).mode == "triton"


@pytest.mark.parametrize(
    ("option", "message"),
    [
        ("level", "format is"),
        (",level=OFF", "No trace mode specified"),
        ("mode=zipkin", "invalid value for trace mode"),
        ("level=ALL", "invalid value for trace level"),
        ("rate=x", "expected an integer"),
        ("count=-2", "out of range"),
        ("triton,file=/tmp/t.json", "not implemented"),
        ("level=TIMESTAMPS", "not implemented"),
        ("opentelemetry,colour=red", "Bad option"),
        ("frequency=3", "Bad option"),
    ],
)
def test_bad_trace_config(option: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TraceConfig.parse([option], environ={})


@pytest.mark.parametrize(
    ("changes", "error", "field"),
    [
        ({"trace_level": ["OFF", "TIMESTAMPS"]}, InvalidArgument, "only one trace level 'OFF'"),
        ({"trace_level": "TIMESTAMPS,x"}, InvalidArgument, "trace_level"),
        ({"trace_level": [1]}, InvalidArgument, "trace_level"),
        ({"trace_rate": "fast"}, InvalidArgument, "trace_rate"),
        ({"trace_rate": True}, InvalidArgument, "trace_rate"),
        ({"trace_rate": "-1"}, InvalidArgument, "trace_rate"),
        ({"trace_count": "-2"}, InvalidArgument, "trace_count"),
        ({"trace_count": {"n": 1}}, InvalidArgument, "trace_count"),
        ({"trace_rate": "5", "trace_count": "-7"}, InvalidArgument, "trace_count"),
        ({"trace_file": "/tmp/t"}, Unsupported, "trace file"),
    ],
)
def test_bad_updates_change_nothing(
    changes: dict[str, object], error: type[Exception], field: str
) -> None:
    control = TraceControl(OTEL)
    before = control.report("m")
    with pytest.raises(error, match=field):
        control.update("m", changes)  # type: ignore[arg-type]
    with pytest.raises(error, match=field):
        control.update("", changes)  # type: ignore[arg-type]
    assert control.report("m") == before == control.report()


def test_model_settings_follow_the_global_ones_until_set() -> None:
    control = TraceControl(OTEL)
    control.update("m", {"trace_rate": "10", "log_frequency": "3", "unknown": "x"})
    control.update("", {"trace_count": "7", "trace_rate": 4})
    assert control.report("m")["trace_rate"] == "10"
    assert control.report("m")["trace_count"] == "7"
    assert control.report("other")["trace_rate"] == "4"
    control.update("m", {"trace_rate": None})  # back to the global value
    assert control.report("m")["trace_rate"] == "4"
    control.update("", {"trace_rate": None, "trace_level": ["OFF"]})  # back to start-up
    assert control.report()["trace_rate"] == "1"
    assert control.report("m")["trace_level"] == ["OFF"]


def test_level_other_than_off_is_refused_in_triton_mode() -> None:
    control = TraceControl(TraceConfig.parse([], environ={}))
    with pytest.raises(InvalidArgument, match="trace_level"):
        control.update("", {"trace_level": ["TIMESTAMPS"]})
    control.update("", {"trace_rate": "5", "trace_level": ["OFF"]})
    assert control.report()["trace_rate"] == "5"


def test_sampling_follows_rate_and_count() -> None:
    control = TraceControl(OTEL)
    control.update("", {"trace_rate": "3", "trace_count": "2"})
    picks = [control.sample("m") for _ in range(12)]
    assert picks == [False, False, True, False, False, True] + [False] * 6
    assert control.report()["trace_count"] == "0"
    assert control.sample("m", forced=True)  # a propagated context is always traced
    control.update("", {"trace_level": ["OFF"]})
    assert not control.sample("m", forced=True)


@pytest.fixture
def exported() -> Iterator[tuple[Tracing, InMemorySpanExporter]]:
    exporter = InMemorySpanExporter()
    tracing = Tracing(OTEL, span_processor=SimpleSpanProcessor(exporter))
    yield tracing, exporter
    tracing.shutdown()


def test_a_request_makes_a_span_tree(exported: tuple[Tracing, InMemorySpanExporter]) -> None:
    tracing, exporter = exported
    span = tracing.start("iris", "1", "req-1", start_wall_ns=1_000_000_000)
    assert span is not None
    span.succeeded(
        input_ns=10_000, queue_ns=20_000, compute_ns=30_000, end_wall_ns=1_000_070_000,
        batch_size=4,
    )  # fmt: skip
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"InferRequest", "queue", "compute"}
    root, queue, compute = spans["InferRequest"], spans["queue"], spans["compute"]
    assert root.parent is None
    assert queue.parent is not None and queue.parent.span_id == root.context.span_id
    assert compute.parent is not None and compute.parent.span_id == root.context.span_id
    assert (queue.start_time, queue.end_time) == (1_000_010_000, 1_000_030_000)
    assert (compute.start_time, compute.end_time) == (1_000_030_000, 1_000_060_000)
    assert root.attributes is not None and compute.attributes is not None
    assert root.attributes["triton.request_id"] == "req-1"
    assert compute.attributes["triton.model_name"] == "iris"
    assert compute.attributes["oipserve.batch_size"] == 4
    assert span.trace_id == f"{root.context.trace_id:032x}"


def test_traceparent_continues_the_callers_trace(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    tracing.control.update("", {"trace_rate": "0"})  # only propagated contexts are traced
    parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    token = set_carrier({"traceparent": parent})
    try:
        span = tracing.start("iris", "1", "", start_wall_ns=5)
    finally:
        reset_carrier(token)
    assert span is not None
    span.failed(RuntimeError("model raised"), end_wall_ns=9)
    (root,) = exporter.get_finished_spans()
    assert f"{root.context.trace_id:032x}" == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert root.parent is not None and f"{root.parent.span_id:016x}" == "00f067aa0ba902b7"
    assert root.status.description == "model raised"


def test_a_malformed_traceparent_starts_a_new_trace(
    exported: tuple[Tracing, InMemorySpanExporter],
) -> None:
    tracing, exporter = exported
    token = set_carrier({"traceparent": "00-nothex-00f067aa0ba902b7-01"})
    try:
        span = tracing.start("iris", "1", "", start_wall_ns=5)
    finally:
        reset_carrier(token)
    assert span is not None
    span.failed(RuntimeError("x"), end_wall_ns=6)
    (root,) = exporter.get_finished_spans()
    assert root.parent is None


def test_opentelemetry_is_not_imported_when_tracing_is_off() -> None:
    code = (
        "import sys\n"
        "from oipserve.observability.tracing import TraceConfig, Tracing\n"
        "tracing = Tracing(TraceConfig.parse([], environ={}))\n"
        "assert tracing.start('m', '1', '', 0) is None\n"
        "loaded = [m for m in sys.modules if m.startswith('opentelemetry')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
