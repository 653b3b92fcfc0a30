"""Runtimes: one adapter per framework, imported lazily when a model of that kind loads.

Built-in runtimes are named by ``backend`` (``sklearn``, ``xgboost``, ``lightgbm``,
``onnxruntime``, ``pytorch``, ``python``); third-party runtimes register a :class:`oipserve.Model`
subclass in the ``oipserve.runtimes`` entry-point group under their backend name.
"""

from __future__ import annotations

import importlib
from importlib.metadata import entry_points

from oipserve.errors import ModelLoadError
from oipserve.model import LoadContext, Model

ENTRY_POINT_GROUP = "oipserve.runtimes"

#: backend → (module, class, extra that provides the framework)
BUILTIN: dict[str, tuple[str, str, str]] = {
    "sklearn": ("oipserve.runtimes.sklearn", "SKLearnModel", "sklearn"),
    "xgboost": ("oipserve.runtimes.xgboost", "XGBoostModel", "xgboost"),
    "lightgbm": ("oipserve.runtimes.lightgbm", "LightGBMModel", "lightgbm"),
    "onnxruntime": ("oipserve.runtimes.onnx", "OnnxModel", "onnx"),
    "pytorch": ("oipserve.runtimes.torch", "TorchModel", "torch"),
    "python": ("oipserve.runtimes.python", "", ""),
    "triton_python": ("oipserve.runtimes.triton_python", "TritonPythonRuntime", ""),
    "fil": ("oipserve.runtimes.fil", "FilModel", "xgboost"),
}


def available_backends() -> list[str]:
    names = set(BUILTIN)
    names.update(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))
    return sorted(names)


def instantiate(backend: str, ctx: LoadContext) -> Model:
    """A fresh, not yet loaded model of ``backend`` for the model described by ``ctx``."""
    if backend == "python":
        from oipserve.runtimes.python import instantiate_user_model

        return instantiate_user_model(ctx)
    if backend in BUILTIN:
        module_name, class_name, _extra = BUILTIN[backend]
        cls = getattr(importlib.import_module(module_name), class_name)
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == backend]
        if not found:
            raise ModelLoadError(
                f"unknown backend '{backend}' for model '{ctx.name}'; available: "
                f"{', '.join(available_backends())}"
            )
        cls = found[0].load()
    if not (isinstance(cls, type) and issubclass(cls, Model)):
        raise ModelLoadError(f"runtime for backend '{backend}' is not an oipserve.Model subclass")
    return cls()


def import_framework(module: str, extra: str) -> object:
    """Import a framework module, or fail with a load error naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ModelLoadError(
            f"the '{module}' package is not installed ({exc}); install it with "
            f"pip install 'oipserve[{extra}]'"
        ) from None
