"""DataPlane.infer_stream in one process: 0..N responses of a decoupled model, the final flag,
errors, cancellation when the consumer goes, statistics recorded once per request, and BLS
through ModelCalls."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oipserve.dataplane import DataPlane
from oipserve.errors import DecoupledModel, InternalError
from oipserve.execution.executor import Executor
from oipserve.execution.instance import Execution
from oipserve.model import InferRequest, InferResponse
from oipserve.protocol.types import InferenceRequest, InputTensor
from oipserve.registry import Registry

STREAMER = """\
import asyncio

import numpy as np
import oipserve


class Streamer(oipserve.Model):
    cancelled = []

    async def infer(self, requests):
        for request in requests:
            n = int(request.inputs["N"][0])
            if n == -1:
                asyncio.get_running_loop().create_task(self.forever(request))
                continue
            for i in range(n):
                request.sender.send(oipserve.InferResponse({"I": np.array([i])}))
            if n == 7:
                request.sender.send(RuntimeError("seven is too many"))
            else:
                request.sender.send(final=True)
        return [None] * len(requests)

    async def forever(self, request):
        while not request.is_cancelled():
            request.sender.send(oipserve.InferResponse({"I": np.array([0])}))
            await asyncio.sleep(0)
        Streamer.cancelled.append(request.id)
"""

TOML = """
backend = "python"
[model_transaction_policy]
decoupled = true
"""


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


@pytest.fixture
def executor() -> Iterator[Executor]:
    pool = Executor(max_workers=2)
    yield pool
    pool.shutdown()


def _request(n: int, request_id: str = "", **parameters: Any) -> InferenceRequest:
    data = np.array([n], dtype=np.int64)
    return InferenceRequest(
        "streamer",
        id=request_id,
        parameters=dict(parameters),
        inputs=[InputTensor("N", "INT64", (1,), data)],
    )


async def _dataplane(root: Path, executor: Executor) -> DataPlane:
    (root / "streamer").mkdir()
    (root / "streamer" / "model.py").write_text(STREAMER)
    (root / "streamer" / "model.toml").write_text(TOML)
    dataplane = DataPlane(Registry(root, Execution(executor)))
    await dataplane.start()
    return dataplane


def _success_count(dataplane: DataPlane) -> int:
    stats = dataplane.statistics("streamer")["model_stats"][0]
    return int(stats["inference_stats"]["success"]["count"])


def test_responses_final_flag_and_one_record(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        dataplane = await _dataplane(tmp_path, executor)
        responses = [r async for r in dataplane.infer_stream(_request(3, "a"))]
        assert [int(r.outputs[0].data[0]) for r in responses] == [0, 1, 2]
        assert [r.final for r in responses] == [False, False, False]  # the flag came alone
        assert _success_count(dataplane) == 1
        with_empty = [
            r
            async for r in dataplane.infer_stream(
                _request(2, "b", triton_enable_empty_final_response=True)
            )
        ]
        assert [r.final for r in with_empty] == [False, False, True]
        assert with_empty[-1].outputs == [] and with_empty[-1].id == "b"
        assert [r async for r in dataplane.infer_stream(_request(0))] == []
        assert _success_count(dataplane) == 3
        with pytest.raises(DecoupledModel):
            await dataplane.infer(_request(1))
        await dataplane.registry.close()

    run(body)


def test_error_response_raises_after_the_earlier_ones(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        dataplane = await _dataplane(tmp_path, executor)
        seen: list[int] = []
        with pytest.raises(InternalError, match="seven is too many"):
            async for response in dataplane.infer_stream(_request(7)):
                seen.append(int(response.outputs[0].data[0]))
        assert seen == list(range(7))
        stats = dataplane.statistics("streamer")["model_stats"][0]["inference_stats"]
        assert stats["fail"]["count"] == 1
        await dataplane.registry.close()

    run(body)


def test_closing_the_stream_cancels_the_request(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        dataplane = await _dataplane(tmp_path, executor)
        stream = dataplane.infer_stream(_request(-1, "forever"))
        for _ in range(3):
            await anext(stream)
        await stream.aclose()
        module = next(m for n, m in sys.modules.items() if n.endswith(".streamer_v1"))
        for _ in range(100):
            if module.Streamer.cancelled:
                break
            await asyncio.sleep(0)
        assert module.Streamer.cancelled == ["forever"]
        assert _success_count(dataplane) == 0  # nothing recorded for a cancelled request
        await dataplane.registry.close()

    run(body)


def test_model_calls_reach_other_models(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        dataplane = await _dataplane(tmp_path, executor)
        calls = dataplane.registry.server
        assert calls is not None
        request = InferRequest({"N": np.array([2], dtype=np.int64)})
        got = [item async for item in calls.infer_stream("streamer", "", request)]
        assert [(None if r is None else int(r.outputs["I"][0]), f) for r, f in got] == [
            (0, False),
            (1, False),
            (None, True),
        ]
        with pytest.raises(DecoupledModel):
            await calls.infer("streamer", "", request)
        assert calls.is_model_ready("streamer")
        assert not calls.is_model_ready("nope")
        assert isinstance(got[0][0], InferResponse)
        await dataplane.registry.close()

    run(body)
