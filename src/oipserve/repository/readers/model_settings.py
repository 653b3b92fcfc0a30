"""``model-settings.json``: Seldon MLServer's model format, read into oipserve's ModelConfig.

Field by field, as MLServer 1.7.1 reads them (``mlserver/settings.py``, ``ModelSettings`` and
``ModelParameters``; ``mlserver/utils.py``, ``get_model_uri``):

- ``name``: the model's name. In a folder-per-model repository it must match the folder name.
- ``implementation``: ``mlserver_sklearn.SKLearnModel``, ``mlserver_xgboost.XGBoostModel`` and
  ``mlserver_lightgbm.LightGBMModel`` map to oipserve's ``sklearn``, ``xgboost`` and ``lightgbm``
  runtimes; any other class is a custom ``MLModel`` runtime, which oipserve does not run yet: the
  model fails to load saying so. Without ``implementation`` the runtime is guessed from the model
  file, as for a folder with no config file.
- ``parameters.uri``: the model file, or a folder searched for the runtime's well-known file
  names (:data:`WELLKNOWN_MODEL_FILENAMES`, copied from each runtime's module in MLServer:
  ``runtimes/sklearn/mlserver_sklearn/sklearn.py``, ``runtimes/xgboost/mlserver_xgboost/
  xgboost.py``, ``runtimes/lightgbm/mlserver_lightgbm/lightgbm.py``). A relative path is resolved
  against the folder of the settings file, as MLServer's ``to_absolute_path`` does; by default
  that folder itself. Deliberate deviation, for safety: a path outside the model's folder and a
  remote scheme (``s3://``, ``gs://``, …) are refused.
- ``parameters.version``: the version label the model is served under
  (``/v2/models/{name}/versions/v0.1.0``); without it the version is ``1``.
- ``parameters.content_type`` and ``parameters.extra``: kept in the config's ``parameters``
  (``mlserver.content_type``, ``mlserver.extra`` as JSON), not acted on yet.
- ``inputs`` / ``outputs``: the declared tensors (``name``, ``datatype``, ``shape``).
- ``max_batch_size`` with ``max_batch_time`` (seconds): MLServer batches adaptively only when
  ``max_batch_size > 1`` and ``max_batch_time > 0`` (``load_batching`` in
  ``mlserver/batching/hooks.py``); then dynamic batching with
  ``max_queue_delay_microseconds = max_batch_time * 1e6``.

Every other field is ignored and logged, as MLServer ignores what it does not use; a field of the
wrong type fails the load naming the field; a file that is not JSON fails it with the reason.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlparse

import msgspec

from oipserve.errors import InvalidArgument
from oipserve.protocol.datatypes import CONFIG_NAMES, from_config_name
from oipserve.repository.config import DynamicBatching, ModelConfig, ModelInput, ModelOutput
from oipserve.repository.source import ModelSource

logger = logging.getLogger("oipserve.readers")

SETTINGS_FILE = "model-settings.json"

#: MLServer's implementation class → oipserve's runtime
RUNTIME_BY_IMPLEMENTATION: dict[str, str] = {
    "mlserver_sklearn.SKLearnModel": "sklearn",
    "mlserver_xgboost.XGBoostModel": "xgboost",
    "mlserver_lightgbm.LightGBMModel": "lightgbm",
}

#: the file names each MLServer runtime looks for in a ``uri`` that is a folder, in its order
#: (``model.ubj`` is in MLServer's XGBoost list since the UBJSON format was added to it)
WELLKNOWN_MODEL_FILENAMES: dict[str, tuple[str, ...]] = {
    "sklearn": ("model.joblib", "model.pickle", "model.pkl"),
    "xgboost": ("model.bst", "model.json", "model.ubj"),
    "lightgbm": ("model.bst",),
}

#: MLServer ``ModelSettings`` fields oipserve reads
_READ_FIELDS = frozenset(
    {"name", "implementation", "parameters", "inputs", "outputs", "max_batch_size",
     "max_batch_time"}
)  # fmt: skip
#: MLServer ``ModelParameters`` fields oipserve reads
_READ_PARAMETERS = frozenset({"uri", "version", "content_type", "extra"})

_DEFAULT_VERSION = "1"


class ModelSettingsReader:
    """A folder holding ``model-settings.json``: one model, one version (its ``version`` label)."""

    name = "model-settings.json"
    config_file = SETTINGS_FILE

    def recognises(self, folder: Path) -> bool:
        return (folder / self.config_file).is_file()

    def read(self, folder: Path, name: str) -> ModelSource:
        path = folder / self.config_file
        where = f"{name}/{self.config_file}"
        settings = parse(path.read_bytes(), where)
        declared = _string(settings, "name", where)
        if declared and declared != name:
            raise InvalidArgument(
                f"{where} names the model '{declared}'; it must match the folder name '{name}'"
            )
        parameters = _object(settings, "parameters", where)
        version = _string(parameters, "version", where, "parameters.") or _DEFAULT_VERSION
        if version in {".", ".."} or "/" in version or "\x00" in version:
            raise InvalidArgument(f"invalid parameters.version {version!r} in {where}")
        backend = _backend(_string(settings, "implementation", where), where)
        model_file = _model_file(folder, parameters, backend, where)
        config = ModelConfig(
            backend=backend,
            default_model_filename=model_file,
            parameters=_kept_parameters(parameters, where),
            **_batching(settings, where),
        )
        config = msgspec.structs.replace(
            config,
            input=[_tensor(ModelInput, t, config.max_batch_size, where, "inputs") for t in
                   _list(settings, "inputs", where)],
            output=[_tensor(ModelOutput, t, config.max_batch_size, where, "outputs") for t in
                    _list(settings, "outputs", where)],
        ).validate()  # fmt: skip
        _log_ignored(settings, parameters, where)
        return ModelSource(
            name=name,
            path=folder,
            config=config,
            versions={version: folder},
            reader=self.name,
            config_file=path,
        )


def parse(data: bytes, where: str) -> dict[str, Any]:
    """The settings file as a JSON object; :class:`InvalidArgument` with the reason otherwise."""
    try:
        settings = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"{where} is not valid JSON: {exc}") from None
    if not isinstance(settings, dict):
        raise InvalidArgument(f"{where} must hold a JSON object, not {type(settings).__name__}")
    return settings


def _wrong_type(field: str, expected: str, value: Any, where: str) -> InvalidArgument:
    return InvalidArgument(
        f"invalid {field} in {where}: expected {expected}, got {json.dumps(value)[:80]}"
    )


def _string(data: dict[str, Any], key: str, where: str, prefix: str = "") -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _wrong_type(prefix + key, "a string", value, where)
    return value


def _object(data: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _wrong_type(key, "an object", value, where)
    return value


def _list(data: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise _wrong_type(key, "a list of objects", value, where)
    return value


def _number(data: dict[str, Any], key: str, where: str, *, integer: bool) -> float:
    value = data.get(key)
    if value is None:
        return 0
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise _wrong_type(key, "an integer" if integer else "a number", value, where)
    if value < 0:
        raise InvalidArgument(f"invalid {key} in {where}: must be >= 0, got {value}")
    return value


def _backend(implementation: str, where: str) -> str:
    if not implementation:
        return ""  # guessed from the model file, as for a folder with no config file
    backend = RUNTIME_BY_IMPLEMENTATION.get(implementation)
    if backend is None:
        raise InvalidArgument(
            f"{where}: implementation '{implementation}' is a custom MLServer runtime; oipserve "
            f"does not run custom MLModel runtimes yet (it serves "
            f"{', '.join(RUNTIME_BY_IMPLEMENTATION)}). Running them beside `pip install "
            "mlserver` is planned; until then serve this model with MLServer"
        )
    return backend


def _model_file(folder: Path, parameters: dict[str, Any], backend: str, where: str) -> str:
    """The model file, relative to ``folder`` (POSIX); ``""`` when the runtime is to be guessed
    from the folder itself. MLServer's ``get_model_uri``, without remote storage."""
    uri = _string(parameters, "uri", where, "parameters.")
    if uri:
        parsed = urlparse(uri, scheme="file")
        if parsed.scheme != "file" or parsed.netloc:
            raise InvalidArgument(
                f"parameters.uri '{uri}' in {where} names remote storage; oipserve reads model "
                "files from the repository only: copy the file into the model's folder"
            )
        target = (folder / parsed.path).resolve()
    else:
        target = folder.resolve()
    base = folder.resolve()
    if target != base and base not in target.parents:
        raise InvalidArgument(
            f"parameters.uri '{uri}' in {where} points outside the model's folder; oipserve "
            "reads only files inside it"
        )
    if target.is_file():
        return PurePosixPath(*target.relative_to(base).parts).as_posix()
    if not target.is_dir():
        raise InvalidArgument(f"parameters.uri '{uri}' in {where}: {target} does not exist")
    names = WELLKNOWN_MODEL_FILENAMES.get(backend, ())
    for candidate in names:
        if (target / candidate).is_file():
            return PurePosixPath(*(target / candidate).relative_to(base).parts).as_posix()
    if target == base:
        return ""  # the model folder: guessed as for a folder with no config file
    raise InvalidArgument(
        f"parameters.uri '{uri}' in {where} is a folder holding none of "
        f"{', '.join(names) or 'the known model files'}"
    )


def _kept_parameters(parameters: dict[str, Any], where: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    content_type = _string(parameters, "content_type", where, "parameters.")
    if content_type:
        kept["mlserver.content_type"] = content_type
    extra = parameters.get("extra")
    if extra is not None:
        if not isinstance(extra, dict):
            raise _wrong_type("parameters.extra", "an object", extra, where)
        kept["mlserver.extra"] = json.dumps(extra, sort_keys=True)
    return kept


def _batching(settings: dict[str, Any], where: str) -> dict[str, Any]:
    size = int(_number(settings, "max_batch_size", where, integer=True))
    seconds = _number(settings, "max_batch_time", where, integer=False)
    if size > 1 and seconds > 0:
        delay = round(seconds * 1_000_000)
        return {
            "max_batch_size": size,
            "dynamic_batching": DynamicBatching(max_queue_delay_microseconds=delay),
        }
    if size > 0 or seconds > 0:
        logger.info(
            "%s: adaptive batching needs both max_batch_size and max_batch_time (as in "
            "MLServer); requests are not batched",
            where,
        )
    return {}


def _tensor(
    kind: type[ModelInput] | type[ModelOutput],
    tensor: dict[str, Any],
    max_batch_size: int,
    where: str,
    field: str,
) -> Any:
    name = _string(tensor, "name", where, f"{field}[].")
    if not name:
        raise InvalidArgument(f"invalid {field} in {where}: every tensor needs a name")
    datatype = _string(tensor, "datatype", where, f"{field}[{name}].") or "FP32"
    try:
        data_type = CONFIG_NAMES[from_config_name(datatype)]
    except InvalidArgument:
        raise InvalidArgument(
            f"invalid {field}[{name}].datatype in {where}: unknown datatype '{datatype}'"
        ) from None
    shape = tensor.get("shape", [])
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) for d in shape
    ):
        raise _wrong_type(f"{field}[{name}].shape", "a list of integers", shape, where)
    if max_batch_size > 0 and shape and shape[0] == -1:
        shape = shape[1:]  # the batch dimension, which Triton's config leaves out
    return kind(name=name, data_type=data_type, dims=shape)


def _log_ignored(settings: dict[str, Any], parameters: dict[str, Any], where: str) -> None:
    ignored = sorted(set(settings) - _READ_FIELDS) + sorted(
        f"parameters.{key}" for key in set(parameters) - _READ_PARAMETERS
    )
    if ignored:
        logger.info("%s: ignoring %s (no oipserve equivalent yet)", where, ", ".join(ignored))
