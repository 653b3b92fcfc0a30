"""ModelStatistics: the exact §3.3 JSON shape, and what the scheduler measures for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence

import numpy as np

from oipserve.model import InferRequest, InferResponse, InferResult
from oipserve.scheduling.batcher import BatchPolicy, Scheduler
from oipserve.scheduling.clock import FakeClock
from oipserve.scheduling.statistics import ModelStatistics, RequestTiming

PAIRS = (
    "success",
    "fail",
    "queue",
    "compute_input",
    "compute_infer",
    "compute_output",
    "cache_hit",
    "cache_miss",
)


def zero() -> dict[str, int]:
    return {"count": 0, "ns": 0}


def test_empty_snapshot_has_every_key_of_the_protocol() -> None:
    snapshot = ModelStatistics().snapshot("simple", "1")
    assert snapshot == {
        "name": "simple",
        "version": "1",
        "last_inference": 0,
        "inference_count": 0,
        "execution_count": 0,
        "inference_stats": {pair: zero() for pair in PAIRS},
        "response_stats": {},
        "batch_stats": [],
        "memory_usage": [],
    }
    assert list(snapshot["inference_stats"]) == list(PAIRS)
    assert json.loads(json.dumps(snapshot)) == snapshot  # plain JSON data


def test_recorded_values_land_in_the_right_pairs() -> None:
    stats = ModelStatistics(wall_clock_ms=lambda: 1_712_345_678_901)
    stats.record_execution(64, 90_000, compute_input_ns=7, compute_output_ns=9)
    for input_ns in (2000, 1000):
        stats.record_success(
            elements=32,
            request_ns=1000,
            queue_ns=100,
            compute_infer_ns=90_000,
            compute_input_ns=input_ns,
            compute_output_ns=1500,
        )
    stats.record_failure(500)
    stats.record_cache_hit(11)
    stats.record_cache_miss(13)
    stats.record_execution(1, 10)
    stats.record_execution(64, 10_000)

    snapshot = stats.snapshot("simple", "3")
    assert snapshot["last_inference"] == 1_712_345_678_901
    assert snapshot["inference_count"] == 64
    assert snapshot["execution_count"] == 3
    assert snapshot["inference_stats"] == {
        "success": {"count": 2, "ns": 2000},
        "fail": {"count": 1, "ns": 500},
        "queue": {"count": 2, "ns": 200},
        "compute_input": {"count": 2, "ns": 3000},
        "compute_infer": {"count": 2, "ns": 180_000},
        "compute_output": {"count": 2, "ns": 3000},
        "cache_hit": {"count": 1, "ns": 11},
        "cache_miss": {"count": 1, "ns": 13},
    }
    assert snapshot["batch_stats"] == [
        {
            "batch_size": 1,
            "compute_input": {"count": 1, "ns": 0},
            "compute_infer": {"count": 1, "ns": 10},
            "compute_output": {"count": 1, "ns": 0},
        },
        {
            "batch_size": 64,
            "compute_input": {"count": 2, "ns": 7},
            "compute_infer": {"count": 2, "ns": 100_000},
            "compute_output": {"count": 2, "ns": 9},
        },
    ]


def test_failure_alone_sets_last_inference_but_no_counts() -> None:
    stats = ModelStatistics(wall_clock_ms=lambda: 42)
    stats.record_failure(7)
    snapshot = stats.snapshot("m", "1")
    assert snapshot["last_inference"] == 42
    assert snapshot["inference_count"] == 0
    assert snapshot["execution_count"] == 0
    assert snapshot["inference_stats"]["fail"] == {"count": 1, "ns": 7}
    assert snapshot["inference_stats"]["success"] == zero()


def test_scheduler_times_each_request_and_records_only_executions() -> None:
    async def body() -> None:
        clock = FakeClock()
        gates: list[asyncio.Event] = []

        async def execute(requests: list[InferRequest]) -> Sequence[InferResult]:
            gate = asyncio.Event()
            gates.append(gate)
            await gate.wait()
            clock.advance(1000)  # every execution takes 1000 ns
            return [InferResponse({"y": r.inputs["x"]}) for r in requests]

        stats = ModelStatistics(wall_clock_ms=lambda: 99)
        scheduler = Scheduler(
            "m",
            execute,
            BatchPolicy(max_batch_size=8, dynamic=True),
            statistics=stats,
            clock=clock,
        )
        timings = [RequestTiming() for _ in range(3)]

        def submit(rows: int) -> asyncio.Task[InferResponse]:
            request = InferRequest({"x": np.zeros((rows, 2), np.float32)})
            return asyncio.create_task(scheduler.submit(request, timing=timings[rows - 1]))

        first = submit(1)
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(300)  # "first" computes; the next two wait in the queue
        rest = [submit(rows) for rows in (2, 3)]
        for _ in range(5):
            await asyncio.sleep(0)
        clock.advance(200)
        gates[0].set()
        for _ in range(10):
            await asyncio.sleep(0)
        gates[1].set()
        await asyncio.gather(first, *rest)

        # "first" ran at once; the other two were queued at t=300 and dispatched at t=1500, and
        # each request carries its whole batch's execute time, as Triton counts it
        measured = [(t.elements, t.queue_ns, t.compute_infer_ns, t.request_ns) for t in timings]
        assert measured == [(1, 0, 1500, 1500), (2, 1200, 1000, 2200), (3, 1200, 1000, 2200)]
        snapshot = stats.snapshot("m", "1")
        # requests are recorded by the caller (the dataplane), executions by the scheduler
        assert snapshot["inference_stats"]["success"] == zero()
        assert snapshot["inference_count"] == 0
        assert snapshot["execution_count"] == 2
        assert [(b["batch_size"], b["compute_infer"]) for b in snapshot["batch_stats"]] == [
            (1, {"count": 1, "ns": 1500}),
            (5, {"count": 1, "ns": 1000}),
        ]

    asyncio.run(body())


def test_a_fault_while_recording_still_answers_every_caller() -> None:
    class Exploding(ModelStatistics):
        def record_execution(
            self,
            batch_size: int,
            compute_infer_ns: int,
            *,
            compute_input_ns: int = 0,
            compute_output_ns: int = 0,
        ) -> None:
            raise RuntimeError("counter bug")

    async def body() -> None:
        gate = asyncio.Event()

        async def execute(requests: list[InferRequest]) -> Sequence[InferResult]:
            await gate.wait()
            return [InferResponse({}) for _ in requests]

        stats = Exploding()
        scheduler = Scheduler(
            "m", execute, BatchPolicy(max_batch_size=4, dynamic=True), statistics=stats
        )
        tasks = [
            asyncio.create_task(scheduler.submit(InferRequest({"x": np.zeros((1, 1))})))
            for _ in range(3)
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        gate.set()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all("RuntimeError: counter bug" in str(r) for r in results)
        assert scheduler.queued() == 0

    asyncio.run(body())


def test_one_success_record_moves_every_request_count_together() -> None:
    """What the dataplane records: a snapshot never shows compute counts that differ (perf_analyzer
    aborts with "Server side statistics compute counts must be the same")."""
    stats = ModelStatistics()
    stats.record_success(
        elements=2,
        request_ns=1000,
        queue_ns=100,
        compute_infer_ns=700,
        compute_input_ns=50,
        compute_output_ns=150,
    )
    inference = stats.snapshot("m", "1")["inference_stats"]
    counts = {pair: inference[pair]["count"] for pair in PAIRS[:6] if pair != "fail"}
    assert counts == dict.fromkeys(counts, 1)
    assert inference["compute_input"] == {"count": 1, "ns": 50}
    assert inference["compute_output"] == {"count": 1, "ns": 150}
