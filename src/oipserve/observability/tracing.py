"""Triton's trace extension (settings, sampling) and the OpenTelemetry spans of a request.

Settings (``GET/POST /v2/trace/setting``, ``/v2/models/{m}/trace/setting``, gRPC ``TraceSetting``;
Triton server ``docs/protocol/extension_trace.md``, ``src/http_server.cc`` ``HandleTrace`` and
``src/tracer.cc`` ``TraceManager``; PROTOCOL.md §3.6): ``trace_level`` (``["OFF"]`` or any of
``TIMESTAMPS``, ``TENSORS``), ``trace_rate`` (one request in N is traced), ``trace_count``
(traces left, ``-1`` unlimited) are settable, globally or per model; a per-model setting left
unset (or cleared with ``null``) follows the global one, and a global one cleared returns to its
start-up value. ``trace_mode`` is read-only. Every value is reported as a string (``trace_level``
as an array), as Triton does.

Modes: ``opentelemetry`` — on with ``--trace-config mode=opentelemetry`` (Triton's flag) or when
``OTEL_TRACES_EXPORTER`` is set — creates spans through the OpenTelemetry SDK (extra
``oipserve[otel]``) and exports them with the exporter the standard ``OTEL_*`` variables choose
(OTLP by default). ``triton`` — Triton's default mode, which writes Triton's own trace files — is
*not implemented*: in that mode the settings can be read and changed, but any level other than
``OFF`` is refused, so nothing pretends to trace. When tracing is off, ``opentelemetry`` is never
imported.

Sampling follows Triton's ``TraceSetting::SampleTrace``: every ``trace_rate``-th request while
``trace_count`` is not 0; a request that carries a valid W3C ``traceparent`` (HTTP header or gRPC
metadata) is always traced, whatever the rate and count (Triton's context propagation), and a
malformed one is ignored (the request may still be sampled into a new trace). Unlike Triton,
turning on OpenTelemetry without giving ``level`` and ``rate`` traces every request at
``TIMESTAMPS`` (sampling is then left to ``OTEL_TRACES_SAMPLER``).

Spans: ``InferRequest`` (kind SERVER) per traced request, child of the propagated context, with
children ``queue`` (waiting in the model's queue) and ``compute`` (the model's execution of the
batch the request ran in); attributes ``triton.model_name``, ``triton.model_version``,
``triton.request_id`` (Triton's names) and ``oipserve.batch_size``.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Final, Literal

from oipserve.errors import InvalidArgument, Unsupported

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import Span, Tracer

TraceMode = Literal["triton", "opentelemetry"]
LEVELS: Final = ("TIMESTAMPS", "TENSORS")
MIN_TRACE_COUNT: Final = -1
_INT32_MAX: Final = 2**31 - 1
_UINT32_MAX: Final = 2**32 - 1

BSP_DEFAULTS: Final = (
    ("bsp_max_queue_size", "OTEL_BSP_MAX_QUEUE_SIZE", "2048"),
    ("bsp_schedule_delay", "OTEL_BSP_SCHEDULE_DELAY", "5000"),
    ("bsp_max_export_batch_size", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "512"),
)
"""Triton's batch-span-processor settings, their environment variables and defaults
(server ``src/command_line_parser.cc`` ``ProcessOpenTelemetryBatchSpanProcessorArgs``)."""


# -- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TraceSetting:
    level: frozenset[str] = frozenset()
    """Empty means OFF."""
    rate: int = 1000
    count: int = -1

    def level_strings(self) -> list[str]:
        return [level for level in LEVELS if level in self.level] or ["OFF"]


@dataclass(frozen=True, slots=True)
class _Override:
    """A model's own values; ``None`` follows the global setting."""

    level: frozenset[str] | None = None
    rate: int | None = None
    count: int | None = None


@dataclass(frozen=True, slots=True)
class TraceConfig:
    """``--trace-config`` as parsed, plus what the environment turns on."""

    mode: TraceMode = "triton"
    setting: TraceSetting = TraceSetting()
    opentelemetry: tuple[tuple[str, str], ...] = ()
    """``url``, ``resource`` and ``bsp_*`` settings, reported in OpenTelemetry mode."""

    @classmethod
    def parse(cls, options: Iterable[str], environ: Mapping[str, str] | None = None) -> TraceConfig:
        """Triton's ``--trace-config [<mode>,]<setting>=<value>`` options (repeatable).

        Global settings: ``mode`` (``triton`` | ``opentelemetry``), ``level`` (repeatable:
        ``OFF``, ``TIMESTAMPS``, ``TENSORS``), ``rate``, ``count``. ``opentelemetry,`` settings:
        ``url`` (OTLP/HTTP endpoint), ``resource`` (``key=value``, repeatable),
        ``bsp_max_queue_size``, ``bsp_schedule_delay``, ``bsp_max_export_batch_size``.
        ``triton,`` settings (Triton's trace files) are refused: that mode is not implemented.
        Raises :class:`ValueError` with Triton's wording.
        """
        env = os.environ if environ is None else environ
        mode: TraceMode | None = None
        level: set[str] | None = None
        rate: int | None = None
        count: int | None = None
        otel: list[tuple[str, str]] = []
        for option in options:
            prefix, setting, value = _split_option(option)
            if prefix == "triton":
                raise ValueError(
                    f"--trace-config triton,{setting}: Triton's trace-file mode is not "
                    "implemented; use --trace-config mode=opentelemetry"
                )
            if prefix == "opentelemetry":
                if setting not in ("url", "resource", *(k for k, _, _ in BSP_DEFAULTS)):
                    raise ValueError(f'Bad option: "--trace-config opentelemetry,{setting}"')
                if setting.startswith("bsp_"):
                    _parse_int(value, f"--trace-config opentelemetry,{setting}", 0, _UINT32_MAX)
                otel.append((setting, value))
            elif setting == "mode":
                if value not in ("triton", "opentelemetry"):
                    raise ValueError(
                        f"invalid value for trace mode option: {value}. Available options are "
                        '"triton" and "opentelemetry"'
                    )
                mode = "opentelemetry" if value == "opentelemetry" else "triton"
            elif setting == "level":
                level = set() if level is None else level
                if value == "OFF":
                    level.clear()
                elif value in LEVELS:
                    level.add(value)
                else:
                    raise ValueError(
                        f"invalid value for trace level option: {value}. Available options are "
                        '"OFF", "TIMESTAMPS" and "TENSORS"'
                    )
            elif setting == "rate":
                rate = _parse_int(value, "--trace-config rate", 0, _UINT32_MAX)
            elif setting == "count":
                count = _parse_int(value, "--trace-config count", MIN_TRACE_COUNT, _INT32_MAX)
            else:
                raise ValueError(f'Bad option: "--trace-config {setting}"')
        exporter = env.get("OTEL_TRACES_EXPORTER", "").strip()
        if mode is None:
            mode = "opentelemetry" if exporter and exporter != "none" else "triton"
        if mode == "opentelemetry":
            # on without a level or rate: every request at TIMESTAMPS (see the module doc)
            level = {"TIMESTAMPS"} if level is None else level
            rate = 1 if rate is None else rate
            given = {key for key, _ in otel}
            otel.extend(
                (key, env.get(variable, default))
                for key, variable, default in BSP_DEFAULTS
                if key not in given
            )
        setting_value = TraceSetting(
            level=frozenset(level or ()),
            rate=1000 if rate is None else rate,
            count=-1 if count is None else count,
        )
        if mode == "triton" and setting_value.level:
            raise ValueError(
                "--trace-config level: Triton's trace-file mode is not implemented; traces need "
                "--trace-config mode=opentelemetry"
            )
        return cls(mode=mode, setting=setting_value, opentelemetry=tuple(otel))


def _split_option(option: str) -> tuple[str, str, str]:
    name, sep, value = option.partition("=")
    prefix, comma, setting = name.partition(",")
    if not comma:
        prefix, setting = "", name
    elif not prefix:
        raise ValueError(
            "No trace mode specified. --trace-config option format is "
            f"<trace mode>,<setting>=<value> or <setting>=<value>. Got {option}"
        )
    if not sep or not setting or not value:
        raise ValueError(
            f"--trace-config option format is '<trace mode>,<setting>=<value>'. Got {option}"
        )
    if prefix and prefix not in ("triton", "opentelemetry"):
        raise ValueError(
            f'invalid value for trace mode option: {prefix}. Available options are "triton" '
            'and "opentelemetry"'
        )
    return prefix, setting.strip(), value.strip()


def _parse_int(text: str, what: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"{what}: expected an integer, got {text!r}") from None
    if not low <= value <= high:
        raise ValueError(f"{what}: {value} is out of range [ {low}, {high} ]")
    return value


# -- the extension's state and sampling ----------------------------------------------------------


@dataclass(slots=True)
class _Counters:
    sampled: int = 0
    """Requests seen by the rate (Triton's ``sample_``)."""


@dataclass(slots=True)
class TraceControl:
    """Global and per-model trace settings, as the trace extension reads and changes them."""

    config: TraceConfig
    global_setting: TraceSetting = field(init=False)
    overrides: dict[str, _Override] = field(default_factory=dict)
    _counters: dict[str, _Counters] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.global_setting = self.config.setting

    @property
    def mode(self) -> TraceMode:
        return self.config.mode

    def effective(self, model: str = "") -> TraceSetting:
        override = self.overrides.get(model) if model else None
        base = self.global_setting
        if override is None:
            return base
        return TraceSetting(
            level=base.level if override.level is None else override.level,
            rate=base.rate if override.rate is None else override.rate,
            count=base.count if override.count is None else override.count,
        )

    def report(self, model: str = "") -> dict[str, Any]:
        """The settings as Triton's trace extension shows them."""
        setting = self.effective(model)
        response: dict[str, Any] = {
            "trace_level": setting.level_strings(),
            "trace_rate": str(setting.rate),
            "trace_count": str(setting.count),
        }
        if self.mode == "triton":
            response["log_frequency"] = "0"
            response["trace_file"] = ""
        response["trace_mode"] = self.mode
        if self.mode == "opentelemetry":
            for key, value in _joined(self.config.opentelemetry):
                response[key] = value
        return response

    def update(self, model: str, changes: Mapping[str, Sequence[str] | str | int | None]) -> None:
        """Apply a trace-setting update (values as the HTTP JSON body carries them; gRPC's
        string lists are passed as lists, an empty list meaning ``None``). Checked whole before
        anything changes; unknown keys are ignored."""
        level: frozenset[str] | None = None
        rate: int | None = None
        count: int | None = None
        cleared: set[str] = set()
        for key, value in changes.items():
            if key == "trace_file":
                raise Unsupported("trace file location can not be updated through network protocol")
            if key not in ("trace_level", "trace_rate", "trace_count"):
                continue  # unknown keys (and log_frequency, a triton-mode setting) are ignored
            if value is None or (isinstance(value, list) and not value):
                cleared.add(key)
            elif key == "trace_level":
                level = _parse_level(value)
            elif key == "trace_rate":
                rate = _setting_int(key, value, 0, _UINT32_MAX)
            else:
                count = _setting_int(key, value, MIN_TRACE_COUNT, _INT32_MAX)
        if level and self.mode == "triton":
            raise InvalidArgument(
                "'trace_level': Triton's trace-file mode is not implemented; start the server "
                "with --trace-config mode=opentelemetry to trace"
            )
        with self._lock:
            if not model:
                start = self.config.setting
                current = self.global_setting
                self.global_setting = TraceSetting(
                    level=_pick(level, "trace_level" in cleared, current.level, start.level),
                    rate=_pick(rate, "trace_rate" in cleared, current.rate, start.rate),
                    count=_pick(count, "trace_count" in cleared, current.count, start.count),
                )
                return
            old = self.overrides.get(model, _Override())
            self.overrides[model] = _Override(
                level=_pick(level, "trace_level" in cleared, old.level, None),
                rate=_pick(rate, "trace_rate" in cleared, old.rate, None),
                count=_pick(count, "trace_count" in cleared, old.count, None),
            )
            self._counters.pop(model, None)

    def sample(self, model: str, forced: bool = False) -> bool:
        """Whether this request of ``model`` is traced (Triton's ``SampleTrace``); a traced
        request takes one from ``trace_count``."""
        setting = self.effective(model)
        if not setting.level:
            return False
        with self._lock:
            hit = False
            if setting.rate != 0 and (setting.count != 0 or forced):
                counters = self._counters.setdefault(model, _Counters())
                counters.sampled += 1
                hit = counters.sampled % setting.rate == 0 and setting.count != 0
                if hit and setting.count > 0:
                    self._take_one(model)
            return hit or forced

    def _take_one(self, model: str) -> None:
        override = self.overrides.get(model)
        if override is not None and override.count is not None:
            self.overrides[model] = replace(override, count=override.count - 1)
        else:
            self.global_setting = replace(self.global_setting, count=self.global_setting.count - 1)


def _pick(new: Any, cleared: bool, current: Any, fallback: Any) -> Any:
    if new is not None:
        return new
    return fallback if cleared else current


def _joined(pairs: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    merged: dict[str, list[str]] = {}
    for key, value in pairs:
        merged.setdefault(key, []).append(value)
    return [(key, ",".join(values)) for key, values in merged.items()]


def _parse_level(value: Any) -> frozenset[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument("'trace_level' must be an array of strings")
    if "OFF" in value:
        if len(value) != 1:
            raise InvalidArgument("'trace_level': Expect only one trace level 'OFF' is specified")
        return frozenset()
    unknown = [v for v in value if v not in LEVELS]
    if unknown or not value:
        raise InvalidArgument(
            f"'trace_level': unknown level {unknown[0] if unknown else '(none)'}; expected "
            "OFF, TIMESTAMPS or TENSORS"
        )
    return frozenset(value)


def _setting_int(key: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidArgument(f"Unable to parse '{key}', expected a string holding an integer")
    try:
        number = int(value)
    except ValueError:
        raise InvalidArgument(f"Unable to parse '{key}', got: {value}") from None
    if number < low and key == "trace_count":
        raise InvalidArgument(
            f"Unable to parse 'trace_count'. Expecting value >= {MIN_TRACE_COUNT}, got:{value}"
        )
    if not low <= number <= high:
        raise InvalidArgument(
            f"Unable to parse '{key}', value is out of range [ {low}, {high} ], got: {value}"
        )
    return number


# -- W3C trace context of the request being served -----------------------------------------------

_CARRIER: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar(
    "oipserve_trace_carrier", default=None
)
PROPAGATION_KEYS: Final = ("traceparent", "tracestate")


def set_carrier(carrier: Mapping[str, str] | None) -> contextvars.Token[Mapping[str, str] | None]:
    """What a transport calls with the request's ``traceparent`` / ``tracestate`` (HTTP headers
    or gRPC metadata) before it calls the dataplane, in the same task."""
    return _CARRIER.set(carrier)


def reset_carrier(token: contextvars.Token[Mapping[str, str] | None]) -> None:
    _CARRIER.reset(token)


def current_carrier() -> Mapping[str, str] | None:
    return _CARRIER.get()


# -- OpenTelemetry -------------------------------------------------------------------------------


class RequestSpan:
    """The spans of one traced request; created by :meth:`Tracing.start`."""

    __slots__ = ("_model", "_root", "_start_wall_ns", "_tracer", "_version", "trace_id")

    def __init__(
        self, tracer: Tracer, root: Span, model: str, version: str, start_wall_ns: int
    ) -> None:
        self._tracer = tracer
        self._root = root
        self._model = model
        self._version = version
        self._start_wall_ns = start_wall_ns
        self.trace_id = f"{root.get_span_context().trace_id:032x}"

    def succeeded(
        self, *, input_ns: int, queue_ns: int, compute_ns: int, end_wall_ns: int, batch_size: int
    ) -> None:
        """End the request's spans: ``queue`` and ``compute`` laid out after decoding (from the
        times the scheduler measured), then the request itself."""
        from opentelemetry import trace

        context = trace.set_span_in_context(self._root)
        attributes: dict[str, str | int] = {
            "triton.model_name": self._model,
            "triton.model_version": self._version,
            "oipserve.batch_size": batch_size,
        }
        queue_start = self._start_wall_ns + input_ns
        compute_start = queue_start + queue_ns
        queue = self._tracer.start_span(
            "queue", context=context, start_time=queue_start, attributes=attributes
        )
        queue.end(end_time=compute_start)
        compute = self._tracer.start_span(
            "compute", context=context, start_time=compute_start, attributes=attributes
        )
        compute.end(end_time=compute_start + compute_ns)
        self._root.set_attribute("oipserve.batch_size", batch_size)
        self._root.end(end_time=max(end_wall_ns, compute_start + compute_ns))

    def failed(self, error: BaseException, end_wall_ns: int) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._root.set_status(Status(StatusCode.ERROR, str(error) or type(error).__name__))
        self._root.end(end_time=end_wall_ns)


class Tracing:
    """The server's tracing: the extension's settings and, in OpenTelemetry mode, the tracer."""

    def __init__(
        self,
        config: TraceConfig,
        *,
        span_processor: SpanProcessor | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self.control = TraceControl(config)
        self._tracer: Tracer | None = None
        self._provider: Any = None
        self._propagator: Any = None
        if config.mode == "opentelemetry":
            self._start_opentelemetry(config, span_processor, environ)

    @property
    def enabled(self) -> bool:
        return self._tracer is not None

    def _start_opentelemetry(
        self,
        config: TraceConfig,
        span_processor: SpanProcessor | None,
        environ: Mapping[str, str] | None,
    ) -> None:
        try:
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.trace.propagation.tracecontext import (
                TraceContextTextMapPropagator,
            )
        except ImportError as exc:
            raise RuntimeError(
                "OpenTelemetry tracing needs the otel extra: pip install 'oipserve[otel]'"
            ) from exc
        env = os.environ if environ is None else environ
        settings = dict(_joined(config.opentelemetry))
        attributes: dict[str, str] = {}
        if "OTEL_SERVICE_NAME" not in env:
            attributes["service.name"] = "oipserve"
        for item in settings.get("resource", "").split(","):
            key, sep, value = item.partition("=")
            if sep and key:
                attributes[key.strip()] = value.strip()
        provider = TracerProvider(resource=Resource.create(attributes))
        if span_processor is None:
            for exporter in _exporters(env, settings.get("url")):
                provider.add_span_processor(
                    BatchSpanProcessor(
                        exporter,
                        max_queue_size=int(settings["bsp_max_queue_size"]),
                        schedule_delay_millis=float(settings["bsp_schedule_delay"]),
                        max_export_batch_size=int(settings["bsp_max_export_batch_size"]),
                    )
                )
        else:
            provider.add_span_processor(span_processor)
        self._provider = provider
        self._tracer = provider.get_tracer("oipserve")
        self._propagator = TraceContextTextMapPropagator()

    def start(
        self, model: str, version: str, request_id: str, start_wall_ns: int
    ) -> RequestSpan | None:
        """A :class:`RequestSpan` if this request is traced, else None (cheap when off)."""
        tracer = self._tracer
        if tracer is None:
            return None
        carrier = _CARRIER.get()
        parent: Context | None = None
        if carrier:
            from opentelemetry import trace

            parent = self._propagator.extract(carrier)
            if not trace.get_current_span(parent).get_span_context().is_valid:
                parent = None  # malformed or absent traceparent: a new trace, never an error
        if not self.control.sample(model, forced=parent is not None):
            return None
        from opentelemetry.trace import SpanKind

        attributes: dict[str, str | int] = {
            "triton.model_name": model,
            "triton.model_version": version,
        }
        if request_id:
            attributes["triton.request_id"] = request_id
        root = tracer.start_span(
            "InferRequest",
            context=parent,
            kind=SpanKind.SERVER,
            start_time=start_wall_ns,
            attributes=attributes,
        )
        return RequestSpan(tracer, root, model, version, start_wall_ns)

    def shutdown(self) -> None:
        """Flush and stop the exporters."""
        if self._provider is not None:
            self._provider.shutdown()


def _exporters(env: Mapping[str, str], url: str | None) -> list[Any]:
    """The span exporters ``OTEL_TRACES_EXPORTER`` names (``otlp`` when unset; ``none`` for
    none), as the OpenTelemetry SDK's environment configuration chooses them; ``otlp`` follows
    ``OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`` / ``OTEL_EXPORTER_OTLP_PROTOCOL`` (``http/protobuf`` by
    default, or ``grpc``). Triton's ``opentelemetry,url`` is the OTLP/HTTP endpoint."""
    names = [n.strip() for n in env.get("OTEL_TRACES_EXPORTER", "otlp").split(",") if n.strip()]
    exporters: list[Any] = []
    for name in names:
        if name == "none":
            continue
        if name == "otlp":
            protocol = env.get(
                "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                env.get("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
            )
            if protocol == "grpc":
                from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import (
                    OTLPSpanExporter as GRPCExporter,
                )

                exporters.append(GRPCExporter())
            else:
                from opentelemetry.exporter.otlp.proto.http.trace_exporter import (
                    OTLPSpanExporter as HTTPExporter,
                )

                exporters.append(HTTPExporter(endpoint=url) if url else HTTPExporter())
        elif name == "console":
            from opentelemetry.sdk.trace.export import ConsoleSpanExporter

            exporters.append(ConsoleSpanExporter())
        else:
            exporters.append(_entry_point_exporter(name))
    return exporters


def _entry_point_exporter(name: str) -> Any:
    from importlib.metadata import entry_points

    for entry in entry_points(group="opentelemetry_traces_exporter"):
        if entry.name == name:
            factory: Callable[[], Any] = entry.load()
            return factory()
    raise RuntimeError(f"OTEL_TRACES_EXPORTER names '{name}', which no installed package provides")


__all__ = [
    "LEVELS",
    "PROPAGATION_KEYS",
    "RequestSpan",
    "TraceConfig",
    "TraceControl",
    "TraceMode",
    "TraceSetting",
    "Tracing",
    "current_carrier",
    "reset_carrier",
    "set_carrier",
]
