"""The public namespace is pinned, and light imports stay light."""

from __future__ import annotations

import subprocess
import sys

import oipserve


def test_public_api_is_pinned() -> None:
    assert oipserve.__all__ == [
        "InferRequest",
        "InferResponse",
        "InternalError",
        "InvalidArgument",
        "LoadContext",
        "Model",
        "ModelLoadError",
        "ModelNotFound",
        "OIPServeError",
        "ResponseSender",
        "SenderClosed",
        "Settings",
        "Signature",
        "TensorSpec",
        "Unavailable",
        "__version__",
    ]
    for name in oipserve.__all__:
        assert hasattr(oipserve, name)


def _modules_after_import(statement: str) -> set[str]:
    code = f"import sys; {statement}; print('\\n'.join(sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout
    return set(out.split())


HEAVY = {"torch", "onnxruntime", "sklearn", "xgboost", "lightgbm", "grpc", "uvicorn", "starlette"}


def test_import_oipserve_is_light() -> None:
    loaded = _modules_after_import("import oipserve")
    assert not loaded & HEAVY


def test_protocol_layer_has_no_transport_or_framework() -> None:
    loaded = _modules_after_import(
        "import oipserve.protocol.codec, oipserve.protocol.binary, oipserve.protocol.tensor"
    )
    assert not loaded & HEAVY


def test_runtimes_and_dataplane_never_import_a_transport() -> None:
    loaded = _modules_after_import(
        "import oipserve.dataplane, oipserve.registry, oipserve.runtimes.sklearn"
    )
    assert not loaded & {"grpc", "uvicorn", "httptools", "oipserve.transport.http.app"}
    assert "sklearn" not in loaded  # frameworks load inside Model.load(), not at import
