"""A model's configuration as Triton shows it: the ``ModelConfig`` protobuf and its JSON form.

The model configuration extension (PROTOCOL.md §3.1) answers with Triton's ModelConfig: over gRPC
the message itself, over REST its JSON rendering, which ``perf_analyzer`` and tritonclient users
read. Both come from one place: our :class:`~oipserve.repository.config.ModelConfig` is completed
with the defaults Triton fills in (``version_policy``, ``instance_group``,
``model_transaction_policy``), turned into the ``config_pb.ModelConfig`` message, and the JSON is
that message printed the way Triton prints it:

- proto field names, enums by name;
- every scalar, repeated and map field, even at its default; unset message fields (and oneof
  members) left out, so ``dynamic_batching`` appears only when it is configured;
- 64-bit integers as JSON numbers (protobuf prints them as strings; Triton converts them back).

The message schema is the one of the gRPC transport's ``model_config.proto``: parsing a config
into it is also how a repository-load ``config`` is checked beyond what the struct checks (the
sections we only carry, such as ``optimization`` or ``sequence_batching``).

protobuf and the generated messages are imported when first needed, so importing the dataplane
stays light and loads no transport module (``tests/unit/test_public_api.py``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import msgspec

from oipserve.errors import InvalidArgument
from oipserve.repository.config import InstanceGroup, ModelConfig

if TYPE_CHECKING:
    from oipserve.protocol.messages import config_pb


DEFAULT_VERSION_POLICY: dict[str, Any] = {"latest": {"num_versions": 1}}


def _without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _instance_groups(config: ModelConfig) -> list[InstanceGroup]:
    groups = config.instance_group or [InstanceGroup()]
    completed: list[InstanceGroup] = []
    for index, group in enumerate(groups):
        updates: dict[str, Any] = {}
        if not group.name:
            updates["name"] = f"{config.name}_{index}" if config.name else str(index)
        if group.kind == "KIND_AUTO":
            updates["kind"] = "KIND_CPU"  # oipserve runs every instance on the CPU
        completed.append(msgspec.structs.replace(group, **updates) if updates else group)
    return completed


def triton_dict(config: ModelConfig) -> dict[str, Any]:
    """``config`` with Triton's defaults, as data shaped like the proto's JSON (unprinted)."""
    config = msgspec.structs.replace(
        config.with_normalized_types(), instance_group=_instance_groups(config)
    )
    data: dict[str, Any] = _without_nulls(msgspec.to_builtins(config))
    data["parameters"] = {
        key: {"string_value": value} for key, value in config.parameter_strings().items()
    }
    policy = data.get("version_policy")
    if not policy:
        data["version_policy"] = DEFAULT_VERSION_POLICY
    if "model_transaction_policy" not in data:
        data["model_transaction_policy"] = {"decoupled": False}
    return data


def to_proto(config: ModelConfig, source: str = "the model config") -> config_pb.ModelConfig:
    """The ``ModelConfig`` message of ``config`` (what the gRPC ``ModelConfig`` rpc returns).

    A field the proto does not know, or a value of the wrong type, is :class:`InvalidArgument`
    naming it (the message comes from protobuf's JSON parser).
    """
    from google.protobuf import json_format

    from oipserve.protocol.messages import config_pb

    message = config_pb.ModelConfig()
    try:
        json_format.ParseDict(triton_dict(config), message)
    except json_format.ParseError as exc:
        raise InvalidArgument(f"invalid model config in {source}: {exc}") from None
    return message


def to_json(config: ModelConfig) -> dict[str, Any]:
    """Triton's JSON rendering of ``config`` (what ``GET .../config`` returns)."""
    return message_to_json(to_proto(config))


def message_to_json(message: config_pb.ModelConfig) -> dict[str, Any]:
    from google.protobuf import json_format

    from oipserve.protocol.messages import config_pb, int64_as_numbers

    data = json_format.MessageToDict(
        message, always_print_fields_with_no_presence=True, preserving_proto_field_name=True
    )
    int64_as_numbers(config_pb.ModelConfig.DESCRIPTOR, data)
    return data


def check(config: ModelConfig, source: str) -> None:
    """Refuse ``config`` if the ModelConfig proto would (unknown nested fields, bad enums)."""
    to_proto(config, source)
