"""The scheduler, driven by a fake model (gated by events) and a fake clock: no real sleeps."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

import numpy as np
import pytest

from oipserve.errors import (
    DeadlineExceeded,
    InternalError,
    InvalidArgument,
    QueueFull,
    Unavailable,
)
from oipserve.model import InferRequest, InferResponse, InferResult
from oipserve.scheduling.batcher import BatchPolicy, Scheduler
from oipserve.scheduling.clock import MONOTONIC, FakeClock
from oipserve.scheduling.statistics import ModelStatistics, RequestTiming

Respond = Callable[[list[InferRequest]], Sequence[InferResult]]


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


async def settle(rounds: int = 20) -> None:
    """Let every ready callback and task run (no time passes)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


def req(name: str, rows: int = 1, width: int = 4) -> InferRequest:
    return InferRequest({"x": np.ones((rows, width), np.float32)}, id=name)


def double(requests: list[InferRequest]) -> Sequence[InferResult]:
    return [InferResponse({"y": r.inputs["x"] * 2}, {"id": r.id}) for r in requests]


class FakeModel:
    """Records each call's request ids; while ``hold`` is set, each call waits to be released."""

    def __init__(self, respond: Respond = double, clock: FakeClock | None = None) -> None:
        self.calls: list[list[str]] = []
        self.hold = False
        self.respond = respond
        self.clock = clock
        self.infer_ns = 0
        self._gates: list[asyncio.Event] = []

    async def __call__(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        self.calls.append([r.id for r in requests])
        if self.hold:
            gate = asyncio.Event()
            self._gates.append(gate)
            await gate.wait()
        if self.clock is not None and self.infer_ns:
            self.clock.advance(self.infer_ns)
        return self.respond(requests)

    def held(self) -> int:
        return len(self._gates)

    def release(self) -> None:
        """Let the oldest held call finish."""
        self._gates.pop(0).set()


class RecordingScheduler(Scheduler):
    """The scheduler as the dataplane drives it: each request's outcome is recorded once, by the
    caller — a success with the times the scheduler wrote into its :class:`RequestTiming` (unless
    the test passes its own timing), a failure from the error ``submit`` raised."""

    def __init__(self, *args: Any, clock: FakeClock, **kwargs: Any) -> None:
        super().__init__(*args, clock=clock, **kwargs)
        self.fake_clock = clock

    async def submit(
        self,
        request: InferRequest,
        *,
        priority: int = 0,
        timeout_us: int = 0,
        timing: RequestTiming | None = None,
    ) -> InferResponse:
        own = timing if timing is not None else RequestTiming()
        start = self.fake_clock.now_ns()
        try:
            response = await super().submit(
                request, priority=priority, timeout_us=timeout_us, timing=own
            )
        except asyncio.CancelledError:
            raise
        except Exception:
            self.statistics.record_failure(self.fake_clock.now_ns() - start)
            raise
        if timing is None:
            self.statistics.record_success(
                elements=own.elements,
                request_ns=own.request_ns,
                queue_ns=own.queue_ns,
                compute_infer_ns=own.compute_infer_ns,
                compute_input_ns=0,
                compute_output_ns=0,
            )
        return response


def make(model: FakeModel, clock: FakeClock, **policy: Any) -> tuple[Scheduler, ModelStatistics]:
    policy.setdefault("max_batch_size", 8)
    policy.setdefault("dynamic", True)
    stats = ModelStatistics(wall_clock_ms=lambda: 1_700_000_000_000)
    return RecordingScheduler(
        "m", model, BatchPolicy(**policy), statistics=stats, clock=clock
    ), stats


def submit(
    scheduler: Scheduler, request: InferRequest, *, priority: int = 0, timeout_us: int = 0
) -> asyncio.Task[InferResponse]:
    return asyncio.create_task(scheduler.submit(request, priority=priority, timeout_us=timeout_us))


# -- dispatch --------------------------------------------------------------------------------


def test_lone_request_runs_at_once_without_waiting_for_the_delay() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        scheduler, stats = make(model, clock, max_queue_delay_ns=10**9, preferred_batch_sizes=(8,))
        response = await scheduler.submit(req("a"))
        assert model.calls == [["a"]]
        assert response.parameters == {"id": "a"}
        np.testing.assert_array_equal(response.outputs["y"], np.full((1, 4), 2, np.float32))
        assert clock.now_ns() == 0  # nobody waited for the clock
        assert stats.queue_ns == 0
        assert scheduler.queued() == 0

    run(body)


def test_second_instance_runs_a_lone_request_at_once_without_a_delay() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, instance_count=2)
        a = submit(scheduler, req("a"))
        b = submit(scheduler, req("b"))
        await settle()
        assert model.calls == [["a"], ["b"]]  # two instances: both ran, no batching needed
        model.release()
        model.release()
        await asyncio.gather(a, b)

    run(body)


def test_batch_forms_from_requests_queued_while_busy() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, max_batch_size=4)
        tasks = [submit(scheduler, req("a"))]
        await settle()
        tasks += [submit(scheduler, req(name)) for name in "bcdef"]
        await settle()
        assert model.calls == [["a"]]
        assert scheduler.queued() == 5
        model.release()
        await settle()
        assert model.calls[1] == ["b", "c", "d", "e"]  # capped at max_batch_size, FIFO
        model.release()
        await settle()
        assert model.calls[2] == ["f"]
        model.release()
        responses = await asyncio.gather(*tasks)
        assert [r.parameters["id"] for r in responses] == list("abcdef")

    run(body)


def test_batch_is_counted_in_elements_and_never_exceeds_max_batch_size() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock, max_batch_size=8)
        tasks = [submit(scheduler, req("a", rows=3))]
        await settle()
        tasks += [submit(scheduler, req(n, rows=3)) for n in "bcde"]
        await settle()
        for _ in range(3):
            model.release()
            await settle()
        assert model.calls == [["a"], ["b", "c"], ["d", "e"]]  # 6 elements, never 9
        responses = await asyncio.gather(*tasks)
        assert all(r.outputs["y"].shape == (3, 4) for r in responses)
        assert stats.inference_count == 15
        assert stats.execution_count == 3
        assert [b["batch_size"] for b in stats.snapshot("m", "1")["batch_stats"]] == [3, 6]

    run(body)


def test_oversized_request_is_refused() -> None:
    async def body() -> None:
        model = FakeModel()
        scheduler, _ = make(model, FakeClock(), max_batch_size=4)
        with pytest.raises(InvalidArgument, match="batch-size must be <= 4"):
            await scheduler.submit(req("a", rows=5))
        assert model.calls == []

    run(body)


def test_largest_reachable_preferred_batch_size_is_sent() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, max_batch_size=8, preferred_batch_sizes=(2, 4))
        tasks = [submit(scheduler, req("a"))]
        await settle()
        tasks += [submit(scheduler, req(n)) for n in "bcdefgh"]
        await settle()
        for _ in range(3):
            model.release()
            await settle()
        # 7 waiting: the largest preferred size reachable is 4, then 2, then the last one alone
        assert model.calls == [["a"], ["b", "c", "d", "e"], ["f", "g"], ["h"]]
        model.release()
        await asyncio.gather(*tasks)

    run(body)


def test_delay_holds_a_request_for_company_only_while_another_batch_runs() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(
            model, clock, max_batch_size=4, max_queue_delay_ns=1000, instance_count=2
        )
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"))
        await settle()
        assert model.calls == [["a"]]  # an instance is free, but "a" runs: b waits for company
        clock.advance(500)
        c = submit(scheduler, req("c"))
        await settle()
        assert model.calls == [["a"]]
        clock.advance(499)
        await settle()
        assert model.calls == [["a"]]
        clock.advance(1)  # b has waited exactly the delay
        await settle()
        assert model.calls == [["a"], ["b", "c"]]
        assert stats.queue_count == 0  # nothing finished yet
        model.release()
        model.release()
        await asyncio.gather(a, b, c)
        assert stats.queue_ns == 1000 + 500  # b waited 1000 ns, c 500 ns, a 0

    run(body)


def test_full_batch_does_not_wait_for_the_delay() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(
            model, clock, max_batch_size=2, max_queue_delay_ns=10**9, instance_count=2
        )
        tasks = [submit(scheduler, req("a"))]
        await settle()
        tasks += [submit(scheduler, req(n)) for n in "bc"]
        await settle()
        assert model.calls == [["a"], ["b", "c"]]
        assert clock.pending_timers() == 0  # nothing waits, so no timer is armed
        model.release()
        model.release()
        await asyncio.gather(*tasks)

    run(body)


def test_preferred_size_does_not_wait_for_the_delay() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(
            model,
            clock,
            max_batch_size=8,
            preferred_batch_sizes=(2,),
            max_queue_delay_ns=10**9,
            instance_count=2,
        )
        tasks = [submit(scheduler, req("a"))]
        await settle()
        tasks.append(submit(scheduler, req("b")))
        await settle()
        assert model.calls == [["a"]]
        tasks.append(submit(scheduler, req("c")))
        await settle()
        assert model.calls == [["a"], ["b", "c"]]
        model.release()
        model.release()
        await asyncio.gather(*tasks)

    run(body)


def test_without_dynamic_batching_requests_never_combine() -> None:
    async def body() -> None:
        for policy in ({"dynamic": False, "max_batch_size": 8}, {"max_batch_size": 0}):
            clock = FakeClock()
            model = FakeModel()
            model.hold = True
            scheduler, stats = make(model, clock, **policy)
            tasks = [submit(scheduler, req(n, rows=2)) for n in "abc"]
            await settle()
            for _ in range(3):
                model.release()
                await settle()
            await asyncio.gather(*tasks)
            assert model.calls == [["a"], ["b"], ["c"]]
            expected = 6 if policy["max_batch_size"] else 3  # no batch dim: one per request
            assert stats.inference_count == expected

    run(body)


def test_incompatible_shapes_are_batched_separately() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, max_batch_size=8)
        tasks = [submit(scheduler, req("a"))]
        await settle()
        tasks += [
            submit(scheduler, req("w4-1", width=4)),
            submit(scheduler, req("w3-1", width=3)),
            submit(scheduler, req("w4-2", width=4)),
            submit(scheduler, req("w3-2", width=3)),
        ]
        await settle()
        for _ in range(3):
            model.release()
            await settle()
        assert model.calls == [["a"], ["w4-1", "w4-2"], ["w3-1", "w3-2"]]
        responses = await asyncio.gather(*tasks)
        assert [r.outputs["y"].shape[1] for r in responses] == [4, 4, 3, 4, 3]

    run(body)


def test_failing_batch_key_makes_the_request_run_alone() -> None:
    async def body() -> None:
        def key(request: InferRequest) -> object:
            if request.id == "bad":
                raise ValueError("no key")
            return "same"

        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler = Scheduler(
            "m",
            model,
            BatchPolicy(max_batch_size=8, dynamic=True),
            statistics=ModelStatistics(),
            clock=clock,
            batch_key=key,
        )
        tasks = [submit(scheduler, req(n)) for n in ("a", "b", "bad", "c")]
        await settle()
        for _ in range(3):
            model.release()
            await settle()
        await asyncio.gather(*tasks)
        assert model.calls == [["a"], ["b", "c"], ["bad"]]

    run(body)


# -- priorities, deadlines, limits -----------------------------------------------------------


def test_higher_priority_level_runs_first_fifo_within_a_level() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(
            model, clock, max_batch_size=1, priority_levels=3, default_priority_level=2
        )
        tasks = [submit(scheduler, req("first"))]
        await settle()
        tasks += [
            submit(scheduler, req("low", width=1), priority=3),
            submit(scheduler, req("default", width=2)),
            submit(scheduler, req("high-1", width=3), priority=1),
            submit(scheduler, req("out-of-range", width=5), priority=9),  # → default level
            submit(scheduler, req("high-2", width=6), priority=1),
        ]
        await settle()
        for _ in range(6):
            model.release()
            await settle()
        await asyncio.gather(*tasks)
        assert [call[0] for call in model.calls] == [
            "first",
            "high-1",
            "high-2",
            "default",
            "out-of-range",
            "low",
        ]

    run(body)


def test_priority_decides_who_joins_a_batch() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, max_batch_size=2, priority_levels=2)
        tasks = [submit(scheduler, req("first"))]
        await settle()
        tasks += [
            submit(scheduler, req("low-1"), priority=2),
            submit(scheduler, req("low-2"), priority=2),
            submit(scheduler, req("high"), priority=1),
        ]
        await settle()
        for _ in range(3):
            model.release()
            await settle()
        await asyncio.gather(*tasks)
        assert model.calls == [["first"], ["high", "low-1"], ["low-2"]]

    run(body)


def test_request_whose_deadline_passes_in_the_queue_fails_and_never_runs() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"), timeout_us=100)
        c = submit(scheduler, req("c"))
        await settle()
        clock.advance(99_999)
        await settle()
        assert not b.done()
        clock.advance(1)
        await settle()
        assert b.done()
        with pytest.raises(DeadlineExceeded, match="timeout of 100 us"):
            b.result()
        assert scheduler.queued() == 1
        model.release()
        await settle()
        model.release()
        await asyncio.gather(a, c)
        assert model.calls == [["a"], ["c"]]  # "b" was never run late
        assert stats.fail_count == 1
        assert stats.fail_ns == 100_000
        assert stats.success_count == 2

    run(body)


def test_default_timeout_and_override_rules() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock, default_timeout_ns=50_000)
        a = submit(scheduler, req("a"))
        await settle()
        shorter = submit(scheduler, req("shorter"), timeout_us=10)
        longer = submit(scheduler, req("longer"), timeout_us=1000)  # cannot extend the default
        default = submit(scheduler, req("default"))
        await settle()
        clock.advance(10_000)
        await settle()
        assert shorter.done() and not longer.done() and not default.done()
        clock.advance(40_000)
        await settle()
        assert longer.done() and default.done()
        for task in (shorter, longer, default):
            with pytest.raises(DeadlineExceeded):
                task.result()
        model.release()
        await a

        # a default the requests may not override: a shorter client timeout is ignored
        model2 = FakeModel()
        model2.hold = True
        strict, _ = make(model2, clock, default_timeout_ns=50_000, allow_timeout_override=False)
        first = submit(strict, req("first"))
        ignored = submit(strict, req("ignored"), timeout_us=1)
        await settle()
        clock.advance(10_000)
        await settle()
        assert not ignored.done()
        clock.advance(40_000)
        await settle()
        with pytest.raises(DeadlineExceeded):
            ignored.result()  # the default still applies
        model2.release()
        await first

        # no default at all: the client's timeout is the only one, so it applies
        model3 = FakeModel()
        model3.hold = True
        open_queue, _ = make(model3, clock, allow_timeout_override=False)
        head = submit(open_queue, req("head"))
        timed = submit(open_queue, req("timed"), timeout_us=5)
        await settle()
        clock.advance(5_000)
        await settle()
        with pytest.raises(DeadlineExceeded):
            timed.result()
        model3.release()
        await head

    run(body)


def test_full_queue_refuses_at_once() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock, max_queue_size=2)
        tasks = [submit(scheduler, req("a"))]  # runs, does not count as waiting
        await settle()
        tasks += [submit(scheduler, req("b")), submit(scheduler, req("c"))]
        await settle()
        with pytest.raises(QueueFull, match="queue is full") as info:
            await scheduler.submit(req("d"))
        assert info.value.retry_after_s == 1
        assert stats.fail_count == 1
        model.release()
        await settle()
        model.release()
        await asyncio.gather(*tasks)
        assert model.calls == [["a"], ["b", "c"]]

    run(body)


def test_cancelled_while_queued_is_never_executed() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"), timeout_us=5)
        c = submit(scheduler, req("c"))
        await settle()
        assert scheduler.queued() == 2
        b.cancel()
        await settle()
        assert b.cancelled()
        assert scheduler.queued() == 1
        assert clock.pending_timers() == 0  # its deadline timer went with it
        model.release()
        await settle()
        model.release()
        await asyncio.gather(a, c)
        assert model.calls == [["a"], ["c"]]
        assert stats.fail_count == 0  # a client that went away is no failure

    run(body)


def test_cancelled_after_dispatch_does_not_disturb_its_batch() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"))
        c = submit(scheduler, req("c"))
        await settle()
        model.release()
        await settle()
        assert model.calls == [["a"], ["b", "c"]]
        b.cancel()
        await settle()
        model.release()
        response = await c
        assert response.parameters["id"] == "c"
        assert (await a).parameters["id"] == "a"
        assert b.cancelled()
        assert stats.success_count == 2  # its caller went away: "b" counts nowhere
        assert stats.execution_count == 2

    run(body)


# -- model failures --------------------------------------------------------------------------


def test_wrong_result_count_fails_the_whole_batch_and_the_scheduler_keeps_serving() -> None:
    async def body() -> None:
        clock = FakeClock()
        broken = True

        def respond(requests: list[InferRequest]) -> Sequence[InferResult]:
            results = double(requests)
            return results[:-1] if broken else results

        model = FakeModel(respond)
        model.hold = True
        scheduler, stats = make(model, clock)
        tasks = [submit(scheduler, req(n)) for n in "abc"]
        await settle()
        model.release()
        await settle()
        model.release()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert all(isinstance(r, InternalError) for r in results)
        assert "returned 0 results for 1 requests" in str(results[0])
        assert "model 'm' returned 1 results for 2 requests" in str(results[1])
        assert stats.fail_count == 3
        assert stats.execution_count == 0
        broken = False
        model.hold = False
        response = await scheduler.submit(req("d"))
        assert response.parameters["id"] == "d"

    run(body)


def test_exception_in_a_slot_fails_only_that_request() -> None:
    async def body() -> None:
        def respond(requests: list[InferRequest]) -> Sequence[InferResult]:
            slots: dict[str, object] = {
                "b": ValueError("bad row"),
                "c": InvalidArgument("input 'x' is wrong"),
                "d": "not a response",
            }
            good = double(requests)
            return [slots.get(r.id, ok) for r, ok in zip(requests, good, strict=True)]  # type: ignore[misc]

        clock = FakeClock()
        model = FakeModel(respond)
        model.hold = True
        scheduler, stats = make(model, clock)
        first = submit(scheduler, req("first"))
        await settle()
        tasks = [submit(scheduler, req(n)) for n in "abcde"]
        await settle()
        model.hold = False
        model.release()
        await settle()
        assert model.calls == [["first"], ["a", "b", "c", "d", "e"]]
        assert isinstance(await first, InferResponse)
        a, b, c, d, e = await asyncio.gather(*tasks, return_exceptions=True)
        assert isinstance(a, InferResponse)
        assert isinstance(e, InferResponse)
        assert isinstance(b, InternalError)
        assert str(b) == "model 'm' failed: ValueError: bad row"
        assert isinstance(b.__cause__, ValueError)
        assert isinstance(c, InvalidArgument)  # our own errors pass through unchanged
        assert isinstance(d, InternalError)
        assert "returned a str where an InferResponse" in str(d)
        assert stats.success_count == 3
        assert stats.fail_count == 3
        assert stats.execution_count == 2

    run(body)


def test_non_response_slot_fails_that_request_with_internal_error() -> None:
    async def body() -> None:
        def respond(requests: list[InferRequest]) -> Sequence[InferResult]:
            return [None for _ in requests]  # no sender: None is not an answer

        scheduler, _ = make(FakeModel(respond), FakeClock())
        with pytest.raises(InternalError, match="returned a NoneType"):
            await scheduler.submit(req("a"))

    run(body)


def test_execute_raising_fails_only_its_batch() -> None:
    async def body() -> None:
        def respond(requests: list[InferRequest]) -> Sequence[InferResult]:
            if requests[0].id == "boom":
                raise RuntimeError("CUDA out of memory")
            if requests[0].id == "ours":
                raise Unavailable("worker restarting")
            return double(requests)

        clock = FakeClock()
        model = FakeModel(respond)
        model.hold = True
        scheduler, stats = make(model, clock, max_batch_size=2)
        tasks = [submit(scheduler, req(n)) for n in ("first", "boom", "x", "ours", "y", "z")]
        await settle()
        for _ in range(4):
            model.release()
            await settle()
        results = await asyncio.gather(*tasks, return_exceptions=True)
        assert model.calls == [["first"], ["boom", "x"], ["ours", "y"], ["z"]]
        assert isinstance(results[0], InferResponse)
        for failed in results[1:3]:
            assert isinstance(failed, InternalError)
            assert str(failed) == "model 'm' failed: RuntimeError: CUDA out of memory"
        assert all(isinstance(r, Unavailable) for r in results[3:5])
        assert isinstance(results[5], InferResponse)
        assert stats.fail_count == 4
        assert stats.success_count == 2

    run(body)


def test_idle_path_failures_are_reported_the_same_way() -> None:
    async def body() -> None:
        def raising(requests: list[InferRequest]) -> Sequence[InferResult]:
            raise KeyError("x")

        def empty(requests: list[InferRequest]) -> Sequence[InferResult]:
            return []

        def slot(requests: list[InferRequest]) -> Sequence[InferResult]:
            return [ZeroDivisionError("division by zero")]

        for respond, message in (
            (raising, "model 'm' failed: KeyError: 'x'"),
            (empty, "model 'm' returned 0 results for 1 requests"),
            (slot, "model 'm' failed: ZeroDivisionError: division by zero"),
        ):
            scheduler, stats = make(FakeModel(respond), FakeClock())
            with pytest.raises(InternalError) as info:
                await scheduler.submit(req("a"))
            assert str(info.value) == message
            assert stats.fail_count == 1
            assert stats.success_count == 0
            assert scheduler.queued() == 0

    run(body)


def test_synchronous_raise_from_execute_is_contained() -> None:
    async def body() -> None:
        calls = 0

        def execute(requests: list[InferRequest]) -> asyncio.Future[Sequence[InferResult]]:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise TypeError("not even a coroutine")
            future: asyncio.Future[Sequence[InferResult]] = (
                asyncio.get_running_loop().create_future()
            )
            future.set_result(double(requests))
            return future

        scheduler = Scheduler(
            "m",
            execute,
            BatchPolicy(max_batch_size=4, dynamic=True),
            statistics=ModelStatistics(),
            clock=FakeClock(),
        )
        with pytest.raises(InternalError, match="TypeError: not even a coroutine"):
            await scheduler.submit(req("a"))
        assert (await scheduler.submit(req("b"))).parameters["id"] == "b"

    run(body)


# -- lifecycle -------------------------------------------------------------------------------


def test_close_fails_waiting_requests_and_drains_running_ones() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"))
        await settle()
        closing = asyncio.create_task(scheduler.close())
        await settle()
        assert b.done()
        with pytest.raises(Unavailable, match="unloaded"):
            b.result()
        assert not closing.done()  # "a" is still running
        with pytest.raises(Unavailable, match="not accepting"):
            await scheduler.submit(req("c"))
        model.release()
        await closing
        assert (await a).parameters["id"] == "a"
        assert model.calls == [["a"]]
        assert stats.fail_count == 2  # "b" unloaded while waiting, "c" refused
        await scheduler.close()  # twice is fine

    run(body)


def test_close_waits_for_queued_batches_already_started() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, _ = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        b = submit(scheduler, req("b"))
        await settle()
        model.release()
        await settle()
        assert model.calls == [["a"], ["b"]]
        closing = asyncio.create_task(scheduler.close())
        await settle()
        assert not closing.done()
        model.release()
        await closing
        await asyncio.gather(a, b)

    run(body)


def test_drain_runs_every_waiting_request_then_refuses_new_ones() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock, max_batch_size=2, max_queue_delay_ns=10**9)
        a = submit(scheduler, req("a"))
        await settle()
        waiting = [submit(scheduler, req(name)) for name in "bcd"]
        await settle()
        assert scheduler.queued() == 3
        draining = asyncio.create_task(scheduler.drain())
        await settle()
        with pytest.raises(Unavailable, match="not accepting"):
            await scheduler.submit(req("late"))
        assert not draining.done()
        for _ in range(3):  # "a", then the waiting ones, without waiting for the queue delay
            model.release()
            await settle()
        await draining
        assert model.calls == [["a"], ["b", "c"], ["d"]]
        assert [(await t).parameters["id"] for t in (a, *waiting)] == ["a", "b", "c", "d"]
        assert stats.fail_count == 1  # only the request refused after drain() began
        assert clock.now_ns() == 0  # nobody waited for the batching delay
        await scheduler.drain()  # again: a no-op

    run(body)


def test_drain_of_an_idle_scheduler_returns_at_once() -> None:
    async def body() -> None:
        scheduler, _ = make(FakeModel(), FakeClock())
        await scheduler.drain()
        with pytest.raises(Unavailable):
            await scheduler.submit(req("a"))

    run(body)


def test_timing_hands_the_success_record_to_the_caller() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel(clock=clock)
        model.infer_ns = 500
        scheduler, stats = make(model, clock)
        timing = RequestTiming()
        await scheduler.submit(req("a", rows=3), timing=timing)
        assert (timing.elements, timing.request_ns, timing.queue_ns) == (3, 500, 0)
        assert timing.compute_infer_ns == 500
        assert stats.success_count == 0  # the caller records it
        assert stats.execution_count == 1
        queued = RequestTiming()
        model.hold = True
        first = submit(scheduler, req("b"))
        await settle()
        second = asyncio.create_task(scheduler.submit(req("c"), timing=queued))
        await settle()
        model.release()
        await settle()
        model.release()
        await asyncio.gather(first, second)
        assert stats.success_count == 1  # only "b", submitted without a timing
        assert (queued.elements, queued.queue_ns, queued.compute_infer_ns) == (1, 500, 500)
        assert queued.request_ns == 1000

    run(body)


def test_many_concurrent_clients_all_get_their_own_answer() -> None:
    async def body() -> None:
        async def execute(requests: list[InferRequest]) -> Sequence[InferResult]:
            await asyncio.sleep(0)
            return double(requests)

        sizes: list[int] = []

        async def recording(requests: list[InferRequest]) -> Sequence[InferResult]:
            sizes.append(len(requests))
            return await execute(requests)

        scheduler = Scheduler(
            "m",
            recording,
            BatchPolicy(max_batch_size=16, dynamic=True, instance_count=2),
            statistics=ModelStatistics(),
        )
        names = [str(i) for i in range(200)]
        responses = await asyncio.gather(*(scheduler.submit(req(n)) for n in names))
        assert [r.parameters["id"] for r in responses] == names
        assert max(sizes) <= 16
        assert len(sizes) < 200  # requests that queued while busy were batched
        await scheduler.close()

    run(body)


# -- policy and clocks -----------------------------------------------------------------------


def test_fake_clock_fires_timers_in_order_and_sleeps() -> None:
    async def body() -> None:
        clock = FakeClock(start_ns=100)
        fired: list[tuple[str, int]] = []
        clock.call_at(300, lambda: fired.append(("late", clock.now_ns())))
        clock.call_at(200, lambda: fired.append(("early", clock.now_ns())))
        clock.call_at(250, lambda: fired.append(("cancelled", 0))).cancel()
        assert clock.pending_timers() == 2
        clock.advance(150)
        assert fired == [("early", 200)]
        assert clock.now_ns() == 250
        clock.advance(50)
        assert fired == [("early", 200), ("late", 300)]
        sleeper = asyncio.create_task(clock.sleep(10))
        await settle()
        assert not sleeper.done()
        clock.advance(10)
        await sleeper
        with pytest.raises(ValueError, match="backwards"):
            clock.advance(-1)

    run(body)


def test_monotonic_clock_timers_fire() -> None:
    async def body() -> None:
        event = asyncio.Event()
        start = MONOTONIC.now_ns()
        MONOTONIC.call_at(start + 1_000_000, event.set)
        await asyncio.wait_for(event.wait(), timeout=5)
        assert MONOTONIC.now_ns() - start >= 1_000_000
        handle = MONOTONIC.call_at(MONOTONIC.now_ns(), lambda: pytest.fail("cancelled timer"))
        handle.cancel()
        await MONOTONIC.sleep(0)

    run(body)


def test_cancelling_a_caller_on_the_idle_path_frees_the_instance() -> None:
    async def body() -> None:
        clock = FakeClock()
        model = FakeModel()
        model.hold = True
        scheduler, stats = make(model, clock)
        a = submit(scheduler, req("a"))
        await settle()
        assert model.held() == 1
        a.cancel()
        await settle()
        assert a.cancelled()
        model.hold = False
        response = await scheduler.submit(req("b"))  # runs at once: the instance is free again
        assert response.parameters["id"] == "b"
        assert model.calls == [["a"], ["b"]]
        assert stats.success_count == 1
        assert stats.fail_count == 0

    run(body)


def test_our_own_error_from_the_idle_path_passes_through_unchanged() -> None:
    async def body() -> None:
        error = Unavailable("worker restarting")

        def respond(requests: list[InferRequest]) -> Sequence[InferResult]:
            raise error

        scheduler, _ = make(FakeModel(respond), FakeClock())
        with pytest.raises(Unavailable) as info:
            await scheduler.submit(req("a"))
        assert info.value is error
        assert info.value.__cause__ is None

    run(body)
