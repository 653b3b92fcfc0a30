"""Zero-config: a folder with no config file, its runtime guessed from the one ``model.*`` file.

The reader itself is simple (an empty :class:`ModelConfig`, Triton's version folders); the
guessing is :func:`guess_backend`, which every format uses when its config names no runtime or
no file: ``model.<ext>`` in the version folder (then the model folder), the extension naming the
runtime (:data:`BACKEND_BY_EXTENSION`; a ``.bst`` file's content tells LightGBM from XGBoost).
A lone model file of another name (``iris.joblib``) is the ``storage_initializer`` reader's. This
reader is the last of the table, and reads a folder nothing else recognises, so that a folder with
no model file is told what it lacks.
"""

from __future__ import annotations

from pathlib import Path

from oipserve.errors import InvalidArgument
from oipserve.repository import paths
from oipserve.repository.config import ModelConfig
from oipserve.repository.source import NATIVE_CONFIG_FILE, ModelSource, numeric_versions

#: model file extension → backend name
BACKEND_BY_EXTENSION: dict[str, str] = {
    ".joblib": "sklearn",
    ".pkl": "sklearn",
    ".ubj": "xgboost",
    ".bst": "xgboost",
    ".json": "xgboost",
    ".txt": "lightgbm",
    ".onnx": "onnxruntime",
    ".pt": "pytorch",
    ".pt2": "pytorch",
    ".py": "python",
}

#: Triton's ``platform`` values that name one of our runtimes
_PLATFORMS = {
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "pytorch_torchscript": "pytorch",
    "pytorch_export": "pytorch",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}


class ZeroConfigReader:
    """A folder with a ``model.<ext>`` file of a known runtime (or such a file in a numeric
    version folder) and no config file."""

    name = "zero-config"
    config_file = ""

    def recognises(self, folder: Path) -> bool:
        if model_files(folder):
            return True
        versions = numeric_versions(folder)
        return any(model_files(path) for path in versions.values() if path != folder)

    def read(self, folder: Path, name: str) -> ModelSource:
        return ModelSource(
            name=name,
            path=folder,
            config=ModelConfig(),
            versions=numeric_versions(folder),
            reader=self.name,
        )


def backend_of_file(path: Path) -> str:
    """The runtime of model file ``path`` by its extension; a ``.bst`` file by its content too:
    KServe's examples name LightGBM models ``model.bst`` as well as XGBoost's, and a LightGBM
    text model starts with ``tree``."""
    if path.suffix == ".bst" and starts_with(path, b"tree"):
        return "lightgbm"
    return BACKEND_BY_EXTENSION[path.suffix]


def starts_with(path: Path, prefix: bytes) -> bool:
    try:
        with path.open("rb") as file:
            return file.read(len(prefix)) == prefix
    except OSError:
        return False


def model_files(folder: Path) -> list[Path]:
    """The files named ``model.<ext>`` in ``folder`` whose extension names a runtime."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.stem == "model" and entry.suffix in BACKEND_BY_EXTENSION
    )


def _any_model_files(folder: Path) -> list[Path]:
    """Every ``model.*`` file in ``folder`` but the native config, whatever its extension."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.stem == "model" and entry.name != NATIVE_CONFIG_FILE
    )


def guess_backend(source: ModelSource, version_folder: Path) -> tuple[str, Path | None]:
    """The backend to use and the model file it should read (``None``: none was found).

    - ``default_model_filename`` in the config names the file; its extension names the runtime
      unless ``backend`` (or ``platform``) does.
    - ``backend`` given: the one ``model.<ext>`` whose extension belongs to that runtime; else,
      when the folder holds exactly one ``model.*`` file, that one (the backend overrides the
      guess); else none, and the runtime looks in ``ctx.path`` itself.
    - Otherwise the one ``model.<ext>`` file with a known extension names the runtime; several
      are refused as ambiguous, none as missing, each with a message saying what to do (and in
      which config file: the one read, or the ``model.toml`` to write).

    The version folder is searched first, then the model folder.
    """
    folders = (version_folder,) if version_folder == source.path else (version_folder, source.path)
    config = source.config
    explicit = config.backend or _PLATFORMS.get(config.platform, "")
    if config.default_model_filename:
        for folder in folders:
            named = paths.inside(folder, config.default_model_filename, "default_model_filename")
            if named.exists():
                backend = explicit or BACKEND_BY_EXTENSION.get(named.suffix, "")
                if not backend:
                    raise InvalidArgument(
                        f"model '{source.name}': no runtime is known for "
                        f'{config.default_model_filename}; set backend = "..." in '
                        f"{source.config_hint}"
                    )
                return backend, named
        if not explicit:
            raise InvalidArgument(
                f"model '{source.name}': default_model_filename "
                f"'{config.default_model_filename}' (in {source.config_hint}) is not in "
                f"{version_folder}"
            )
    if explicit:
        for folder in folders:
            matching = [f for f in model_files(folder) if backend_of_file(f) == explicit]
            if len(matching) > 1:
                raise _ambiguous(source, folder, matching, same_runtime=True)
            if matching:
                return explicit, matching[0]
        for folder in folders:
            others = _any_model_files(folder)
            if len(others) == 1:
                return explicit, others[0]
        return explicit, None
    for folder in folders:
        files = model_files(folder)
        if len(files) == 1:
            return backend_of_file(files[0]), files[0]
        if len(files) > 1:
            backends = {backend_of_file(f) for f in files}
            raise _ambiguous(source, folder, files, same_runtime=len(backends) == 1)
    raise InvalidArgument(
        f"model '{source.name}' has no model file: expected one of "
        f"{', '.join('model' + ext for ext in BACKEND_BY_EXTENSION)} in {version_folder} "
        "(or one file of any name ending in .joblib, .pkl, .pickle, .bst, .json, .ubj, .txt, "
        f'.onnx or .pt), or backend = "..." in {source.config_hint}'
    )


def _ambiguous(
    source: ModelSource, folder: Path, files: list[Path], *, same_runtime: bool
) -> InvalidArgument:
    names = ", ".join(f.name for f in files)
    if same_runtime:
        fix = f'set default_model_filename = "{files[0].name}" (or another) in {source.config_hint}'
    else:
        choices = " or ".join(sorted({f'backend = "{backend_of_file(f)}"' for f in files}))
        fix = f"set {choices} in {source.config_hint}"
    return InvalidArgument(
        f"model '{source.name}' is ambiguous: {folder} holds {names}; {fix}, or keep one model file"
    )
