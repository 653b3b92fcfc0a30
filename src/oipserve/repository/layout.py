"""Reading a model repository folder: models, versions, configuration and the runtime guess.

```
models/
  iris/               a model folder; its name is the model name
    model.toml        optional: Triton's ModelConfig as TOML
    1/model.joblib    numeric version folders; none means version 1 = the model folder itself
```
Without ``backend`` in the config, the runtime is guessed from the one file named ``model.*`` in
the version folder (then the model folder). Other files are never guessed at.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from oipserve.errors import InvalidArgument, ModelNotFound
from oipserve.repository import config as config_module
from oipserve.repository.config import ModelConfig

CONFIG_FILE = "model.toml"

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


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One model folder as read from disk."""

    name: str
    path: Path
    config: ModelConfig
    versions: dict[str, Path] = field(default_factory=dict)
    """Every version found, ``"1"`` → folder, in ascending numeric order."""

    def version_folder(self, version: str) -> Path:
        return self.versions[version]


def validate_name(root: Path, name: str) -> Path:
    """The folder of model ``name`` inside ``root``, refusing names that escape it."""
    if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
        raise InvalidArgument(f"invalid model name {name!r}")
    folder = (root / name).resolve()
    if folder.parent != root.resolve():
        raise InvalidArgument(f"invalid model name {name!r}: it escapes the model repository")
    return folder


def list_model_names(root: Path) -> list[str]:
    """Names of the model folders in the repository, sorted."""
    return sorted(
        entry.name
        for entry in root.iterdir()
        if entry.is_dir() and not entry.name.startswith((".", "_"))
    )


def read_model(
    root: Path, name: str, override: ModelConfig | None = None, folder: Path | None = None
) -> ModelSource:
    """Read model ``name``: its config (or ``override``) and its version folders.

    ``folder`` replaces the model's folder in ``root`` (a load request's own files).
    """
    in_repository = validate_name(root, name)
    folder = folder or in_repository
    if not folder.is_dir():
        raise ModelNotFound(name, detail="is not in the model repository")
    if override is not None:
        config = override
    elif (folder / CONFIG_FILE).is_file():
        config = config_module.load_file(folder / CONFIG_FILE)
    else:
        config = ModelConfig()
    if config.name and config.name != name:
        where = "the load request's config" if override is not None else f"{name}/{CONFIG_FILE}"
        raise InvalidArgument(
            f"{where} names the model '{config.name}'; it must match the folder name '{name}'"
        )
    numeric = sorted(
        (entry for entry in folder.iterdir() if entry.is_dir() and entry.name.isdigit()),
        key=lambda entry: int(entry.name),
    )
    versions = {str(int(entry.name)): entry for entry in numeric} if numeric else {"1": folder}
    return ModelSource(name=name, path=folder, config=config, versions=versions)


def write_model_files(folder: Path, files: Mapping[str, bytes]) -> Path:
    """Write a load request's files (``"1/model.onnx"`` → bytes) into ``folder``, a new folder.

    Each path must be relative and stay inside ``folder``: no absolute paths, no ``..``.
    """
    folder.mkdir(parents=True)
    for relative, content in files.items():
        parts = PurePosixPath(relative).parts
        if (
            not relative
            or "\\" in relative
            or "\x00" in relative
            or relative.startswith("/")
            or not parts
            or any(part in {"", ".", ".."} for part in parts)
        ):
            raise InvalidArgument(
                f"invalid file override path {relative!r}: give a relative path inside the "
                "model folder, such as '1/model.onnx'"
            )
        target = folder.joinpath(*parts)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
    return folder


def model_files(folder: Path) -> list[Path]:
    """The files named ``model.<ext>`` in ``folder`` whose extension names a runtime."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.stem == "model" and entry.suffix in BACKEND_BY_EXTENSION
    )


def _any_model_files(folder: Path) -> list[Path]:
    """Every ``model.*`` file in ``folder`` but the config, whatever its extension."""
    return sorted(
        entry
        for entry in folder.iterdir()
        if entry.is_file() and entry.stem == "model" and entry.name != CONFIG_FILE
    )


def guess_backend(source: ModelSource, version_folder: Path) -> tuple[str, Path | None]:
    """The backend to use and the model file it should read (``None``: none was found).

    - ``default_model_filename`` in the config names the file; its extension names the runtime
      unless ``backend`` (or ``platform``) does.
    - ``backend`` given: the one ``model.<ext>`` whose extension belongs to that runtime; else,
      when the folder holds exactly one ``model.*`` file, that one (the backend overrides the
      guess); else none, and the runtime looks in ``ctx.path`` itself.
    - Otherwise the one ``model.<ext>`` file with a known extension names the runtime; several
      are refused as ambiguous, none as missing, each with a message saying what to do.

    The version folder is searched first, then the model folder.
    """
    folders = (version_folder,) if version_folder == source.path else (version_folder, source.path)
    config = source.config
    explicit = config.backend or _backend_from_platform(config.platform)
    if config.default_model_filename:
        for folder in folders:
            named = folder / config.default_model_filename
            if named.exists():
                backend = explicit or BACKEND_BY_EXTENSION.get(named.suffix, "")
                if not backend:
                    raise InvalidArgument(
                        f"model '{source.name}': no runtime is known for "
                        f'{config.default_model_filename}; set backend = "..." in '
                        f"{source.name}/{CONFIG_FILE}"
                    )
                return backend, named
        if not explicit:
            raise InvalidArgument(
                f"model '{source.name}': default_model_filename "
                f"'{config.default_model_filename}' is not in {version_folder}"
            )
    if explicit:
        for folder in folders:
            matching = [
                f for f in model_files(folder) if BACKEND_BY_EXTENSION[f.suffix] == explicit
            ]
            if len(matching) > 1:
                raise _ambiguous(source.name, folder, matching, same_runtime=True)
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
            return BACKEND_BY_EXTENSION[files[0].suffix], files[0]
        if len(files) > 1:
            backends = {BACKEND_BY_EXTENSION[f.suffix] for f in files}
            raise _ambiguous(source.name, folder, files, same_runtime=len(backends) == 1)
    raise InvalidArgument(
        f"model '{source.name}' has no model file: expected one of "
        f"{', '.join('model' + ext for ext in BACKEND_BY_EXTENSION)} in {version_folder}, "
        f'or backend = "..." in {source.name}/{CONFIG_FILE}'
    )


def _ambiguous(
    name: str, folder: Path, files: list[Path], *, same_runtime: bool
) -> InvalidArgument:
    names = ", ".join(f.name for f in files)
    if same_runtime:
        fix = f'set default_model_filename = "{files[0].name}" (or another) in {name}/{CONFIG_FILE}'
    else:
        choices = " or ".join(
            sorted({f'backend = "{BACKEND_BY_EXTENSION[f.suffix]}"' for f in files})
        )
        fix = f"set {choices} in {name}/{CONFIG_FILE}"
    return InvalidArgument(
        f"model '{name}' is ambiguous: {folder} holds {names}; {fix}, or keep one model file"
    )


_PLATFORMS = {
    "onnxruntime_onnx": "onnxruntime",
    "pytorch_libtorch": "pytorch",
    "pytorch_torchscript": "pytorch",
    "pytorch_export": "pytorch",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
}


def _backend_from_platform(platform: str) -> str:
    return _PLATFORMS.get(platform, "")


def select_versions(source: ModelSource) -> list[str]:
    """The versions to serve under the config's ``version_policy`` (default: latest 1)."""
    available = list(source.versions)
    policy = source.config.version_policy
    if policy is None or (policy.all is None and policy.specific is None):
        count = policy.latest.num_versions if policy and policy.latest else 1
        return available[-max(count, 1) :]
    if policy.all is not None:
        return available
    assert policy.specific is not None
    wanted = {str(v) for v in policy.specific.versions}
    return [v for v in available if v in wanted]
