"""The gRPC message classes, under short names.

``pb`` holds the inference-service messages (``pb.ModelInferRequest`` ...) and
``config_pb`` the model-configuration messages (``config_pb.ModelConfig`` ...).
Both are generated from ``proto/oipserve/grpc/v2/`` by
``scripts/generate_proto.py``; their protobuf package is ``oipserve.grpc.v2`` so
they can live next to tritonclient's ``inference.*`` in one process, and they
are wire-compatible with Triton's messages.
"""

from typing import Any, Final

from google.protobuf.descriptor import Descriptor, FieldDescriptor

from oipserve.protocol._generated.oipserve.grpc.v2 import (
    grpc_service_pb2 as pb,
)
from oipserve.protocol._generated.oipserve.grpc.v2 import (
    model_config_pb2 as config_pb,
)

SERVICE_NAME: Final = "inference.GRPCInferenceService"
"""Wire name of the inference service (method paths ``/inference.GRPCInferenceService/<Rpc>``),
as Triton and MLServer register it; the server and the client both use this one constant."""

_INT64_TYPES: Final = frozenset(
    {
        FieldDescriptor.TYPE_INT64,
        FieldDescriptor.TYPE_UINT64,
        FieldDescriptor.TYPE_FIXED64,
        FieldDescriptor.TYPE_SFIXED64,
        FieldDescriptor.TYPE_SINT64,
    }
)


def int64_as_numbers(descriptor: Descriptor | Any, data: dict[str, Any]) -> None:
    """Turn the strings protobuf's JSON printer writes for 64-bit integers back into numbers, in
    place (``data`` is ``MessageToDict`` of a message of type ``descriptor``)."""
    for key, value in data.items():
        field = descriptor.fields_by_name.get(key)
        if field is None:
            continue
        message_type = field.message_type
        if message_type is not None and message_type.GetOptions().map_entry:
            value_field = message_type.fields_by_name["value"]
            if value_field.message_type is not None:
                for item in value.values():
                    int64_as_numbers(value_field.message_type, item)
            elif value_field.type in _INT64_TYPES:
                data[key] = {k: int(v) for k, v in value.items()}
        elif message_type is not None:
            for item in value if isinstance(value, list) else [value]:
                int64_as_numbers(message_type, item)
        elif field.type in _INT64_TYPES:
            data[key] = [int(v) for v in value] if isinstance(value, list) else int(value)


__all__ = ["SERVICE_NAME", "config_pb", "int64_as_numbers", "pb"]
