"""Python models: a ``model.py`` that defines exactly one :class:`oipserve.Model` subclass.

The file is imported under a private module name (one per model and version), so two models may
both call their class ``Model``. Nothing in it runs until the model loads.
"""

from __future__ import annotations

import importlib.util
import inspect
import sys
from pathlib import Path

from oipserve.errors import ModelLoadError
from oipserve.model import LoadContext, Model
from oipserve.runtimes.triton_python import defines_triton_model


def _module_name(ctx: LoadContext) -> str:
    safe = "".join(c if c.isalnum() else "_" for c in ctx.name)
    return f"oipserve_user_models.{safe}_v{ctx.version}"


def import_model_class(path: Path, module_name: str) -> type[Model]:
    """Import ``path`` afresh: compiled from its source every time (never from ``__pycache__``,
    whose timestamps can miss a file rewritten within the same second), so a reload always runs
    the code on disk."""
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
    classes = [
        obj
        for obj in vars(module).values()
        if inspect.isclass(obj)
        and issubclass(obj, Model)
        and obj.__module__ == module_name
        and not inspect.isabstract(obj)
    ]
    if len(classes) != 1:
        found = ", ".join(c.__name__ for c in classes) or "none"
        raise ModelLoadError(
            f"{path} must define exactly one oipserve.Model subclass (found: {found})"
        )
    return classes[0]


def instantiate_user_model(ctx: LoadContext) -> Model:
    path = ctx.model_file
    if path is None or path.suffix != ".py":
        candidates = [ctx.path / "model.py", ctx.path.parent / "model.py"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise ModelLoadError(f"model '{ctx.name}' has backend 'python' but no model.py")
    if defines_triton_model(path):  # Triton's Python backend: backend "python" in config.pbtxt
        from oipserve.runtimes.triton_python import TritonPythonRuntime

        return TritonPythonRuntime()
    cls = import_model_class(path, _module_name(ctx))
    try:
        return cls()
    except Exception as exc:
        raise ModelLoadError(f"{cls.__name__}() failed: {type(exc).__name__}: {exc}") from exc
