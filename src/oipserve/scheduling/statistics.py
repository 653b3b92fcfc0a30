"""Per-model-version counters for Triton's statistics extension (PROTOCOL.md §3.3).

One :class:`ModelStatistics` per loaded model version. Every method is called from the event loop
only, so plain integer attributes suffice (no locks).

Who records what:

* the scheduler, per execution: ``execution_count`` and ``batch_stats`` for the executed batch
  size (in elements); it records nothing per request, but writes a successful request's times into
  the caller's :class:`RequestTiming`: ``success`` (submit → result), ``queue`` (submit →
  dispatch), ``compute_infer`` (the whole batch's execute time, as Triton attributes it to each
  request of the batch) and its batch elements;
* the dataplane, once per request, in one place (``DataPlane._record``): a success with those times
  plus its own decode (``compute_input``) and encode (``compute_output``) times, in one
  :meth:`ModelStatistics.record_success` call; a failure (bad input, model error, queue full,
  deadline passed, shut down) with :meth:`ModelStatistics.record_failure`. So — as in Triton —
  ``success``, ``queue``, ``compute_input``, ``compute_infer`` and ``compute_output`` always have
  the same count, even in a snapshot taken while requests are in flight (``perf_analyzer`` aborts
  when they differ). A response cache, once there is one: :meth:`record_cache_hit` /
  :meth:`record_cache_miss`.

A request whose client went away while it was queued is counted nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def _wall_ms() -> int:
    return time.time_ns() // 1_000_000


def _pair(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


class _BatchStats:
    __slots__ = ("count", "infer_ns", "input_ns", "output_ns")

    def __init__(self) -> None:
        self.count = 0
        self.input_ns = 0
        self.infer_ns = 0
        self.output_ns = 0


class RequestTiming:
    """The times of one successful request: the scheduler writes what it measured (elements,
    request, queue and compute-infer times), its caller adds decode and encode times and records
    the request once."""

    __slots__ = (
        "compute_infer_ns",
        "compute_input_ns",
        "compute_output_ns",
        "elements",
        "queue_ns",
        "request_ns",
    )

    def __init__(self) -> None:
        self.elements = 0
        self.request_ns = 0
        self.queue_ns = 0
        self.compute_infer_ns = 0
        self.compute_input_ns = 0
        self.compute_output_ns = 0


class ModelStatistics:
    """Cumulative statistics of one model version."""

    __slots__ = (
        "_batches",
        "_wall_ms",
        "cache_hit_count",
        "cache_hit_ns",
        "cache_miss_count",
        "cache_miss_ns",
        "compute_infer_count",
        "compute_infer_ns",
        "compute_input_count",
        "compute_input_ns",
        "compute_output_count",
        "compute_output_ns",
        "execution_count",
        "fail_count",
        "fail_ns",
        "inference_count",
        "last_inference",
        "queue_count",
        "queue_ns",
        "success_count",
        "success_ns",
    )

    def __init__(self, *, wall_clock_ms: Callable[[], int] = _wall_ms) -> None:
        self._wall_ms = wall_clock_ms
        self._batches: dict[int, _BatchStats] = {}
        self.last_inference = 0
        """Milliseconds since the epoch of the latest finished request (0 if none)."""
        self.inference_count = 0
        self.execution_count = 0
        self.success_count = 0
        self.success_ns = 0
        self.fail_count = 0
        self.fail_ns = 0
        self.queue_count = 0
        self.queue_ns = 0
        self.compute_input_count = 0
        self.compute_input_ns = 0
        self.compute_infer_count = 0
        self.compute_infer_ns = 0
        self.compute_output_count = 0
        self.compute_output_ns = 0
        self.cache_hit_count = 0
        self.cache_hit_ns = 0
        self.cache_miss_count = 0
        self.cache_miss_ns = 0

    # -- the dataplane (requests) and the scheduler (executions) -----------------------------

    def record_success(
        self,
        *,
        elements: int,
        request_ns: int,
        queue_ns: int,
        compute_infer_ns: int,
        compute_input_ns: int,
        compute_output_ns: int,
    ) -> None:
        """One request answered: ``elements`` batch elements and its times in nanoseconds. Every
        request count moves together, in this one call."""
        self.last_inference = self._wall_ms()
        self.inference_count += elements
        self.success_count += 1
        self.success_ns += request_ns
        self.queue_count += 1
        self.queue_ns += queue_ns
        self.compute_input_count += 1
        self.compute_input_ns += compute_input_ns
        self.compute_infer_count += 1
        self.compute_infer_ns += compute_infer_ns
        self.compute_output_count += 1
        self.compute_output_ns += compute_output_ns

    def record_failure(self, request_ns: int) -> None:
        """One request failed after ``request_ns`` nanoseconds in the server."""
        self.last_inference = self._wall_ms()
        self.fail_count += 1
        self.fail_ns += request_ns

    def record_execution(
        self,
        batch_size: int,
        compute_infer_ns: int,
        *,
        compute_input_ns: int = 0,
        compute_output_ns: int = 0,
    ) -> None:
        """One model execution of ``batch_size`` elements that returned its results."""
        self.execution_count += 1
        stats = self._batches.get(batch_size)
        if stats is None:
            stats = self._batches[batch_size] = _BatchStats()
        stats.count += 1
        stats.input_ns += compute_input_ns
        stats.infer_ns += compute_infer_ns
        stats.output_ns += compute_output_ns

    # -- a response cache (none yet) ---------------------------------------------------------

    def record_cache_hit(self, ns: int) -> None:
        self.cache_hit_count += 1
        self.cache_hit_ns += ns

    def record_cache_miss(self, ns: int) -> None:
        self.cache_miss_count += 1
        self.cache_miss_ns += ns

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self, name: str, version: str) -> dict[str, Any]:
        """One ``model_stats`` entry, exactly as PROTOCOL.md §3.3 shows it."""
        return {
            "name": name,
            "version": str(version),
            "last_inference": self.last_inference,
            "inference_count": self.inference_count,
            "execution_count": self.execution_count,
            "inference_stats": {
                "success": _pair(self.success_count, self.success_ns),
                "fail": _pair(self.fail_count, self.fail_ns),
                "queue": _pair(self.queue_count, self.queue_ns),
                "compute_input": _pair(self.compute_input_count, self.compute_input_ns),
                "compute_infer": _pair(self.compute_infer_count, self.compute_infer_ns),
                "compute_output": _pair(self.compute_output_count, self.compute_output_ns),
                "cache_hit": _pair(self.cache_hit_count, self.cache_hit_ns),
                "cache_miss": _pair(self.cache_miss_count, self.cache_miss_ns),
            },
            "response_stats": {},
            "batch_stats": [
                {
                    "batch_size": size,
                    "compute_input": _pair(stats.count, stats.input_ns),
                    "compute_infer": _pair(stats.count, stats.infer_ns),
                    "compute_output": _pair(stats.count, stats.output_ns),
                }
                for size, stats in sorted(self._batches.items())
            ],
            "memory_usage": [],
        }


def merge_statistics(answers: list[dict[str, Any]]) -> dict[str, Any]:
    """Several processes' statistics answers (``{"model_stats": [...]}``, as
    :meth:`ModelStatistics.snapshot` builds them) as one: per (model, version), every count and
    duration summed, ``last_inference`` the latest, ``batch_stats`` merged per batch size. Order:
    as first seen. The workers of ``--workers N`` answer with this."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for answer in answers:
        for entry in answer.get("model_stats", []):
            key = (entry["name"], entry["version"])
            into = merged.get(key)
            if into is None:
                merged[key] = _copy_entry(entry)
                continue
            into["last_inference"] = max(into["last_inference"], entry["last_inference"])
            into["inference_count"] += entry["inference_count"]
            into["execution_count"] += entry["execution_count"]
            _add_pairs(into["inference_stats"], entry["inference_stats"])
            sizes = {b["batch_size"]: b for b in into["batch_stats"]}
            for batch in entry["batch_stats"]:
                known = sizes.get(batch["batch_size"])
                if known is None:
                    sizes[batch["batch_size"]] = _copy_entry(batch)
                else:
                    _add_pairs(known, batch)
            into["batch_stats"] = [sizes[size] for size in sorted(sizes)]
    return {"model_stats": list(merged.values())}


def _copy_entry(entry: dict[str, Any]) -> dict[str, Any]:
    return {
        key: (
            _copy_entry(value)
            if isinstance(value, dict)
            else [_copy_entry(v) for v in value]
            if isinstance(value, list)
            else value
        )
        for key, value in entry.items()
    }


def _add_pairs(into: dict[str, Any], other: dict[str, Any]) -> None:
    """Add ``{"count", "ns"}`` pairs of ``other`` into ``into``, key by key."""
    for key, pair in other.items():
        if isinstance(pair, dict) and "count" in pair and key in into:
            into[key]["count"] += pair["count"]
            into[key]["ns"] += pair["ns"]


__all__ = ["ModelStatistics", "RequestTiming", "merge_statistics"]
