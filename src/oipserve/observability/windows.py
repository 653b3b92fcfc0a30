"""The two kinds of sample storage behind the latency metrics, both plain data that can be merged
across worker processes: fixed-bucket histograms and sliding-window quantile summaries.

Histogram (``le`` buckets) as Prometheus defines it: a sample ``v`` counts in every bucket whose
bound is ``>= v``; merging two is adding their counts.

:class:`SlidingWindow` is the sliding window behind Triton's summaries: Triton builds them with
prometheus-cpp's ``Summary`` and its defaults, a 60 s window aged in 5 steps
(triton-inference-server/core ``src/metric_model_reporter.cc``, ``InitializeSummaries``). We keep
the samples themselves (each of the 5 age buckets holds at most :data:`BUCKET_CAPACITY`, a
uniform reservoir beyond that) and compute each quantile exactly over what is kept, so windows of
several workers merge by concatenating samples. An empty window answers NaN, as prometheus-cpp's
does.
"""

from __future__ import annotations

import math
import random
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence

WINDOW_SECONDS = 60.0
"""prometheus-cpp ``Summary``'s default ``max_age``."""
AGE_BUCKETS = 5
"""prometheus-cpp ``Summary``'s default ``age_buckets``."""
BUCKET_CAPACITY = 4096
"""Samples kept per age bucket; beyond it a uniform reservoir (memory stays bounded under load)."""


class Histogram:
    """Cumulative ``le`` buckets, their sum and count."""

    __slots__ = ("bounds", "count", "counts", "sum")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(sorted(bounds))
        self.counts = [0] * (len(self.bounds) + 1)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.sum += value
        self.count += 1

    def add_counts(self, value: float, times: int) -> None:
        """``times`` observations of ``value`` at once."""
        self.counts[bisect_left(self.bounds, value)] += times
        self.sum += value * times
        self.count += times

    def cumulative(self) -> list[tuple[float, int]]:
        """``(le bound, cumulative count)`` pairs, ending with ``(+inf, count)``."""
        pairs: list[tuple[float, int]] = []
        running = 0
        for bound, count in zip((*self.bounds, math.inf), self.counts, strict=True):
            running += count
            pairs.append((bound, running))
        return pairs

    def copy(self) -> Histogram:
        other = Histogram(self.bounds)
        other.counts = list(self.counts)
        other.sum = self.sum
        other.count = self.count
        return other

    def merge(self, other: Histogram) -> None:
        if other.bounds != self.bounds:
            raise ValueError("histograms with different buckets cannot be merged")
        self.counts = [a + b for a, b in zip(self.counts, other.counts, strict=True)]
        self.sum += other.sum
        self.count += other.count


class SlidingWindow:
    """Quantiles over the last :data:`WINDOW_SECONDS` of observations, and the all-time sum and
    count a Prometheus summary also reports."""

    __slots__ = ("_buckets", "_clock", "_rotated_at", "_seen", "_step", "count", "sum")

    def __init__(
        self,
        *,
        window_seconds: float = WINDOW_SECONDS,
        age_buckets: int = AGE_BUCKETS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._step = window_seconds / age_buckets
        self._buckets: list[list[float]] = [[] for _ in range(age_buckets)]
        self._seen = [0] * age_buckets  # observations offered to each bucket (for the reservoir)
        self._rotated_at = clock()
        self.sum = 0.0
        self.count = 0

    def _rotate(self) -> None:
        now = self._clock()
        steps = int((now - self._rotated_at) // self._step)
        if steps <= 0:
            return
        for _ in range(min(steps, len(self._buckets))):
            self._buckets.pop(0)
            self._buckets.append([])
            self._seen.pop(0)
            self._seen.append(0)
        self._rotated_at += steps * self._step

    def observe(self, value: float) -> None:
        self.sum += value
        self.count += 1
        if self._clock() - self._rotated_at >= self._step:
            self._rotate()
        bucket = self._buckets[-1]
        self._seen[-1] += 1
        if len(bucket) < BUCKET_CAPACITY:
            bucket.append(value)
        else:
            slot = random.randrange(self._seen[-1])
            if slot < BUCKET_CAPACITY:
                bucket[slot] = value

    def samples(self) -> list[float]:
        """What the window holds now (the last 48 to 60 seconds)."""
        self._rotate()
        return [value for bucket in self._buckets for value in bucket]


def quantiles(samples: Iterable[float], wanted: Sequence[float]) -> list[float]:
    """The nearest-rank quantile of ``samples`` for each of ``wanted``; NaN when there are none."""
    ordered = sorted(samples)
    if not ordered:
        return [math.nan] * len(wanted)
    last = len(ordered) - 1
    return [ordered[min(last, max(0, math.ceil(q * len(ordered)) - 1))] for q in wanted]


__all__ = [
    "AGE_BUCKETS",
    "BUCKET_CAPACITY",
    "WINDOW_SECONDS",
    "Histogram",
    "SlidingWindow",
    "quantiles",
]
