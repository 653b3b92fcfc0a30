"""Every metric oipserve exposes, defined once: Triton's ``nv_*`` families with Triton's names, help
texts and labels, and oipserve's own ``oipserve_*`` families.

Where the numbers come from
---------------------------
* The counters Triton derives from its statistics (``nv_inference_request_success``,
  ``nv_inference_count``, ``nv_inference_exec_count``, the ``…_duration_us`` counters) are read at
  scrape time from the model version's :class:`~oipserve.scheduling.statistics.ModelStatistics`,
  the same object the statistics extension answers from, so the two always agree (a duration in
  µs is the statistics' nanoseconds // 1000). The request path pays nothing for them.
* ``nv_inference_pending_request_count`` is the scheduler's queue length at scrape time (Triton
  raises it at enqueue and lowers it when the request is taken for execution);
  ``oipserve_batch_size`` is built from the statistics' ``batch_stats``.
* What statistics do not hold is recorded per request into a :class:`ModelObservations`, at the
  point where the dataplane records the statistics: failures by Triton's ``reason``
  (REJECTED, CANCELED, BACKEND, OTHER), the ``oipserve_*`` latency histograms, and — when
  ``--metrics-config`` asks for them — Triton's summaries and first-response histogram. Plain
  integer and float updates on the event loop; no locks, no label look-ups.

Merging across processes
------------------------
A scrape first takes a :class:`ScrapeData` — plain counters, histogram counts and window samples —
then renders it. With several worker processes, each worker's :class:`ScrapeData` is merged
(:meth:`ScrapeData.merge`: counters and histogram buckets add up, summary quantiles are computed
from the pooled window samples), and host-wide gauges (CPU, memory) are read once by the process
that renders, not summed.

Sources: triton-inference-server/core ``src/metrics.cc`` (family names and help texts),
``src/metric_model_reporter.cc`` (labels ``model`` and ``version``; failures by ``reason``;
``--metrics-config`` keys ``counter_latencies``, ``summary_latencies``, ``summary_quantiles``,
``histogram_latencies``; default quantiles and first-response buckets), ``src/infer_stats.cc``
(what each counter adds per request) and server ``docs/user_guide/metrics.md``.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Final, Literal

from oipserve.errors import DeadlineExceeded, InternalError, OIPServeError, QueueFull
from oipserve.observability import host
from oipserve.observability.custom import CustomFamilyData, merge_custom
from oipserve.observability.exposition import Family, label_text, write
from oipserve.observability.windows import Histogram, SlidingWindow, quantiles

# -- configuration (Triton's --metrics-config) ---------------------------------------------------

DEFAULT_QUANTILES: Final = ((0.5, 0.05), (0.9, 0.01), (0.95, 0.001), (0.99, 0.001), (0.999, 0.001))
"""Triton's default ``summary_quantiles`` (``MetricReporterConfig::quantiles_``): (quantile,
allowed error). Our windows keep the samples and compute quantiles exactly; the error is kept
only to echo the configuration."""
FIRST_RESPONSE_BUCKETS_MS: Final = (100.0, 500.0, 2000.0, 5000.0)
"""Triton's default buckets of ``nv_inference_first_response_histogram_ms``."""


@dataclass(frozen=True, slots=True)
class MetricsConfig:
    """Triton's ``--metrics-config <setting>=<value>`` settings (repeatable)."""

    counter_latencies: bool = True
    """The ``nv_inference_*_duration_us`` counters (``counter_latencies=false`` removes them)."""
    summary_latencies: bool = False
    """The ``nv_inference_*_summary_us`` summaries, quantiles over a sliding 60 s window."""
    summary_quantiles: tuple[tuple[float, float], ...] = DEFAULT_QUANTILES
    histogram_latencies: bool = False
    """``nv_inference_first_response_histogram_ms``."""

    @classmethod
    def parse(cls, settings: Iterable[str]) -> MetricsConfig:
        """``["summary_latencies=true", "summary_quantiles=0.5:0.05,0.9:0.01"]`` → config.

        Raises :class:`ValueError` naming the setting for anything Triton's parser refuses (no
        ``=``, a ``<name>,`` prefix, an empty side) and, stricter than Triton, for an unknown
        setting, a boolean that is not ``true``/``false`` or a quantile that does not parse.
        """
        config = cls()
        for setting in settings:
            key, sep, value = setting.partition("=")
            key, value = key.strip(), value.strip()
            if not sep or not key or not value or "," in key:
                raise ValueError(
                    f"--metrics-config option format is <setting>=<value>. Got {setting}"
                )
            if key in ("counter_latencies", "summary_latencies", "histogram_latencies"):
                if value not in ("true", "false"):
                    raise ValueError(f"--metrics-config {key} must be true or false, not {value!r}")
                flags: dict[str, Any] = {key: value == "true"}
                config = replace(config, **flags)
            elif key == "summary_quantiles":
                config = replace(config, summary_quantiles=_parse_quantiles(value))
            else:
                raise ValueError(
                    f"unknown --metrics-config setting {key!r} (known: counter_latencies, "
                    "summary_latencies, summary_quantiles, histogram_latencies)"
                )
        return config


def _parse_quantiles(text: str) -> tuple[tuple[float, float], ...]:
    pairs: list[tuple[float, float]] = []
    for item in text.split(","):
        quantile, sep, error = item.strip().partition(":")
        try:
            if not sep:
                raise ValueError
            pair = (float(quantile), float(error))
        except ValueError:
            raise ValueError(
                f"--metrics-config summary_quantiles: invalid option [{item}]; expected "
                "<quantile>:<error>[,<quantile>:<error>...]"
            ) from None
        if not 0 <= pair[0] <= 1 or not 0 <= pair[1] <= 1:
            raise ValueError(
                f"--metrics-config summary_quantiles: [{item}] needs values between 0 and 1"
            )
        pairs.append(pair)
    return tuple(pairs)


# -- failure reasons -----------------------------------------------------------------------------

FailureReason = Literal["REJECTED", "CANCELED", "BACKEND", "OTHER"]
FAILURE_REASONS: Final[tuple[FailureReason, ...]] = ("REJECTED", "CANCELED", "BACKEND", "OTHER")


def failure_reason(error: BaseException) -> FailureReason:
    """Triton's ``reason`` label for a failed request (core ``src/infer_stats.cc``): REJECTED for
    a full queue or a passed deadline, CANCELED for a client that went away, BACKEND for a model
    that raised or answered wrongly, OTHER for everything else (bad input, an unloading model)."""
    if isinstance(error, QueueFull | DeadlineExceeded):
        return "REJECTED"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELED"
    if isinstance(error, InternalError):
        return "BACKEND"
    if isinstance(error, OIPServeError) and getattr(error, "from_model", False):
        return "BACKEND"
    return "OTHER"


# -- what a model version records per request ----------------------------------------------------

LATENCY_BUCKETS_S: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0
)  # fmt: skip
"""Buckets of ``oipserve_request_duration_seconds`` and ``oipserve_queue_duration_seconds``."""
BATCH_SIZE_BUCKETS: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0)

SUMMARY_PHASES: Final = ("request", "queue", "compute_input", "compute_infer", "compute_output")


class ModelObservations:
    """What the metrics record per request of one model version, beside its statistics."""

    __slots__ = (
        "failures",
        "first_response_ms",
        "load_seconds",
        "queue_s",
        "request_s",
        "summaries",
    )

    def __init__(self, config: MetricsConfig, clock: Callable[[], float] | None = None) -> None:
        self.failures: dict[str, int] = dict.fromkeys(FAILURE_REASONS, 0)
        self.request_s = Histogram(LATENCY_BUCKETS_S)
        self.queue_s = Histogram(LATENCY_BUCKETS_S)
        self.summaries: dict[str, SlidingWindow] | None = None
        if config.summary_latencies:
            kwargs: dict[str, Any] = {} if clock is None else {"clock": clock}
            self.summaries = {phase: SlidingWindow(**kwargs) for phase in SUMMARY_PHASES}
        self.first_response_ms = (
            Histogram(FIRST_RESPONSE_BUCKETS_MS) if config.histogram_latencies else None
        )
        self.load_seconds = 0.0
        """How long the version took to load (``nv_model_load_duration_secs``)."""

    def success(
        self,
        request_ns: int,
        queue_ns: int,
        input_ns: int,
        infer_ns: int,
        output_ns: int,
        first_response_ns: int | None = None,
    ) -> None:
        """One request answered, with the times its statistics record; ``first_response_ns``:
        request start to its first response, for a stream (None: ``request_ns``, a unary
        request's one response being its first)."""
        self.request_s.observe(request_ns / 1e9)
        self.queue_s.observe(queue_ns / 1e9)
        summaries = self.summaries
        if summaries is not None:
            # Triton observes each phase as integer microseconds (infer_stats.cc)
            summaries["request"].observe(request_ns // 1000)
            summaries["queue"].observe(queue_ns // 1000)
            summaries["compute_input"].observe(input_ns // 1000)
            summaries["compute_infer"].observe(infer_ns // 1000)
            summaries["compute_output"].observe(output_ns // 1000)
        if self.first_response_ms is not None:
            first = request_ns if first_response_ns is None else first_response_ns
            self.first_response_ms.observe(first / 1e6)

    def failure(self, reason: FailureReason) -> None:
        self.failures[reason] += 1


# -- scrape data (plain, mergeable) --------------------------------------------------------------


@dataclass(slots=True)
class SummaryData:
    count: int
    sum: float
    samples: list[float]


@dataclass(slots=True)
class ModelData:
    """One model version's numbers at scrape time."""

    name: str
    version: str
    success: int = 0
    inference_count: int = 0
    execution_count: int = 0
    request_ns: int = 0
    queue_ns: int = 0
    compute_input_ns: int = 0
    compute_infer_ns: int = 0
    compute_output_ns: int = 0
    failures: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FAILURE_REASONS, 0))
    pending: int = 0
    load_seconds: float = 0.0
    request_s: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    queue_s: Histogram = field(default_factory=lambda: Histogram(LATENCY_BUCKETS_S))
    batch_size: Histogram = field(default_factory=lambda: Histogram(BATCH_SIZE_BUCKETS))
    summaries: dict[str, SummaryData] | None = None
    first_response_ms: Histogram | None = None

    @classmethod
    def take(
        cls,
        name: str,
        version: str,
        statistics: Mapping[str, Any],
        observations: ModelObservations,
        pending: int,
    ) -> ModelData:
        """From a statistics-extension ``model_stats`` entry and the version's observations."""
        stats = statistics["inference_stats"]
        batch_size = Histogram(BATCH_SIZE_BUCKETS)
        for entry in statistics["batch_stats"]:
            batch_size.add_counts(float(entry["batch_size"]), entry["compute_infer"]["count"])
        summaries = None
        if observations.summaries is not None:
            summaries = {
                phase: SummaryData(window.count, window.sum, window.samples())
                for phase, window in observations.summaries.items()
            }
        first = observations.first_response_ms
        return cls(
            name=name,
            version=version,
            success=stats["success"]["count"],
            inference_count=statistics["inference_count"],
            execution_count=statistics["execution_count"],
            request_ns=stats["success"]["ns"],
            queue_ns=stats["queue"]["ns"],
            compute_input_ns=stats["compute_input"]["ns"],
            compute_infer_ns=stats["compute_infer"]["ns"],
            compute_output_ns=stats["compute_output"]["ns"],
            failures=dict(observations.failures),
            pending=pending,
            load_seconds=observations.load_seconds,
            request_s=observations.request_s.copy(),
            queue_s=observations.queue_s.copy(),
            batch_size=batch_size,
            summaries=summaries,
            first_response_ms=first.copy() if first is not None else None,
        )

    def merge(self, other: ModelData) -> None:
        """Add ``other`` (the same version in another worker) into this one."""
        for attribute in (
            "success",
            "inference_count",
            "execution_count",
            "request_ns",
            "queue_ns",
            "compute_input_ns",
            "compute_infer_ns",
            "compute_output_ns",
            "pending",
        ):
            setattr(self, attribute, getattr(self, attribute) + getattr(other, attribute))
        for reason, count in other.failures.items():
            self.failures[reason] = self.failures.get(reason, 0) + count
        self.load_seconds = max(self.load_seconds, other.load_seconds)
        self.request_s.merge(other.request_s)
        self.queue_s.merge(other.queue_s)
        self.batch_size.merge(other.batch_size)
        if self.summaries is not None and other.summaries is not None:
            for phase, data in other.summaries.items():
                mine = self.summaries[phase]
                mine.count += data.count
                mine.sum += data.sum
                mine.samples.extend(data.samples)
        if self.first_response_ms is not None and other.first_response_ms is not None:
            self.first_response_ms.merge(other.first_response_ms)


@dataclass(slots=True)
class ScrapeData:
    """Everything one scrape shows except host-wide gauges; merge several workers' with
    :meth:`merge`."""

    models: list[ModelData] = field(default_factory=list)
    states: list[tuple[str, str, str]] = field(default_factory=list)
    """(model, version, state) of every version the repository index knows."""
    http: dict[tuple[str, str, str], int] = field(default_factory=dict)
    """(route, method, status) → requests."""
    grpc: dict[tuple[str, str], int] = field(default_factory=dict)
    """(rpc, code) → calls."""
    custom: list[CustomFamilyData] = field(default_factory=list)

    def merge(self, other: ScrapeData) -> None:
        mine = {(m.name, m.version): m for m in self.models}
        for model in other.models:
            existing = mine.get((model.name, model.version))
            if existing is None:
                self.models.append(model)
                mine[(model.name, model.version)] = model
            else:
                existing.merge(model)
        known = set(self.states)
        self.states.extend(state for state in other.states if state not in known)
        for key, count in other.http.items():
            self.http[key] = self.http.get(key, 0) + count
        for grpc_key, count in other.grpc.items():
            self.grpc[grpc_key] = self.grpc.get(grpc_key, 0) + count
        self.custom = merge_custom(self.custom, other.custom)


# -- transports ----------------------------------------------------------------------------------


class TransportCounters:
    """Requests per HTTP route and status and per gRPC method and code (plain dict increments)."""

    __slots__ = ("grpc", "http")

    def __init__(self) -> None:
        self.http: dict[tuple[str, str, str], int] = {}
        self.grpc: dict[tuple[str, str], int] = {}

    def http_request(self, route: str, method: str, status: int) -> None:
        key = (route, method, str(status))
        self.http[key] = self.http.get(key, 0) + 1

    def grpc_call(self, rpc: str, code: str) -> None:
        key = (rpc, code)
        self.grpc[key] = self.grpc.get(key, 0) + 1


# -- rendering -----------------------------------------------------------------------------------

MODEL_STATES: Final = ("UNKNOWN", "LOADING", "READY", "UNAVAILABLE", "UNLOADING")

# (family name, help, statistics attribute) of the latency counters, as in core src/metrics.cc
_DURATION_COUNTERS: Final = (
    (
        "nv_inference_request_duration_us",
        "Cumulative inference request duration in microseconds (includes cached requests)",
        "request_ns",
    ),
    (
        "nv_inference_queue_duration_us",
        "Cumulative inference queuing duration in microseconds (includes cached requests)",
        "queue_ns",
    ),
    (
        "nv_inference_compute_input_duration_us",
        "Cumulative compute input duration in microseconds (does not include cached requests)",
        "compute_input_ns",
    ),
    (
        "nv_inference_compute_infer_duration_us",
        "Cumulative compute inference duration in microseconds (does not include cached requests)",
        "compute_infer_ns",
    ),
    (
        "nv_inference_compute_output_duration_us",
        "Cumulative inference compute output duration in microseconds (does not include cached "
        "requests)",
        "compute_output_ns",
    ),
)
_SUMMARIES: Final = (
    (
        "nv_inference_request_summary_us",
        "Summary of inference request duration in microseconds (includes cached requests)",
        "request",
    ),
    (
        "nv_inference_queue_summary_us",
        "Summary of inference queuing duration in microseconds (includes cached requests)",
        "queue",
    ),
    (
        "nv_inference_compute_input_summary_us",
        "Cumulative compute input duration in microseconds (does not include cached requests)",
        "compute_input",
    ),
    (
        "nv_inference_compute_infer_summary_us",
        "Cumulative compute inference duration in microseconds (does not include cached requests)",
        "compute_infer",
    ),
    (
        "nv_inference_compute_output_summary_us",
        "Cumulative inference compute output duration in microseconds (does not include cached "
        "requests)",
        "compute_output",
    ),
)

NV_FAMILIES: Final = (
    "nv_inference_request_success",
    "nv_inference_request_failure",
    "nv_inference_count",
    "nv_inference_exec_count",
    "nv_inference_pending_request_count",
    "nv_model_load_duration_secs",
    *(name for name, _, _ in _DURATION_COUNTERS),
    *(name for name, _, _ in _SUMMARIES),
    "nv_inference_first_response_histogram_ms",
    "nv_cpu_utilization",
    "nv_cpu_memory_total_bytes",
    "nv_cpu_memory_used_bytes",
)
"""Every ``nv_*`` family oipserve can expose (docs/metrics.md lists each)."""


def _model_labels(model: ModelData) -> str:
    return label_text((("model", model.name), ("version", model.version)))


def _histogram(family: Family, labels: str, histogram: Histogram) -> None:
    """Buckets, sum and count under the already rendered ``labels``."""
    prefix = f"{labels}," if labels else ""
    for bound, count in histogram.cumulative():
        family.add_text(f'{prefix}le="{_le(bound)}"', count, "_bucket")
    family.add_text(labels, histogram.sum, "_sum")
    family.add_text(labels, histogram.count, "_count")


_LE: dict[float, str] = {}


def _le(bound: float) -> str:
    text = _LE.get(bound)
    if text is None:
        if math.isinf(bound):
            text = "+Inf"
        else:
            text = str(int(bound)) if float(bound).is_integer() else repr(float(bound))
        _LE[bound] = text
    return text


def nv_families(
    data: ScrapeData, config: MetricsConfig, host_sample: host.HostSample | None
) -> list[Family]:
    """Triton's families for ``data`` (and the host gauges when ``host_sample`` is given)."""
    success = Family(
        "nv_inference_request_success",
        "Number of successful inference requests, all batch sizes",
        "counter",
    )
    failure = Family(
        "nv_inference_request_failure",
        "Number of failed inference requests, all batch sizes",
        "counter",
    )
    count = Family(
        "nv_inference_count",
        "Number of inferences performed (does not include cached requests)",
        "counter",
    )
    executions = Family(
        "nv_inference_exec_count",
        "Number of model executions performed (does not include cached requests)",
        "counter",
    )
    pending = Family(
        "nv_inference_pending_request_count",
        "Instantaneous number of pending requests awaiting execution per-model.",
        "gauge",
    )
    load = Family("nv_model_load_duration_secs", "Model load time in seconds", "gauge")
    durations = [Family(name, text, "counter") for name, text, _ in _DURATION_COUNTERS]
    summaries = [Family(name, text, "summary") for name, text, _ in _SUMMARIES]
    first = Family(
        "nv_inference_first_response_histogram_ms",
        "Duration from request to first response in milliseconds",
        "histogram",
    )
    wanted = [q for q, _ in config.summary_quantiles]
    for model in data.models:
        labels = _model_labels(model)
        success.add_text(labels, model.success)
        for reason in FAILURE_REASONS:
            failure.add_text(f'{labels},reason="{reason}"', model.failures.get(reason, 0))
        count.add_text(labels, model.inference_count)
        executions.add_text(labels, model.execution_count)
        pending.add_text(labels, model.pending)
        load.add_text(labels, model.load_seconds)
        if config.counter_latencies:
            for family, (_, _, attribute) in zip(durations, _DURATION_COUNTERS, strict=True):
                family.add_text(labels, getattr(model, attribute) // 1000)
        if config.summary_latencies and model.summaries is not None:
            for family, (_, _, phase) in zip(summaries, _SUMMARIES, strict=True):
                summary = model.summaries[phase]
                family.add_text(labels, summary.count, "_count")
                family.add_text(labels, summary.sum, "_sum")
                for q, value in zip(wanted, quantiles(summary.samples, wanted), strict=True):
                    family.add_text(f'{labels},quantile="{_le(q)}"', value)
        if config.histogram_latencies and model.first_response_ms is not None:
            _histogram(first, labels, model.first_response_ms)
    families = [success, failure, count, executions, pending, load]
    if config.counter_latencies:
        families.extend(durations)
    if config.summary_latencies:
        families.extend(summaries)
    if config.histogram_latencies:
        families.append(first)
    if host_sample is not None:
        families.extend(_host_families(host_sample))
    return families


def _host_families(sample: host.HostSample) -> Iterator[Family]:
    utilization = Family("nv_cpu_utilization", "CPU utilization rate [0.0 - 1.0]", "gauge")
    utilization.add((), sample.cpu_utilization)
    total = Family("nv_cpu_memory_total_bytes", "CPU total memory (RAM), in bytes", "gauge")
    total.add((), sample.memory_total_bytes)
    used = Family("nv_cpu_memory_used_bytes", "CPU used memory (RAM), in bytes", "gauge")
    used.add((), sample.memory_used_bytes)
    yield from (utilization, total, used)


def oipserve_families(data: ScrapeData) -> list[Family]:
    """oipserve's own families, named by Prometheus' conventions (``_total`` counters, base
    units). Written by our writer too: prometheus-client's ``generate_latest`` took 59 ms for the
    ~5,000 samples of 100 models on the shared CI machine, ours ~10 ms (the 50 ms scrape budget)."""
    request = Family(
        "oipserve_request_duration_seconds",
        "Time from a request's arrival at the model to its answer (successful requests).",
        "histogram",
    )
    queue = Family(
        "oipserve_queue_duration_seconds",
        "Time successful requests waited in the model's queue.",
        "histogram",
    )
    batch = Family(
        "oipserve_batch_size", "Batch size (elements) of each model execution.", "histogram"
    )
    for model in data.models:
        labels = _model_labels(model)
        _histogram(request, labels, model.request_s)
        _histogram(queue, labels, model.queue_s)
        _histogram(batch, labels, model.batch_size)
    state = Family(
        "oipserve_model_state",
        "1 for the state each model version is in (UNKNOWN, LOADING, READY, UNAVAILABLE, "
        "UNLOADING), 0 for the others.",
        "gauge",
    )
    for name, version, current in data.states:
        labels = label_text((("model", name), ("version", version)))
        for candidate in MODEL_STATES:
            state.add_text(f'{labels},state="{candidate}"', 1 if candidate == current else 0)
    http = Family(
        "oipserve_http_requests_total",
        "HTTP requests answered, by route, method and status code.",
        "counter",
    )
    for (route, method, status), total in sorted(data.http.items()):
        http.add((("route", route), ("method", method), ("status", status)), total)
    grpc = Family(
        "oipserve_grpc_requests_total", "gRPC calls answered, by method and status code.", "counter"
    )
    for (rpc, code), total in sorted(data.grpc.items()):
        grpc.add((("method", rpc), ("code", code)), total)
    return [request, queue, batch, state, http, grpc]


# -- the whole scrape ----------------------------------------------------------------------------


class Metrics:
    """The server's metrics: configuration, per-transport counters, host gauges, rendering.

    The dataplane creates one :class:`ModelObservations` per loaded version through
    :meth:`observations` and records into it; a scrape gathers a :class:`ScrapeData` (the
    dataplane knows the models) and calls :meth:`render`.
    """

    def __init__(self, config: MetricsConfig | None = None, *, host_metrics: bool = True) -> None:
        self.config = config or MetricsConfig()
        self.transport = TransportCounters()
        self.host = host.HostSampler() if host_metrics else None

    def observations(self) -> ModelObservations:
        return ModelObservations(self.config)

    def render(self, data: ScrapeData) -> str:
        """The exposition: Triton's families, models' own families, then oipserve's."""
        host_sample = self.host.sample() if self.host is not None else None
        parts = [
            write(nv_families(data, self.config, host_sample)),
            write(family for custom in data.custom for family in custom.families()),
            write(oipserve_families(data)),
        ]
        return "".join(parts)


def with_transport(data: ScrapeData, transport: TransportCounters) -> ScrapeData:
    data.http = dict(transport.http)
    data.grpc = dict(transport.grpc)
    return data


def sorted_models(models: Sequence[ModelData]) -> list[ModelData]:
    return sorted(models, key=lambda m: (m.name, int(m.version) if m.version.isdigit() else 0))


__all__ = [
    "DEFAULT_QUANTILES",
    "FAILURE_REASONS",
    "FIRST_RESPONSE_BUCKETS_MS",
    "NV_FAMILIES",
    "FailureReason",
    "Metrics",
    "MetricsConfig",
    "ModelData",
    "ModelObservations",
    "ScrapeData",
    "TransportCounters",
    "failure_reason",
    "nv_families",
    "oipserve_families",
    "sorted_models",
    "with_transport",
]
