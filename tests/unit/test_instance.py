"""The execution seam: the registry drives model instances only through ``ModelInstance``, and the
in-process implementation shares or copies a model as its runtime declares."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oipserve.errors import ModelLoadError, Unavailable
from oipserve.execution.executor import Executor
from oipserve.execution.instance import (
    Execution,
    InProcessInstance,
    InstanceSpec,
    ModelInstance,
)
from oipserve.model import InferRequest, InferResponse, InferResult, LoadContext
from oipserve.registry import Registry
from oipserve.repository.config import parse_toml
from oipserve.signature import Signature, TensorSpec


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


class FakeInstance:
    """A model instance that runs nothing: it answers each request with its own tag."""

    def __init__(self, spec: InstanceSpec, tag: int, fail: str = "") -> None:
        self.spec = spec
        self.tag = tag
        self.fail = fail
        self.events: list[str] = []
        self.loaded = False

    @property
    def concurrency(self) -> int:
        return self.spec.count

    async def load(self) -> Signature | None:
        self.events.append("load")
        if self.fail:
            raise ModelLoadError(self.fail)
        self.loaded = True
        return Signature(
            inputs=(TensorSpec("x", "FP32", (-1,)),), outputs=(TensorSpec("tag", "INT64", ()),)
        )

    async def infer(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        self.events.append(f"infer {len(requests)}")
        return [InferResponse({"tag": np.array(self.tag)}) for _ in requests]

    async def unload(self) -> None:
        self.events.append("unload")
        self.loaded = False

    async def healthy(self) -> bool:
        return self.loaded


class FakeFactory:
    """Builds one :class:`FakeInstance` per spec, tagged in creation order."""

    def __init__(self) -> None:
        self.instances: list[FakeInstance] = []
        self.fail = ""

    def __call__(self, spec: InstanceSpec) -> ModelInstance:
        instance = FakeInstance(spec, len(self.instances) + 1, self.fail)
        self.instances.append(instance)
        return instance


def write_model(root: Path, toml: str = 'backend = "python"\n') -> None:
    folder = root / "m" / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text("raise RuntimeError('a fake instance never imports me')\n")
    (root / "m" / "model.toml").write_text(toml)


def test_the_registry_loads_serves_and_unloads_through_the_instance_only(tmp_path: Path) -> None:
    async def body() -> None:
        write_model(tmp_path, 'backend = "python"\n[[instance_group]]\ncount = 3\n')
        factory = FakeFactory()
        registry = Registry(tmp_path, factory)
        await registry.load("m")
        (first,) = factory.instances
        assert (first.spec.name, first.spec.version, first.spec.count) == ("m", "1", 3)
        assert first.spec.backend == "python"
        loaded = registry.get("m")
        # the signature the instance's load answered completes the config
        assert list(loaded.inputs) == ["x"]
        assert list(loaded.outputs) == ["tag"]
        assert loaded.scheduler.policy.instance_count == 3  # the instance's concurrency
        response = await loaded.scheduler.submit(InferRequest({"x": np.zeros(2, np.float32)}))
        assert int(response.outputs["tag"]) == 1
        assert await first.healthy()

        await registry.load("m")  # a reload: a new instance, the old one drained and unloaded
        second = factory.instances[1]
        assert first.events == ["load", "infer 1", "unload"]
        assert second.events == ["load"]
        await registry.unload("m")
        assert second.events == ["load", "unload"]
        assert not await second.healthy()

    run(body)


def test_an_instance_that_fails_to_load_leaves_the_model_unavailable(tmp_path: Path) -> None:
    async def body() -> None:
        write_model(tmp_path)
        factory = FakeFactory()
        factory.fail = "no GPU here"
        registry = Registry(tmp_path, factory)
        with pytest.raises(ModelLoadError, match="no GPU here"):
            await registry.load("m")
        with pytest.raises(Unavailable, match=r"not ready \(UNAVAILABLE: version 1: no GPU here"):
            registry.get("m")
        readiness = registry.readiness("m")
        assert not readiness.ready
        assert "no GPU here" in readiness.reason
        assert factory.instances[0].events == ["load"]  # never unloaded: it never loaded

    run(body)


def test_a_model_announced_for_start_up_answers_loading_until_its_load_ends(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        write_model(tmp_path)
        registry = Registry(tmp_path, FakeFactory())
        registry.expect(["m"])
        with pytest.raises(Unavailable, match=r"not ready \(LOADING\)"):
            registry.get("m")
        assert registry.readiness("m").reason == "model 'm' is not ready (LOADING)"
        await registry.load("m")
        assert registry.readiness("m").ready

    run(body)


# -- the in-process implementation -----------------------------------------------------------

MODEL = """\
import numpy as np
import oipserve


class Model(oipserve.Model):
    thread_safe = {thread_safe}

    def load(self, ctx):
        self.loads = 1

    def infer(self, requests):
        return [oipserve.InferResponse({{"who": np.array(id(self))}}) for r in requests]
"""


@pytest.fixture
def executor() -> Iterator[Executor]:
    pool = Executor(max_workers=4)
    yield pool
    pool.shutdown()


def spec(tmp_path: Path, count: int, thread_safe: bool) -> InstanceSpec:
    folder = tmp_path / "1"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(MODEL.format(thread_safe=thread_safe))
    ctx = LoadContext("m", "1", folder, parse_toml('backend = "python"'), folder / "model.py")
    return InstanceSpec(backend="python", context=ctx, count=count)


async def who_answers(instance: ModelInstance, calls: int) -> set[int]:
    request = InferRequest({"x": np.zeros(1)})
    results = await asyncio.gather(*(instance.infer([request]) for _ in range(calls)))
    answers = set()
    for (result,) in results:
        assert isinstance(result, InferResponse)
        answers.add(int(result.outputs["who"]))
    return answers


@pytest.mark.parametrize(("thread_safe", "objects"), [(True, 1), (False, 3)])
def test_slots_share_one_object_unless_the_runtime_is_not_thread_safe(
    tmp_path: Path, executor: Executor, thread_safe: bool, objects: int
) -> None:
    async def body() -> None:
        instance = InProcessInstance(spec(tmp_path, 3, thread_safe), executor)
        assert not await instance.healthy()
        await instance.load()
        assert instance.concurrency == 3
        assert await instance.healthy()
        assert len(await who_answers(instance, 3)) == objects
        await instance.unload()
        assert not await instance.healthy()

    run(body)


def test_the_default_factory_builds_what_execution_names(tmp_path: Path) -> None:
    from oipserve.execution.process import ProcessInstance

    execution = Execution(Executor(max_workers=1))
    try:
        plain = spec(tmp_path, 1, True)
        assert isinstance(execution(plain), InProcessInstance)
        process = InstanceSpec(plain.backend, plain.context, 2, "process")
        built = execution(process)
        assert isinstance(built, ProcessInstance)
        assert built.concurrency == 2
    finally:
        execution.shutdown()
