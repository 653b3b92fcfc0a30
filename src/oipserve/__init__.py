"""oipserve: a fast Open Inference Protocol (KServe V2) model server, REST and gRPC."""

from __future__ import annotations

__version__ = "0.1.0"

from oipserve.errors import (
    InternalError,
    InvalidArgument,
    ModelLoadError,
    ModelNotFound,
    OIPServeError,
    Unavailable,
)
from oipserve.model import (
    InferRequest,
    InferResponse,
    LoadContext,
    Model,
    ResponseSender,
    SenderClosed,
    Signature,
    TensorSpec,
)
from oipserve.settings import Settings

__all__ = [
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
