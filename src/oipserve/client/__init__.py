"""An Open Inference Protocol client for oipserve, Triton, MLServer and KServe: sync and async,
REST and gRPC behind one API, numpy in and numpy out.

    from oipserve.client import Client

    with Client("http://localhost:8080") as client:          # or "grpc://localhost:8081"
        result = client.infer("iris", {"input-0": features})
        print(result["predict"])

Errors are the classes of :mod:`oipserve.errors`, rebuilt from the status the server answered
(plus :class:`ConnectError` when it could not be reached). ``import oipserve.client`` does not
load grpc: a gRPC client imports it when built.
"""

from oipserve.client._client import AsyncClient, Client
from oipserve.client._errors import ConnectError
from oipserve.client._types import (
    IndexEntry,
    InferResult,
    ModelMetadata,
    ServerMetadata,
    TensorMetadata,
)

__all__ = [
    "AsyncClient",
    "Client",
    "ConnectError",
    "IndexEntry",
    "InferResult",
    "ModelMetadata",
    "ServerMetadata",
    "TensorMetadata",
]
