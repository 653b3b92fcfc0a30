"""``config.pbtxt``: Triton's own model configuration, served as Triton serves it.

The file is protobuf text format of Triton's ``ModelConfig`` message (model_config.proto, the
messages the gRPC transport already generates). It is parsed with ``google.protobuf.text_format``
into that message, so a syntax error names its line and column and an unknown field is named, as
Triton's parser does; the message is then turned into oipserve's
:class:`~oipserve.repository.config.ModelConfig`, which every later step (versions, batching,
instance groups, labels, the ``ModelConfig`` rpc) already reads with Triton's meaning.

What Triton does here, and this reader does too (sources: triton-inference-server/core
``src/model_config_utils.cc`` and ``src/backend_model.cc``; the backends' READMEs):

- ``name`` may be left out (the folder's name is used); when given it must be the folder's.
- ``platform`` names a backend (``onnxruntime_onnx`` → ``onnxruntime``, ``pytorch_libtorch`` →
  ``pytorch``); :data:`SUPPORTED_BACKENDS` lists what oipserve runs, :data:`REFUSED` what it
  cannot (TensorRT, TensorFlow, OpenVINO, DALI, vLLM, TensorRT-LLM): those fail to load with
  "… is not supported by oipserve" and the list of what is. So does ``EXECUTION_ENV_PATH`` (a
  packed conda environment for the Python backend) and ``sequence_batching`` (stateful models).
- ``parameters`` values have ``$$TRITON_MODEL_DIRECTORY`` replaced by the model's folder.
- ``backend: "fil"`` reads the file FIL names after its ``model_type`` parameter
  (fil_backend ``docs/model_config.md``): ``xgboost`` → ``xgboost.model``, ``xgboost_json`` →
  ``xgboost.json``, ``xgboost_ubj`` → ``xgboost.ubj``, ``lightgbm`` → ``model.txt``,
  ``treelite_checkpoint`` → ``checkpoint.tl``; :mod:`oipserve.runtimes.fil` serves it.
- GPU-only and other sections oipserve does not act on (``optimization``, ``model_warmup``,
  ``response_cache``, ``model_repository_agents``, ``model_operations``, ``cc_model_filenames``,
  ``batch_input``/``batch_output``, ``rate_limiter``, instance ``gpus``) are accepted and logged
  as ignored, once per load.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from oipserve.errors import InvalidArgument
from oipserve.repository import config as config_module
from oipserve.repository import paths
from oipserve.repository.config import ModelConfig
from oipserve.repository.readers.base import check_config_name
from oipserve.repository.source import ModelSource, numeric_versions

logger = logging.getLogger("oipserve.readers")

CONFIG_FILE = "config.pbtxt"

#: Triton's ``platform`` values → the backend that runs them (core ``src/constants.h``)
PLATFORM_BACKENDS: dict[str, str] = {
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "tensorrt_plan": "tensorrt",
    "tensorflow_graphdef": "tensorflow",
    "tensorflow_savedmodel": "tensorflow",
}

#: The runtime key a Triton Python-backend model (``backend: "python"``) is passed on with:
#: ``python`` unchanged, which serves a ``model.py`` defining ``TritonPythonModel`` with the
#: Triton Python-backend runtime (``triton_python``) and an ``oipserve.Model`` with its own.
PYTHON_BACKEND_RUNTIME = "python"

#: Triton backends oipserve serves → the oipserve runtime that serves each
SUPPORTED_BACKENDS: dict[str, str] = {
    "onnxruntime": "onnxruntime",
    "pytorch": "pytorch",
    "python": PYTHON_BACKEND_RUNTIME,
    "fil": "fil",
    # oipserve's own runtimes, also named in a config.pbtxt
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}

#: Triton backends and platforms oipserve cannot serve, and what each is
REFUSED: dict[str, str] = {
    "tensorrt": "TensorRT",
    "tensorflow": "TensorFlow",
    "openvino": "OpenVINO",
    "dali": "DALI",
    "vllm": "vLLM",
    "tensorrtllm": "TensorRT-LLM",
    "ensemble": "the ensemble platform",
}

#: FIL's ``model_type`` → (the file FIL reads, the framework that reads it)
FIL_MODEL_FILES: dict[str, tuple[str, str]] = {
    "xgboost": ("xgboost.model", "xgboost"),
    "xgboost_json": ("xgboost.json", "xgboost"),
    "xgboost_ubj": ("xgboost.ubj", "xgboost"),
    "lightgbm": ("model.txt", "lightgbm"),
    "treelite_checkpoint": ("checkpoint.tl", "treelite"),
}

#: Sections accepted and logged as ignored (GPU-only, or not acted on by oipserve)
IGNORED_SECTIONS = (
    "optimization",
    "model_warmup",
    "response_cache",
    "model_repository_agents",
    "model_operations",
    "cc_model_filenames",
    "batch_input",
    "batch_output",
    "model_metrics",
)

MODEL_DIRECTORY_VARIABLE = "$$TRITON_MODEL_DIRECTORY"


class ConfigPbtxtReader:
    """A folder holding Triton's ``config.pbtxt``; versions are its numeric folders."""

    name = CONFIG_FILE
    config_file = CONFIG_FILE

    def recognises(self, folder: Path) -> bool:
        return (folder / self.config_file).is_file()

    def read(self, folder: Path, name: str) -> ModelSource:
        path = folder / self.config_file
        where = f"{name}/{self.config_file}"
        config = parse_pbtxt(path.read_text(encoding="utf-8"), where, folder)
        check_config_name(config, name, where)
        check_supported(config, where)
        config = _with_backend(config, where, folder)
        _log_ignored(config, where)
        return ModelSource(
            name=name,
            path=folder,
            config=config,
            versions=numeric_versions(folder),
            reader=self.name,
            config_file=path,
        )


def parse_pbtxt(text: str, where: str, folder: Path | None = None) -> ModelConfig:
    """``text`` (protobuf text format of Triton's ModelConfig) as oipserve's ModelConfig.

    A syntax error or an unknown field is :class:`InvalidArgument` naming ``where``, the line and
    the column (protobuf's message, which also names the field).
    """
    from google.protobuf import json_format, text_format

    from oipserve.protocol.messages import config_pb, int64_as_numbers

    message = config_pb.ModelConfig()
    try:
        text_format.Parse(text, message)
    except text_format.ParseError as exc:
        line, column = exc.GetLine(), exc.GetColumn()
        detail = str(exc)
        prefix = f"{line}:{column} : "
        if detail.startswith(prefix):
            detail = detail[len(prefix) :]
        raise InvalidArgument(
            f"invalid config in {where}: line {line}, column {column}: {detail}"
        ) from None
    data: dict[str, Any] = json_format.MessageToDict(message, preserving_proto_field_name=True)
    int64_as_numbers(config_pb.ModelConfig.DESCRIPTOR, data)
    if folder is not None and "parameters" in data:
        data["parameters"] = {
            key: {"string_value": _expand(value.get("string_value", ""), folder)}
            for key, value in data["parameters"].items()
        }
    _default_instance_counts(data)
    return config_module.from_builtins(data, where)


def _default_instance_counts(data: dict[str, Any]) -> None:
    """Triton's default instance count where a group gives none (core
    ``model_config_utils.cc`` ``SetDefaultInstanceCount``): 2 for a CPU group of the ONNX
    Runtime (and TensorFlow) backend, 1 otherwise; no ``instance_group`` at all is one such
    group (on a machine without GPUs, which is how oipserve runs)."""
    backend = data.get("backend") or PLATFORM_BACKENDS.get(data.get("platform", ""), "")
    default = 2 if backend == "onnxruntime" else 1
    groups = data.get("instance_group") or [{}]
    for group in groups:
        if not group.get("count"):
            group["count"] = (
                default if group.get("kind", "KIND_AUTO") in ("KIND_AUTO", "KIND_CPU") else 1
            )
    data["instance_group"] = groups


def _expand(value: str, folder: Path) -> str:
    return value.replace(MODEL_DIRECTORY_VARIABLE, str(folder))


def _supported_list() -> str:
    platforms = ", ".join(
        f"platform '{p}'" for p, b in PLATFORM_BACKENDS.items() if b in SUPPORTED_BACKENDS
    )
    backends = ", ".join(f"backend '{b}'" for b in SUPPORTED_BACKENDS)
    return f"{platforms}, {backends}"


def check_supported(config: ModelConfig, where: str) -> None:
    """Refuse what oipserve cannot serve, naming it and listing what it can."""
    for kind, value in (("platform", config.platform), ("backend", config.backend)):
        backend = PLATFORM_BACKENDS.get(value, value) if kind == "platform" else value
        if backend in REFUSED:
            raise InvalidArgument(
                f"{kind} '{value}' ({REFUSED[backend]}) in {where} is not supported by oipserve; "
                f"supported: {_supported_list()}"
            )
    if "EXECUTION_ENV_PATH" in config.parameters:
        raise InvalidArgument(
            f"parameter EXECUTION_ENV_PATH (a packed Python environment) in {where} is not "
            "supported by oipserve: install the model's packages into the server's environment "
            f"and remove the parameter; supported: {_supported_list()}"
        )
    if config.sequence_batching is not None:
        raise InvalidArgument(
            f"sequence_batching in {where} is not supported by oipserve (stateful models need "
            "Triton's sequence batcher); remove it or use dynamic_batching"
        )


def _with_backend(config: ModelConfig, where: str, folder: Path) -> ModelConfig:
    """``config`` with ``backend`` naming the oipserve runtime (and FIL's model file)."""
    import msgspec

    backend = config.backend or PLATFORM_BACKENDS.get(config.platform, "")
    if not backend:
        return config
    updates: dict[str, Any] = {}
    if backend == "fil":
        model_type = config.parameter_strings().get("model_type", "xgboost")
        if model_type not in FIL_MODEL_FILES:
            raise InvalidArgument(
                f"parameter model_type '{model_type}' in {where} is not one of FIL's: "
                f"{', '.join(FIL_MODEL_FILES)}"
            )
        filename, framework = FIL_MODEL_FILES[model_type]
        if framework == "treelite":
            raise InvalidArgument(
                f"model_type 'treelite_checkpoint' ({filename}) in {where} is not supported by "
                "oipserve: save the model as xgboost_ubj, xgboost_json, xgboost or lightgbm"
            )
        if not config.default_model_filename:
            updates["default_model_filename"] = filename
    if config.default_model_filename:
        paths.relative_inside(config.default_model_filename, f"default_model_filename in {where}")
    updates["backend"] = SUPPORTED_BACKENDS.get(backend, backend)
    return msgspec.structs.replace(config, **updates)


def _log_ignored(config: ModelConfig, where: str) -> None:
    ignored = [
        section for section in IGNORED_SECTIONS if getattr(config, section) not in (None, [], {})
    ]
    if any(group.gpus for group in config.instance_group):
        ignored.append("instance_group.gpus")
    if any(group.rate_limiter for group in config.instance_group):
        ignored.append("instance_group.rate_limiter")
    if ignored:
        logger.warning(
            "%s: %s accepted and ignored (oipserve runs on the CPU and does not act on them)",
            where,
            ", ".join(ignored),
        )
