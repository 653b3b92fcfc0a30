"""A model folder as KServe's storage initializer leaves it: the model's files under their own
names (``iris.joblib``, ``model.bst``, ``booster.json``), no config file.

KServe's model servers find their file by extension, not by name (kserve/kserve
``python/sklearnserver/sklearnserver/model.py``: ``*.joblib``, ``*.pkl``, ``*.pickle``;
``python/xgbserver/xgbserver/model.py``: ``*.bst``, ``*.json``, ``*.ubj``;
``python/lgbserver/lgbserver/model.py``: ``*.bst``, ``*.txt``), and KServe's examples call a
LightGBM model ``model.bst`` as well as XGBoost's. So the file is found by extension here too, and
what a ``.bst``, ``.txt`` or ``.json`` file holds is read from its first bytes: a LightGBM text
model starts with ``tree``, an XGBoost JSON model is an object whose first key is ``learner``.
Files that accompany models are never taken for one: ``labels.txt`` (the classification
extension's labels), ``*settings.json`` (MLServer's), ``config.json`` and tokenizer files (Hugging
Face's).

The reader answers with the file and its runtime as if ``model.toml`` had said
``backend = "..."`` and ``default_model_filename = "..."``. It recognises only a folder that
zero-config does not (no ``model.<ext>`` file) and that no config file describes.
"""

from __future__ import annotations

from pathlib import Path

from oipserve.errors import InvalidArgument
from oipserve.repository.config import ModelConfig
from oipserve.repository.readers.guess import model_files
from oipserve.repository.source import ModelSource

#: extension → runtime, where the extension alone decides
_BY_EXTENSION = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".pickle": "sklearn",
    ".ubj": "xgboost",
    ".onnx": "onnxruntime",
    ".pt": "pytorch",
}

#: extensions whose content decides (see :func:`runtime_of`)
_BY_CONTENT = (".bst", ".txt", ".json")

#: the extensions looked for, for messages
LOOKED_FOR = (
    "*.joblib",
    "*.pkl",
    "*.pickle",
    "*.bst",
    "*.json",
    "*.ubj",
    "*.txt",
    "*.onnx",
    "*.pt",
)

#: files that sit beside a model and are never one (lower case)
NEVER_MODELS = frozenset(
    {
        "labels.txt",
        "config.json",
        "generation_config.json",
        "preprocessor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
        "vocab.txt",
        "merges.txt",
        "requirements.txt",
    }
)

_PEEK = 256


def runtime_of(path: Path) -> str:
    """The runtime of model file ``path``, or ``""`` when it is not a model file."""
    name = path.name.lower()
    if name in NEVER_MODELS or name.endswith("settings.json") or name.startswith("tokenizer"):
        return ""
    suffix = path.suffix.lower()
    if suffix in _BY_EXTENSION:
        return _BY_EXTENSION[suffix]
    if suffix not in _BY_CONTENT:
        return ""
    try:
        with path.open("rb") as file:
            head = file.read(_PEEK)
    except OSError:
        return ""
    if head.startswith(b"tree"):
        return "lightgbm"
    if suffix == ".bst":
        return "xgboost"  # XGBoost's binary (or UBJSON) format
    if suffix == ".json" and head.lstrip().startswith(b"{") and b'"learner"' in head:
        return "xgboost"
    return ""


def model_file_candidates(folder: Path) -> dict[Path, str]:
    """The files directly in ``folder`` that are model files: path → runtime."""
    found: dict[Path, str] = {}
    for entry in sorted(folder.iterdir()):
        if entry.is_file() and not entry.name.startswith("."):
            runtime = runtime_of(entry)
            if runtime:
                found[entry] = runtime
    return found


class StorageInitializerReader:
    """A folder holding one model file of any name (KServe's ``/mnt/models``)."""

    name = "model file"
    config_file = ""

    def recognises(self, folder: Path) -> bool:
        return not model_files(folder) and bool(model_file_candidates(folder))

    def read(self, folder: Path, name: str) -> ModelSource:
        candidates = model_file_candidates(folder)
        if len(candidates) > 1:
            listed = ", ".join(f"{path.name} ({runtime})" for path, runtime in candidates.items())
            raise InvalidArgument(
                f"model '{name}' is ambiguous: {folder} holds several model files ({listed}); "
                "keep one, or name it with default_model_filename in a model.toml"
            )
        if not candidates:
            raise InvalidArgument(
                f"model '{name}' has no model file: looked for {', '.join(LOOKED_FOR)} in {folder}"
            )
        ((path, runtime),) = candidates.items()
        return ModelSource(
            name=name,
            path=folder,
            config=ModelConfig(backend=runtime, default_model_filename=path.name),
            versions={"1": folder},
            reader=self.name,
            config_origin=f"the model file {path.name}",
        )
