"""The registry's load / unload lifecycle in one process: reloads, failures, file overrides."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from oipserve.errors import InvalidArgument, ModelLoadError, PermissionDenied, Unavailable
from oipserve.execution.executor import Executor
from oipserve.execution.instance import Execution
from oipserve.model import InferRequest
from oipserve.registry import Registry

MODEL = """\
import numpy as np
import oipserve


class Tagged(oipserve.Model):
    def load(self, ctx):
        if {broken}:
            raise RuntimeError("broken on purpose")
        self.tag = {tag}

    def infer(self, requests):
        return [oipserve.InferResponse({{"tag": np.array([self.tag])}}) for r in requests]
"""


def model_source(tag: int, broken: bool = False) -> str:
    return MODEL.format(tag=tag, broken=broken)


def write(root: Path, name: str, version: int, tag: int, broken: bool = False) -> None:
    folder = root / name / str(version)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(model_source(tag, broken))


@pytest.fixture
def executor() -> Iterator[Executor]:
    pool = Executor(max_workers=2)
    yield pool
    pool.shutdown()


def run(body: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(body())


async def tag_of(registry: Registry, name: str, version: str = "") -> int:
    loaded = registry.get(name, version)
    response = await loaded.scheduler.submit(InferRequest({"x": np.zeros(1)}))
    return int(response.outputs["tag"][0])


def test_reload_switches_and_a_failed_reload_keeps_the_old_version(
    tmp_path: Path, executor: Executor
) -> None:
    async def body() -> None:
        registry = Registry(tmp_path, Execution(executor))
        write(tmp_path, "m", 1, tag=1)
        await registry.load("m")
        assert await tag_of(registry, "m") == 1
        write(tmp_path, "m", 2, tag=2)
        await registry.load("m")  # latest-1: version 2 replaces version 1
        assert await tag_of(registry, "m") == 2
        assert [(e.version, e.state) for e in registry.index()] == [
            ("1", "UNAVAILABLE"),
            ("2", "READY"),
        ]
        write(tmp_path, "m", 3, tag=3, broken=True)
        with pytest.raises(ModelLoadError, match=r"version 3: .*broken on purpose"):
            await registry.load("m")
        assert await tag_of(registry, "m") == 2
        with pytest.raises(Unavailable):
            registry.get("m", "3")
        await registry.close()

    run(body)


def test_config_the_proto_refuses_fails_the_load(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        registry = Registry(tmp_path, Execution(executor))
        write(tmp_path, "m", 1, tag=1)
        (tmp_path / "m" / "model.toml").write_text(
            'backend = "python"\n[[instance_group]]\nkind = "KIND_TPU"\n'
        )
        with pytest.raises(InvalidArgument, match="KIND_TPU"):
            await registry.load("m")
        with pytest.raises(Unavailable, match=r"not ready \(UNAVAILABLE: .*KIND_TPU"):
            registry.get("m")
        # the index and the start-up failures say why, without a version
        (entry,) = registry.index()
        assert (entry.name, entry.version, entry.state) == ("m", "", "UNAVAILABLE")
        assert "KIND_TPU" in entry.reason
        assert "KIND_TPU" in registry.failures()["m/-"]
        (tmp_path / "m" / "model.toml").write_text('backend = "python"\n')
        await registry.load("m")
        assert [(e.version, e.state, e.reason) for e in registry.index()] == [("1", "READY", "")]
        assert registry.failures() == {}
        await registry.close()

    run(body)


def test_file_overrides_live_as_long_as_their_versions(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        refusing = Registry(tmp_path, Execution(executor))
        with pytest.raises(PermissionDenied, match="--allow-model-upload"):
            await refusing.load("f", '{"backend": "python"}', {"1/model.py": b""})
        registry = Registry(tmp_path, Execution(executor), allow_uploads=True)
        config = '{"backend": "python"}'
        await registry.load("f", config, {"1/model.py": model_source(5).encode()})
        assert await tag_of(registry, "f") == 5
        (first,) = registry._override_folders.values()
        assert (first / "f" / "1" / "model.py").is_file()
        # a failed override load leaves the serving one (and its files) alone
        with pytest.raises(ModelLoadError):
            await registry.load("f", config, {"1/model.py": model_source(6, True).encode()})
        assert await tag_of(registry, "f") == 5
        assert registry._override_folders == {"f": first}
        await registry.load("f", config, {"1/model.py": model_source(7).encode()})
        assert await tag_of(registry, "f") == 7
        assert not first.exists()
        (second,) = registry._override_folders.values()
        await registry.unload("f")
        assert not second.exists()
        assert registry._override_folders == {}
        with pytest.raises(InvalidArgument, match="'config'"):
            await registry.load("f", None, {"1/model.py": b""})
        with pytest.raises(InvalidArgument, match="invalid file override path"):
            await registry.load("f", config, {"../x.py": b""})
        assert not (tmp_path / "x.py").exists()

    run(body)


def test_unload_is_harmless_when_nothing_is_loaded(tmp_path: Path, executor: Executor) -> None:
    async def body() -> None:
        registry = Registry(tmp_path, Execution(executor))
        await registry.unload("absent")
        assert registry.index() == []
        with pytest.raises(InvalidArgument, match="invalid model name"):
            await registry.unload("../x")
        with pytest.raises(InvalidArgument, match="invalid model name"):
            await registry.load("../x")

    run(body)
