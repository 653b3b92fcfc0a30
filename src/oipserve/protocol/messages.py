"""The gRPC message classes, under short names.

``pb`` holds the inference-service messages (``pb.ModelInferRequest`` ...) and
``config_pb`` the model-configuration messages (``config_pb.ModelConfig`` ...).
Both are generated from ``proto/oipserve/grpc/v2/`` by
``scripts/generate_proto.py``; their protobuf package is ``oipserve.grpc.v2`` so
they can live next to tritonclient's ``inference.*`` in one process, and they
are wire-compatible with Triton's messages.
"""

from typing import Final

from oipserve.protocol._generated.oipserve.grpc.v2 import (
    grpc_service_pb2 as pb,
)
from oipserve.protocol._generated.oipserve.grpc.v2 import (
    model_config_pb2 as config_pb,
)

SERVICE_NAME: Final = "inference.GRPCInferenceService"
"""Wire name of the inference service (method paths ``/inference.GRPCInferenceService/<Rpc>``),
as Triton and MLServer register it; the server and the client both use this one constant."""

__all__ = ["SERVICE_NAME", "config_pb", "pb"]
