"""Process instances (``execution = "process"``): each instance its own process, tensors through
shared memory, a crash or hang failing only the batch it held, bounded restarts."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oipserve.errors import InternalError, ModelLoadError, Unavailable
from oipserve.execution import process as process_module
from oipserve.execution.executor import Executor
from oipserve.execution.instance import Execution, InstanceSpec
from oipserve.execution.process import ProcessInstance
from oipserve.execution.shm import SEGMENT_PREFIX, Segment
from oipserve.model import InferRequest, InferResponse, LoadContext
from oipserve.repository.config import parse_toml

MODEL = """\
import os, time
import numpy as np
import oipserve


class Model(oipserve.Model):
    def load(self, ctx):
        how = ctx.parameters.get("on_load", "")
        if how == "segfault":
            import ctypes
            ctypes.string_at(0)
        if how == "raise":
            raise ValueError("the model file is corrupt")

    def signature(self):
        return oipserve.Signature(
            inputs=(oipserve.TensorSpec("x", "FP32", (-1,)),), platform="test"
        )

    def infer(self, requests):
        results = []
        for r in requests:
            x = r.inputs.get("x")
            if x is not None and x.size and x.flat[0] == -1:
                os._exit(3)
            if x is not None and x.size and x.flat[0] == -2:
                time.sleep(60)
            if x is not None and x.size and x.flat[0] == -3:
                results.append(ValueError("negative three"))
                continue
            outputs = {"pid": np.array([os.getpid()], dtype=np.int64)}
            if x is not None:
                outputs["double"] = x * 2
                outputs["sum"] = x.sum(axis=-1, dtype=np.float64)
            if "s" in r.inputs:
                outputs["s"] = np.array([v + b"!" for v in r.inputs["s"].ravel()], dtype=object)
            results.append(oipserve.InferResponse(outputs, {"seen": r.id}))
        return results
"""


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


def instance(tmp_path: Path, count: int = 2, **parameters: str) -> ProcessInstance:
    folder = tmp_path / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL)
    lines = "".join(f'{k} = "{v}"\n' for k, v in parameters.items())
    config = parse_toml(f'backend = "python"\n[parameters]\nexecution = "process"\n{lines}')
    ctx = LoadContext("m", "1", folder, config, folder / "model.py")
    execution = Execution(Executor(max_workers=1))
    execution.on_unavailable = lambda i, r: UNAVAILABLE.append((i, r))
    built = execution(InstanceSpec("python", ctx, count=count, execution="process"))
    assert isinstance(built, ProcessInstance)
    return built


UNAVAILABLE: list[Any] = []


def ours() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith(SEGMENT_PREFIX)}


def request(x: np.ndarray, **more: np.ndarray) -> InferRequest:
    return InferRequest({"x": x, **more}, id="r")


async def pids(model: ProcessInstance, calls: int = 6) -> set[int]:
    results = await asyncio.gather(
        *(model.infer([request(np.ones(2, np.float32))]) for _ in range(calls))
    )
    found = set()
    for (result,) in results:
        assert isinstance(result, InferResponse)
        found.add(int(result.outputs["pid"][0]))
    return found


async def until(condition: Callable[[], Coroutine[Any, Any, bool]], limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not await condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


def test_each_instance_is_its_own_process_and_a_large_batch_crosses_through_shared_memory(
    tmp_path: Path,
) -> None:
    before = ours()

    async def body() -> None:
        model = instance(tmp_path, count=2)
        signature = await model.load()
        assert signature is not None and signature.platform == "test"
        assert signature.inputs[0].name == "x"
        assert model.concurrency == 2
        assert await model.healthy()
        assert await pids(model) == set(model.pids())
        assert len(set(model.pids())) == 2 and os.getpid() not in model.pids()
        batch = np.random.default_rng(0).random((1000, 20), dtype=np.float32)
        strings = np.array([b"a", b"bc"], dtype=object)
        (result,) = await model.infer([request(batch, s=strings)])
        assert isinstance(result, InferResponse)
        # 80 kB of outputs: too large to ride in the answer, so in a segment this side owns
        np.testing.assert_array_equal(result.outputs["double"], batch * 2)
        assert result.outputs["double"].dtype == np.float32
        np.testing.assert_allclose(result.outputs["sum"], batch.sum(axis=1), rtol=1e-5)
        assert list(result.outputs["s"]) == [b"a!", b"bc!"]
        assert result.parameters == {"seen": "r"}
        # a non-contiguous, big-endian input arrives as the values it holds
        odd = np.arange(40, dtype=">f4").reshape(4, 10)[:, ::2]
        (result,) = await model.infer([request(odd)])
        assert isinstance(result, InferResponse)
        np.testing.assert_array_equal(result.outputs["double"], odd * 2)
        # one failing slot fails only that request, with the in-process text
        good, bad = await model.infer([request(np.ones(1)), request(-3 * np.ones(1))])
        assert isinstance(good, InferResponse)
        assert isinstance(bad, InternalError)
        assert bad.message == "model 'm' failed: ValueError: negative three"
        await model.unload()
        assert not await model.healthy()

    run(body)
    assert ours() == before  # every segment unlinked


def test_a_crash_fails_only_its_batch_and_the_instance_is_restarted(tmp_path: Path) -> None:
    async def body() -> None:
        model = instance(tmp_path, count=2)
        await model.load()
        first = set(model.pids())
        crash = asyncio.ensure_future(model.infer([request(-np.ones(1))]))
        others = await asyncio.gather(*(model.infer([request(np.ones(1))]) for _ in range(5)))
        assert all(isinstance(r[0], InferResponse) for r in others)
        with pytest.raises(
            InternalError,
            match=r"instance \d of model 'm' version 1 crashed: "
            r"the process exited with code 3",
        ):
            await crash

        async def restarted() -> bool:
            return len(set(model.pids()) - first) == 1 and len(await pids(model)) == 2

        await until(restarted, 30)
        assert await model.healthy()
        await model.unload()

    run(body)


def test_a_hang_past_the_execution_timeout_is_killed_and_restarted(tmp_path: Path) -> None:
    async def body() -> None:
        model = instance(tmp_path, count=1, execution_timeout_secs="0.5")
        await model.load()
        assert model.timeout_s == 0.5
        (old,) = model.pids()
        started = time.monotonic()
        with pytest.raises(InternalError, match=r"did not answer within 0\.5 s and was killed"):
            await model.infer([request(-2 * np.ones(1))])
        assert time.monotonic() - started < 10
        assert await pids(model, 1) != {old}  # the next request waits for the new process
        await model.unload()

    run(body)


def test_a_model_that_crashes_while_loading_fails_to_load_with_the_reason(tmp_path: Path) -> None:
    async def body() -> None:
        model = instance(tmp_path, count=2, on_load="segfault")
        with pytest.raises(
            ModelLoadError, match="crashed while loading: the process was killed by signal SIGSEGV"
        ):
            await model.load()
        assert not await model.healthy()
        raising = instance(tmp_path / "r", count=1, on_load="raise")
        with pytest.raises(ModelLoadError, match="ValueError: the model file is corrupt"):
            await raising.load()

    run(body)


def test_a_bad_execution_timeout_fails_the_load(tmp_path: Path) -> None:
    for bad in ("0", "-1", "soon"):
        with pytest.raises(ModelLoadError, match="execution_timeout_secs"):
            instance(tmp_path, execution_timeout_secs=bad)


def test_a_model_that_crashes_on_every_request_becomes_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(process_module, "MAX_RESTARTS", 2)
    UNAVAILABLE.clear()

    async def body() -> None:
        model = instance(tmp_path, count=1)
        await model.load()
        for _ in range(3):
            with pytest.raises(InternalError, match="crashed"):
                await model.infer([request(-np.ones(1))])
        assert len(UNAVAILABLE) == 1
        gave_up, reason = UNAVAILABLE[0]
        assert gave_up is model
        assert "crashed 3 times within 60 s" in reason and "exited with code 3" in reason
        with pytest.raises(Unavailable, match="crashed 3 times"):
            await model.infer([request(np.ones(1))])
        assert not await model.healthy()
        await model.unload()

    run(body)


def test_attaching_to_a_segment_leaves_it_to_its_owner(tmp_path: Path) -> None:
    """A process that attaches (Python 3.11's SharedMemory would register the segment with that
    process's resource tracker, which unlinks it when the process ends) leaves it in place."""
    segment = Segment.create(1024)
    try:
        assert segment.name.startswith(SEGMENT_PREFIX)
        segment.array(np.dtype(np.int32), (4,), 0)[:] = [1, 2, 3, 4]
        code = (
            "import sys; from oipserve.execution.shm import Segment; import numpy as np;"
            f"s = Segment.attach('{segment.name}');"
            "print(s.array(np.dtype(np.int32), (4,), 0).sum())"
        )
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
        )
        assert done.stdout.strip() == "10"
        assert "leaked" not in done.stderr
        assert segment.name in ours()  # still there: only its owner unlinks it
        with pytest.raises(ValueError, match="not an oipserve segment"):
            Segment.attach("someone_else")
    finally:
        segment.unlink()
    assert segment.name not in ours()
