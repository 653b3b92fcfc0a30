"""Reading a model repository: which models it holds, and each model's folder.

```
models/
  iris/               a model folder; its name is the model name
    model.toml        optional: Triton's ModelConfig as TOML
    1/model.joblib    numeric version folders; none means version 1 = the model folder itself
```
Two steps, each a seam. The repository's layout (:mod:`oipserve.repository.discovery`) lists the
models and their folders: one folder per model (above), or the root being one model's folder
(KServe's ``/mnt/models``). Then the table of readers (:mod:`oipserve.repository.readers`) reads
each folder: the reader that recognises it (``model.toml``; zero-config guessing, last) turns it
into a :class:`ModelSource` with one :class:`~oipserve.repository.config.ModelConfig`.

Without ``backend`` in the config, the runtime is guessed from the one file named ``model.*`` in
the version folder (then the model folder): :func:`guess_backend`.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from oipserve.errors import ModelNotFound
from oipserve.repository import paths
from oipserve.repository.config import ModelConfig
from oipserve.repository.discovery import layout_of
from oipserve.repository.readers import check_config_name, read_folder
from oipserve.repository.readers.guess import BACKEND_BY_EXTENSION, guess_backend, model_files
from oipserve.repository.source import NATIVE_CONFIG_FILE, ModelSource, numeric_versions

__all__ = [
    "BACKEND_BY_EXTENSION",
    "CONFIG_FILE",
    "ModelSource",
    "guess_backend",
    "list_model_names",
    "model_files",
    "model_folders",
    "read_model",
    "select_versions",
    "validate_name",
    "write_model_files",
]

CONFIG_FILE = NATIVE_CONFIG_FILE

OVERRIDE_ORIGIN = "the load request's config"

DEFAULT_UPLOAD_MAX_BYTES = 64 * 1024 * 1024
"""Bytes a load request's files may hold in total unless the server says otherwise."""


def validate_name(root: Path, name: str, model_name: str = "") -> Path:
    """The folder of model ``name`` in repository ``root``, refusing names that escape it.

    ``model_name`` names the model when ``root`` is itself one model's folder (``--model-name``).
    """
    return layout_of(root, model_name).folder(root, name)


def model_folders(root: Path, model_name: str = "") -> dict[str, Path]:
    """Every model in the repository: name → folder, sorted by name."""
    return layout_of(root, model_name).discover(root)


def list_model_names(root: Path, model_name: str = "") -> list[str]:
    """Names of the models in the repository, sorted."""
    return list(model_folders(root, model_name))


def read_model(
    root: Path,
    name: str,
    override: ModelConfig | None = None,
    folder: Path | None = None,
    model_name: str = "",
) -> ModelSource:
    """Read model ``name``: its config (or ``override``) and its version folders.

    ``folder`` replaces the model's folder in ``root`` (a load request's own files). With
    ``override`` (a load request's config) no config file is read: the folder's versions are
    its numeric folders.
    """
    in_repository = validate_name(root, name, model_name)
    folder = folder or in_repository
    if not folder.is_dir():
        raise ModelNotFound(name, detail="is not in the model repository")
    if override is None:
        return read_folder(folder, name)
    check_config_name(override, name, OVERRIDE_ORIGIN)
    return ModelSource(
        name=name,
        path=folder,
        config=override,
        versions=numeric_versions(folder),
        reader="override",
        config_origin=OVERRIDE_ORIGIN,
    )


def write_model_files(
    folder: Path, files: Mapping[str, bytes], max_bytes: int = DEFAULT_UPLOAD_MAX_BYTES
) -> Path:
    """Write a load request's files (``"1/model.onnx"`` → bytes) into ``folder``, a new folder:
    each path relative and inside it, the total bounded (:mod:`oipserve.repository.paths`)."""
    return paths.write_uploaded_files(folder, files, max_bytes)


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
