"""Triton Python-backend models: a ``model.py`` defining ``TritonPythonModel``, run unchanged.

Backend key ``triton_python``; a ``model.py`` under ``backend: "python"`` whose source defines
``class TritonPythonModel`` is served by this runtime too (see :mod:`oipserve.runtimes.python`),
so Triton's ``config.pbtxt`` spelling works as it is.

What Triton's Python backend does and this runtime does the same way
(triton-inference-server/python_backend: ``src/python_be.cc``, ``src/pb_stub.cc``,
``src/resources/triton_python_backend_utils.py``):

* ``import triton_python_backend_utils`` is :mod:`oipserve.compat.triton_python_backend_utils`
  (installed in ``sys.modules`` when the first Triton model loads).
* ``auto_complete_config(auto_complete_model_config)`` (a static method) runs before
  ``initialize``, with the config as a ``pb_utils.ModelConfig``; the fields it completes become
  the model's config (``max_batch_size``, inputs, outputs, ``dynamic_batching``,
  ``model_transaction_policy``). A config parameter ``disable_auto_complete_config = "true"``
  skips it (Triton's ``--disable-auto-complete-config``).
* ``initialize(args)`` once per instance; ``args`` are strings: ``model_config`` (the completed
  config as JSON), ``model_instance_kind`` (``"CPU"``), ``model_instance_name``
  (``<group name>_<i>``, the group name defaulting to ``<model>_<group index>``),
  ``model_instance_device_id`` (``"0"``), ``model_repository`` (the model's folder),
  ``model_version`` and ``model_name``.
* ``execute(requests)`` — sync (on an executor thread) or ``async def`` (on the event loop) —
  gets the batch's requests as ``pb_utils.InferenceRequest`` and returns one
  ``pb_utils.InferenceResponse`` per request (a wrong count fails the batch: 500 naming the
  model), or ``None`` when the model is decoupled and answers through
  ``request.get_response_sender()``.
* ``finalize()`` at unload. Each instance of the ``instance_group`` is its own
  ``TritonPythonModel`` object running one batch at a time (Triton runs one stub process per
  instance; here the instances are copies in the server process, see docs/triton.md).
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import json
import re
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Final

from oipserve.compat import triton_python_backend_utils as pb_utils
from oipserve.errors import InternalError, ModelLoadError, OIPServeError
from oipserve.model import InferRequest, InferResult, LoadContext, Model, Signature

MODULE_NAME: Final = "triton_python_backend_utils"
_DEFINES_TRITON_MODEL: Final = re.compile(rb"^class\s+TritonPythonModel\b", re.MULTILINE)

_next_instance: dict[int, int] = {}
"""id(LoadContext) → the index of the next instance loaded for it (copies of one version share
their context)."""
_next_instance_lock = threading.Lock()


def defines_triton_model(path: Path) -> bool:
    """Whether ``path`` (a ``model.py``) defines Triton's ``TritonPythonModel`` class."""
    try:
        return _DEFINES_TRITON_MODEL.search(path.read_bytes()) is not None
    except OSError:
        return False


def model_py(ctx: LoadContext) -> Path:
    """The model's ``model.py``: the file the config names, else ``model.py`` in the version
    folder (Triton's place), else in the model folder."""
    if ctx.model_file is not None and ctx.model_file.suffix == ".py":
        return ctx.model_file
    for candidate in (ctx.path / "model.py", ctx.path.parent / "model.py"):
        if candidate.is_file():
            return candidate
    raise ModelLoadError(f"model '{ctx.name}' is a Python-backend model but has no model.py")


def model_folder(ctx: LoadContext) -> Path:
    return ctx.path.parent if ctx.path.name == ctx.version else ctx.path


def instance_name(ctx: LoadContext, index: int) -> str:
    """Triton's ``model_instance_name`` of the ``index``-th instance over all groups."""
    groups = ctx.config.instance_group or []
    seen = 0
    for number, group in enumerate(groups):
        if index < seen + group.count:
            name = group.name or f"{ctx.name}_{number}"
            return f"{name}_{index - seen}"
        seen += group.count
    return f"{ctx.name}_0_{index}"


def _claim_index(ctx: LoadContext) -> int:
    total = sum(group.count for group in ctx.config.instance_group) or 1
    key = id(ctx)
    with _next_instance_lock:
        index = _next_instance.get(key, 0)
        if index + 1 >= total:
            _next_instance.pop(key, None)
        else:
            _next_instance[key] = index + 1
    return index


def install_module() -> None:
    """Make ``import triton_python_backend_utils`` give oipserve's module."""
    sys.modules[MODULE_NAME] = pb_utils


def _import(path: Path, ctx: LoadContext) -> ModuleType:
    safe = "".join(c if c.isalnum() else "_" for c in ctx.name)
    module_name = f"oipserve_triton_models.{safe}_v{ctx.version}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None:
        raise ModelLoadError(f"cannot import {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        code = compile(path.read_bytes(), str(path), "exec", dont_inherit=True)
        exec(code, module.__dict__)
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ModelLoadError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module


def _config_json(ctx: LoadContext) -> dict[str, Any]:
    """The model's config as Triton renders it (JSON field names, every field)."""
    from oipserve.repository import triton

    data = triton.to_json(ctx.config)
    data["name"] = ctx.name
    data["backend"] = "python"  # Triton's name, whatever key selected this runtime
    return data


class TritonPythonRuntime(Model):
    """Serves one instance of a ``TritonPythonModel`` (see the module doc)."""

    thread_safe = False  # each instance is its own TritonPythonModel, one batch at a time

    def __init__(self) -> None:
        self._model: Any = None
        self._scope: pb_utils.Scope | None = None
        self._decoupled = False
        self._name = ""
        self._instance = ""
        self._completed: dict[str, Any] = {}

    async def load(self, ctx: LoadContext) -> None:
        loop = asyncio.get_running_loop()
        self._name = ctx.name
        self._instance = instance_name(ctx, _claim_index(ctx))
        self._scope = pb_utils.Scope(
            ctx.name, ctx.version, ctx.server, loop, getattr(ctx, "metrics", None)
        )
        initialize = await asyncio.to_thread(self._prepare, ctx)
        if initialize is not None:
            await initialize

    def _prepare(self, ctx: LoadContext) -> Any:
        """Import, auto-complete and initialize (on a thread); an ``async def initialize``'s
        coroutine is returned for the loop to await."""
        assert self._scope is not None
        token = pb_utils.enter(self._scope)
        try:
            install_module()
            path = model_py(ctx)
            module = _import(path, ctx)
            cls = getattr(module, "TritonPythonModel", None)
            if not inspect.isclass(cls):
                raise ModelLoadError(f"{path} does not define a TritonPythonModel class")
            config = _config_json(ctx)
            original = json.loads(json.dumps(config))
            disabled = ctx.parameters.get("disable_auto_complete_config", "").lower() == "true"
            if hasattr(cls, "auto_complete_config") and not disabled:
                config = self._auto_complete(cls, config)
            self._completed = {k: v for k, v in config.items() if original.get(k) != v}
            self._completed["backend"] = "python"
            policy = config.get("model_transaction_policy") or {}
            self._decoupled = bool(policy.get("decoupled", False))
            model = cls()
            self._model = model
            self.infer = (  # type: ignore[method-assign]
                self._infer_async
                if inspect.iscoroutinefunction(getattr(model, "execute", None))
                else self._infer_sync
            )
            if not hasattr(model, "execute"):
                raise ModelLoadError(f"TritonPythonModel of model '{ctx.name}' has no execute()")
            args = {
                "model_config": json.dumps(config),
                "model_instance_kind": "CPU",
                "model_instance_name": self._instance,
                "model_instance_device_id": "0",
                "model_repository": str(model_folder(ctx)),
                "model_version": ctx.version,
                "model_name": ctx.name,
            }
            initialize = getattr(model, "initialize", None)
            if initialize is None:
                return None
            try:
                result = initialize(args)
            except Exception as exc:
                raise ModelLoadError(
                    f"failed to initialize model '{ctx.name}' (instance '{self._instance}'): "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            return self._guard_initialize(result) if inspect.isawaitable(result) else None
        finally:
            pb_utils.leave(token)

    async def _guard_initialize(self, result: Any) -> None:
        assert self._scope is not None
        token = pb_utils.enter(self._scope)
        try:
            await result
        except Exception as exc:
            raise ModelLoadError(
                f"failed to initialize model '{self._name}' (instance '{self._instance}'): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        finally:
            pb_utils.leave(token)

    def _auto_complete(self, cls: Any, config: dict[str, Any]) -> dict[str, Any]:
        try:
            result = cls.auto_complete_config(pb_utils.ModelConfig(config))
        except Exception as exc:
            raise ModelLoadError(
                f"auto_complete_config of model '{self._name}' failed: {type(exc).__name__}: {exc}"
            ) from exc
        if not isinstance(result, pb_utils.ModelConfig):
            raise ModelLoadError(
                f"auto_complete_config of model '{self._name}' must return the ModelConfig "
                f"it was given, not {type(result).__name__}"
            )
        return result.as_dict()

    def signature(self) -> Signature | None:
        return Signature(decoupled=self._decoupled, config=self._completed)

    # -- execute ------------------------------------------------------------------------------

    def _wrap(self, requests: list[InferRequest]) -> list[pb_utils.InferenceRequest]:
        return [pb_utils.InferenceRequest.wrap(r, self._name, self._decoupled) for r in requests]

    def _infer_sync(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        assert self._scope is not None
        token = pb_utils.enter(self._scope)
        try:
            try:
                responses = self._model.execute(self._wrap(requests))
            except Exception as exc:
                raise self._failed(exc) from exc
            return self._results(responses, len(requests))
        finally:
            pb_utils.leave(token)

    async def _infer_async(self, requests: list[InferRequest]) -> Sequence[InferResult]:
        assert self._scope is not None
        token = pb_utils.enter(self._scope)
        try:
            try:
                responses = await self._model.execute(self._wrap(requests))
            except Exception as exc:
                raise self._failed(exc) from exc
            return self._results(responses, len(requests))
        finally:
            pb_utils.leave(token)

    def _failed(self, exc: Exception) -> OIPServeError:
        if isinstance(exc, OIPServeError):
            return exc
        return InternalError(
            f"Failed to process the request(s) for model instance '{self._instance}', "
            f"message: {type(exc).__name__}: {exc}"
        )

    def _results(self, responses: Any, count: int) -> list[InferResult]:
        if self._decoupled:
            if responses is not None:
                raise InternalError(
                    f"Python model '{self._instance}' is using the decoupled mode and the "
                    "execute function must return None"
                )
            return [None] * count
        if not isinstance(responses, list | tuple):
            raise InternalError(
                f"model '{self._name}': execute() must return a list of "
                f"pb_utils.InferenceResponse, one per request; it returned "
                f"{type(responses).__name__}"
            )
        if len(responses) != count:
            raise InternalError(
                f"model '{self._name}': execute() returned {len(responses)} responses for "
                f"{count} requests"
            )
        return [pb_utils.to_model_response(response, self._name) for response in responses]

    def unload(self) -> None:
        model, self._model = self._model, None
        finalize = getattr(model, "finalize", None)
        if finalize is None or self._scope is None:
            return
        token = pb_utils.enter(self._scope)
        try:
            result = finalize()
            if inspect.isawaitable(result):
                asyncio.run_coroutine_threadsafe(_awaited(result), self._scope.loop).result()
        finally:
            pb_utils.leave(token)


async def _awaited(result: Any) -> None:
    await result
