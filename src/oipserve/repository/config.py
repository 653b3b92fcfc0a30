"""Per-model configuration: Triton's ModelConfig, with the proto's field names.

One schema serves ``model.toml`` (ModelConfig written as TOML), Triton's JSON rendering (the
repository-load ``config`` override) and, later, ``config.pbtxt``. Unknown fields are refused with
a message that names them, as Triton's parser does. Sections we carry but do not act on yet
(``optimization``, ``model_warmup``, …) are kept as opaque tables.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import msgspec

from oipserve.errors import InvalidArgument
from oipserve.protocol.datatypes import CONFIG_NAMES, from_config_name
from oipserve.protocol.nesting import check_depth, too_deep
from oipserve.signature import TensorSpec


class _Base(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=False):
    pass


class TensorReshape(_Base):
    shape: list[int] = []


class ModelInput(_Base):
    name: str
    data_type: str = "TYPE_FP32"
    dims: list[int] = []
    format: str = "FORMAT_NONE"
    reshape: TensorReshape | None = None
    is_shape_tensor: bool = False
    allow_ragged_batch: bool = False
    optional: bool = False
    is_non_linear_format_io: bool = False


class ModelOutput(_Base):
    name: str
    data_type: str = "TYPE_FP32"
    dims: list[int] = []
    reshape: TensorReshape | None = None
    label_filename: str = ""
    is_shape_tensor: bool = False
    is_non_linear_format_io: bool = False


class QueuePolicy(_Base):
    timeout_action: str = "REJECT"
    default_timeout_microseconds: int = 0
    allow_timeout_override: bool = False
    max_queue_size: int = 0


class DynamicBatching(_Base):
    preferred_batch_size: list[int] = []
    max_queue_delay_microseconds: int = 0
    preserve_ordering: bool = False
    priority_levels: int = 0
    default_priority_level: int = 0
    default_queue_policy: QueuePolicy | None = None
    priority_queue_policy: dict[str, QueuePolicy] = {}


class InstanceGroup(_Base):
    name: str = ""
    kind: str = "KIND_CPU"
    count: int = 1
    gpus: list[int] = []
    profile: list[str] = []
    passive: bool = False
    host_policy: str = ""
    rate_limiter: dict[str, Any] | None = None
    secondary_devices: list[dict[str, Any]] = []


class LatestPolicy(_Base):
    num_versions: int = 1


class AllPolicy(_Base):
    pass


class SpecificPolicy(_Base):
    versions: list[int] = []


class VersionPolicy(_Base):
    latest: LatestPolicy | None = None
    all: AllPolicy | None = None
    specific: SpecificPolicy | None = None


class ModelParameter(_Base):
    string_value: str = ""


class TransactionPolicy(_Base):
    decoupled: bool = False


class ModelConfig(_Base):
    name: str = ""
    platform: str = ""
    backend: str = ""
    runtime: str = ""
    version_policy: VersionPolicy | None = None
    max_batch_size: int = 0
    input: list[ModelInput] = []
    output: list[ModelOutput] = []
    dynamic_batching: DynamicBatching | None = None
    sequence_batching: dict[str, Any] | None = None
    ensemble_scheduling: dict[str, Any] | None = None
    instance_group: list[InstanceGroup] = []
    default_model_filename: str = ""
    cc_model_filenames: dict[str, str] = {}
    metric_tags: dict[str, str] = {}
    parameters: dict[str, str | int | float | bool | ModelParameter] = {}
    model_warmup: list[dict[str, Any]] = []
    optimization: dict[str, Any] | None = None
    model_operations: dict[str, Any] | None = None
    model_transaction_policy: TransactionPolicy | None = None
    model_repository_agents: dict[str, Any] | None = None
    response_cache: dict[str, Any] | None = None
    model_metrics: dict[str, Any] | None = None
    batch_input: list[dict[str, Any]] = []
    batch_output: list[dict[str, Any]] = []

    def parameter_strings(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for key, value in self.parameters.items():
            if isinstance(value, ModelParameter):
                out[key] = value.string_value
            elif isinstance(value, bool):
                out[key] = "true" if value else "false"
            else:
                out[key] = str(value)
        return out

    def input_specs(self) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(i.name, from_config_name(i.data_type), tuple(i.dims)) for i in self.input
        )

    def output_specs(self) -> tuple[TensorSpec, ...]:
        return tuple(
            TensorSpec(o.name, from_config_name(o.data_type), tuple(o.dims)) for o in self.output
        )

    def validate(self) -> ModelConfig:
        """Check what the schema alone cannot; returns self so calls chain."""
        if self.max_batch_size < 0:
            raise InvalidArgument("max_batch_size must be >= 0")
        tensors: list[ModelInput | ModelOutput] = [*self.input, *self.output]
        for tensor in tensors:
            from_config_name(tensor.data_type)
            if any(d < -1 for d in tensor.dims):
                raise InvalidArgument(f"dims of '{tensor.name}' must be >= -1, got {tensor.dims}")
        if self.dynamic_batching is not None:
            db = self.dynamic_batching
            if any(size <= 0 for size in db.preferred_batch_size):
                raise InvalidArgument("preferred_batch_size entries must be > 0")
            if self.max_batch_size and any(
                s > self.max_batch_size for s in db.preferred_batch_size
            ):
                raise InvalidArgument("preferred_batch_size entries must be <= max_batch_size")
            if db.max_queue_delay_microseconds < 0:
                raise InvalidArgument("max_queue_delay_microseconds must be >= 0")
        for group in self.instance_group:
            if group.count < 1:
                raise InvalidArgument("instance_group count must be >= 1")
        return self

    def with_normalized_types(self) -> ModelConfig:
        """The same config with every ``data_type`` spelled ``TYPE_*`` (as Triton renders it)."""
        inputs = [
            msgspec.structs.replace(i, data_type=CONFIG_NAMES[from_config_name(i.data_type)])
            for i in self.input
        ]
        outputs = [
            msgspec.structs.replace(o, data_type=CONFIG_NAMES[from_config_name(o.data_type)])
            for o in self.output
        ]
        return msgspec.structs.replace(self, input=inputs, output=outputs)


def _convert(data: Any, source: str) -> ModelConfig:
    try:
        config = msgspec.convert(data, ModelConfig)
    except msgspec.ValidationError as exc:
        raise InvalidArgument(f"invalid model config in {source}: {exc}") from None
    return config.validate()


def parse_toml(text: str, source: str = "model.toml") -> ModelConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InvalidArgument(f"invalid TOML in {source}: {exc}") from None
    return _convert(data, source)


def parse_json(text: str | bytes, source: str = "config") -> ModelConfig:
    try:
        data = msgspec.json.decode(text)
    except RecursionError:  # msgspec guards its recursion: nesting past the interpreter's limit
        raise too_deep(source) from None
    except msgspec.DecodeError as exc:
        raise InvalidArgument(f"invalid JSON in {source}: {exc}") from None
    check_depth(data, source)
    if not isinstance(data, dict):
        raise InvalidArgument(f"{source} must be a JSON object")
    return _convert(data, source)


def from_builtins(data: dict[str, Any], source: str) -> ModelConfig:
    """A config from plain JSON-like data (a model's auto-completed config), checked."""
    return _convert(data, source)


def load_file(path: Path) -> ModelConfig:
    """Read ``model.toml`` (the native format)."""
    return parse_toml(path.read_text(encoding="utf-8"), str(path))


def to_builtins(config: ModelConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (every field, defaults included)."""
    result = msgspec.to_builtins(config)
    assert isinstance(result, dict)
    return result
