"""Metrics a model publishes itself: counters, gauges and histograms with labels, exposed beside
the server's on ``/metrics`` exactly as named (no ``_total`` added).

What a model sees is ``ctx.metrics`` in ``load(ctx)``, a :class:`ModelMetrics`::

    def load(self, ctx):
        self.tokens = ctx.metrics.counter("my_tokens", "Tokens produced", labels=("kind",))
        self.latency = ctx.metrics.histogram("my_latency_seconds", "…", buckets=(0.01, 0.1, 1))

    def infer(self, requests):
        self.tokens.labels(kind="output").inc(42)
        self.latency.observe(0.03)          # a family without labels records directly

It plays the part of Triton's python_backend ``pb_utils.MetricFamily(name, description, kind)``
and ``family.Metric(labels=…)`` (``increment``, ``set``, ``observe``; triton-inference-server
python_backend README, "Custom Metrics"). As in Triton, the server adds ``model`` and ``version``
labels only where the family does not declare them itself (Triton's own custom-metrics example
sets both).

``infer`` may run on several executor threads at once: each series updates under its own lock.
The families live as long as the model version that registered them; a scrape after an unload no
longer shows them.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from oipserve.observability.exposition import (
    Family,
    label_text,
    valid_label_name,
    valid_metric_name,
)
from oipserve.observability.windows import Histogram

CustomKind = Literal["counter", "gauge", "histogram"]
DEFAULT_BUCKETS: Final = (
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0
)  # fmt: skip
"""prometheus-client's default histogram buckets."""
RESERVED_PREFIXES: Final = ("nv_", "oipserve_")
"""Family names the server's own metrics use; a model may not register under them."""

LabelValues = tuple[str, ...]


class _Series:
    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()


class CounterSeries(_Series):
    __slots__ = ("_value",)

    def __init__(self) -> None:
        super().__init__()
        self._value = 0.0

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up: inc() needs an amount >= 0")
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        return self._value


class GaugeSeries(_Series):
    __slots__ = ("_value",)

    def __init__(self) -> None:
        super().__init__()
        self._value = 0.0

    def set(self, value: float) -> None:
        with self._lock:
            self._value = float(value)

    def inc(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value += amount

    def dec(self, amount: float = 1.0) -> None:
        with self._lock:
            self._value -= amount

    @property
    def value(self) -> float:
        return self._value


class HistogramSeries(_Series):
    __slots__ = ("_histogram",)

    def __init__(self, buckets: Sequence[float]) -> None:
        super().__init__()
        self._histogram = Histogram(buckets)

    def observe(self, value: float) -> None:
        with self._lock:
            self._histogram.observe(value)

    def snapshot(self) -> Histogram:
        with self._lock:
            return self._histogram.copy()


Series = CounterSeries | GaugeSeries | HistogramSeries


class _Family:
    kind: CustomKind

    def __init__(self, name: str, description: str, labels: Sequence[str]) -> None:
        self.name = name
        self.description = description
        self.label_names = tuple(labels)
        self._series: dict[LabelValues, Series] = {}
        self._lock = threading.Lock()

    def _new_series(self) -> Series:
        raise NotImplementedError

    def _get(self, values: dict[str, str]) -> Series:
        if set(values) != set(self.label_names):
            raise ValueError(
                f"metric '{self.name}' has labels {list(self.label_names)}; got {sorted(values)}"
            )
        key = tuple(str(values[name]) for name in self.label_names)
        series = self._series.get(key)
        if series is None:
            with self._lock:
                series = self._series.setdefault(key, self._new_series())
        return series

    def series(self) -> list[tuple[LabelValues, Series]]:
        with self._lock:
            return list(self._series.items())


class CounterFamily(_Family):
    kind: CustomKind = "counter"

    def _new_series(self) -> Series:
        return CounterSeries()

    def labels(self, **values: str) -> CounterSeries:
        series = self._get(values)
        assert isinstance(series, CounterSeries)
        return series

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)


class GaugeFamily(_Family):
    kind: CustomKind = "gauge"

    def _new_series(self) -> Series:
        return GaugeSeries()

    def labels(self, **values: str) -> GaugeSeries:
        series = self._get(values)
        assert isinstance(series, GaugeSeries)
        return series

    def set(self, value: float) -> None:
        self.labels().set(value)

    def inc(self, amount: float = 1.0) -> None:
        self.labels().inc(amount)

    def dec(self, amount: float = 1.0) -> None:
        self.labels().dec(amount)


class HistogramFamily(_Family):
    kind: CustomKind = "histogram"

    def __init__(
        self, name: str, description: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> None:
        super().__init__(name, description, labels)
        if not buckets or any(math.isnan(b) for b in buckets):
            raise ValueError(f"histogram '{name}' needs at least one numeric bucket bound")
        self.buckets = tuple(sorted(float(b) for b in buckets if b != float("inf")))

    def _new_series(self) -> Series:
        return HistogramSeries(self.buckets)

    def labels(self, **values: str) -> HistogramSeries:
        series = self._get(values)
        assert isinstance(series, HistogramSeries)
        return series

    def observe(self, value: float) -> None:
        self.labels().observe(value)


AnyFamily = CounterFamily | GaugeFamily | HistogramFamily


class MetricNames:
    """Server-wide: which kind and help each custom family name has, so that two models agree."""

    def __init__(self) -> None:
        self._kinds: dict[str, tuple[CustomKind, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def claim(self, name: str, kind: CustomKind, label_names: tuple[str, ...]) -> None:
        with self._lock:
            known = self._kinds.get(name)
            if known is None:
                self._kinds[name] = (kind, label_names)
            elif known[0] != kind:
                raise ValueError(
                    f"metric '{name}' is already registered as a {known[0]}, not a {kind}"
                )


class ModelMetrics:
    """``ctx.metrics``: where one model version registers its own metric families."""

    def __init__(self, model: str, version: str, names: MetricNames | None = None) -> None:
        self.model = model
        self.version = version
        self._names = names if names is not None else MetricNames()
        self._families: dict[str, AnyFamily] = {}

    def counter(self, name: str, description: str, labels: Sequence[str] = ()) -> CounterFamily:
        family = self._register(CounterFamily(name, description, labels))
        assert isinstance(family, CounterFamily)
        return family

    def gauge(self, name: str, description: str, labels: Sequence[str] = ()) -> GaugeFamily:
        family = self._register(GaugeFamily(name, description, labels))
        assert isinstance(family, GaugeFamily)
        return family

    def histogram(
        self,
        name: str,
        description: str,
        labels: Sequence[str] = (),
        buckets: Sequence[float] = DEFAULT_BUCKETS,
    ) -> HistogramFamily:
        family = self._register(HistogramFamily(name, description, labels, buckets))
        assert isinstance(family, HistogramFamily)
        return family

    def _register(self, family: AnyFamily) -> AnyFamily:
        name = family.name
        if not valid_metric_name(name):
            raise ValueError(f"'{name}' is not a valid Prometheus metric name")
        if name.startswith(RESERVED_PREFIXES):
            raise ValueError(
                f"metric '{name}': names starting with {' or '.join(RESERVED_PREFIXES)} are the "
                "server's own"
            )
        if len(set(family.label_names)) != len(family.label_names):
            raise ValueError(f"metric '{name}' declares a label twice")
        for label in family.label_names:
            if not valid_label_name(label) or label in ("le", "quantile"):
                raise ValueError(f"metric '{name}': '{label}' is not a usable label name")
        existing = self._families.get(name)
        if existing is not None:
            if existing.kind != family.kind or existing.label_names != family.label_names:
                raise ValueError(f"metric '{name}' is already registered differently")
            return existing
        self._names.claim(name, family.kind, family.label_names)
        self._families[name] = family
        return family

    def data(self) -> list[CustomFamilyData]:
        """What a scrape shows of this version's families (``model``/``version`` added where the
        family does not declare them)."""
        extra: list[tuple[str, str]] = []
        result: list[CustomFamilyData] = []
        for family in self._families.values():
            extra = []
            if "model" not in family.label_names:
                extra.append(("model", self.model))
            if "version" not in family.label_names:
                extra.append(("version", self.version))
            data = CustomFamilyData(family.name, family.description, family.kind)
            for values, series in family.series():
                labels = (*zip(family.label_names, values, strict=True), *extra)
                if isinstance(series, HistogramSeries):
                    data.histograms[labels] = series.snapshot()
                else:
                    data.values[labels] = series.value
            result.append(data)
        return result


LabelSet = tuple[tuple[str, str], ...]


@dataclass(slots=True)
class CustomFamilyData:
    """One custom family's series at scrape time (plain data; merged by summing)."""

    name: str
    help: str
    kind: CustomKind
    values: dict[LabelSet, float] = field(default_factory=dict)
    histograms: dict[LabelSet, Histogram] = field(default_factory=dict)

    def add(self, other: CustomFamilyData) -> None:
        for labels, value in other.values.items():
            self.values[labels] = self.values.get(labels, 0.0) + value
        for labels, histogram in other.histograms.items():
            mine = self.histograms.get(labels)
            if mine is None:
                self.histograms[labels] = histogram.copy()
            else:
                mine.merge(histogram)

    def families(self) -> list[Family]:
        family = Family(self.name, self.help, self.kind)
        for labels, value in self.values.items():
            family.add(labels, value)
        for labels, histogram in self.histograms.items():
            text = label_text(labels)
            prefix = f"{text}," if text else ""
            for bound, count in histogram.cumulative():
                le = "+Inf" if bound == float("inf") else _bound(bound)
                family.add_text(f'{prefix}le="{le}"', count, "_bucket")
            family.add_text(text, histogram.sum, "_sum")
            family.add_text(text, histogram.count, "_count")
        return [family]


def _bound(bound: float) -> str:
    return str(int(bound)) if bound.is_integer() else repr(bound)


def merge_custom(*groups: Iterable[CustomFamilyData]) -> list[CustomFamilyData]:
    """One entry per family name, the series of every model version (or worker) in it."""
    merged: dict[str, CustomFamilyData] = {}
    for group in groups:
        for data in group:
            mine = merged.get(data.name)
            if mine is None:
                mine = merged[data.name] = CustomFamilyData(data.name, data.help, data.kind)
            mine.add(data)
    return list(merged.values())


__all__ = [
    "DEFAULT_BUCKETS",
    "RESERVED_PREFIXES",
    "CounterFamily",
    "CustomFamilyData",
    "GaugeFamily",
    "HistogramFamily",
    "MetricNames",
    "ModelMetrics",
    "merge_custom",
]
