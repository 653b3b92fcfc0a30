"""Which models a repository root holds: the repository-level step before any reader.

A :class:`RepositoryLayout` lists the models under a root (name → folder) and says where one
named model lives. Two layouts exist today, chosen by :func:`layout_of` from what the root holds:

- :class:`FolderPerModel` (Triton's and oipserve's repository): every folder directly under the
  root is a model, named after its folder; hidden (``.x``) and ``_x`` folders are skipped.
- :class:`SingleModel`: the root itself is one model's folder, as KServe mounts a single model at
  ``/mnt/models`` (its storage initializer downloads the model's files there). A root that holds a
  config file a reader recognises (``model.toml``), a ``model.<ext>`` file or one model file of
  any name (``iris.joblib``) directly is taken for one model, named ``--model-name`` (KServe
  passes the InferenceService's name), else after the folder.

MLServer's repository is a third layout, for its issue: every ``model-settings.json`` found
recursively under the root is a model (named by the file's ``name``, else its folder), and
MLServer can also describe one model in ``MLSERVER_MODEL_*`` environment variables.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from oipserve.errors import InvalidArgument
from oipserve.repository.readers import model_readers
from oipserve.repository.readers.guess import model_files
from oipserve.repository.readers.storage_initializer import LOOKED_FOR, model_file_candidates


class RepositoryLayout(Protocol):
    def discover(self, root: Path) -> dict[str, Path]:
        """Every model under ``root``: name → folder, sorted by name."""
        ...

    def folder(self, root: Path, name: str) -> Path:
        """The folder of model ``name`` (which need not exist yet); :class:`InvalidArgument`
        for a name that cannot be a model of this layout (one that escapes the root, …)."""
        ...


class FolderPerModel:
    """Every folder directly under the root is a model, named after the folder."""

    def discover(self, root: Path) -> dict[str, Path]:
        return {
            entry.name: entry
            for entry in sorted(root.iterdir())
            if entry.is_dir() and not entry.name.startswith((".", "_"))
        }

    def folder(self, root: Path, name: str) -> Path:
        if not name or name in {".", ".."} or "/" in name or "\\" in name or "\x00" in name:
            raise InvalidArgument(f"invalid model name {name!r}")
        folder = (root / name).resolve()
        if folder.parent != root.resolve():
            raise InvalidArgument(f"invalid model name {name!r}: it escapes the model repository")
        return folder


class SingleModel:
    """The root is one model's folder; the model is named ``name`` (default: the folder's)."""

    def __init__(self, name: str = "") -> None:
        self.name = name

    def model_name(self, root: Path) -> str:
        return self.name or root.resolve().name

    def discover(self, root: Path) -> dict[str, Path]:
        return {self.model_name(root): root}

    def folder(self, root: Path, name: str) -> Path:
        expected = self.model_name(root)
        if name != expected:
            raise InvalidArgument(
                f"invalid model name {name!r}: the repository {root} is the folder of the one "
                f"model '{expected}'"
            )
        return root.resolve()


def is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` directly holds a model: a config file some reader recognises, a
    ``model.<ext>`` file of a known runtime, or one model file of any name as KServe's storage
    initializer leaves it (:mod:`~oipserve.repository.readers.storage_initializer`) — not one
    only in a version folder: ``root/1/`` is as likely a model named ``1`` as a version."""
    if not folder.is_dir():
        return False
    readers = model_readers()
    return (
        any(r.config_file and r.recognises(folder) for r in readers)
        or bool(model_files(folder))
        or bool(model_file_candidates(folder))
    )


def check_repository(root: Path) -> None:
    """Refuse a root that is neither one model's folder nor a repository of model folders: one
    that holds files but no model folder, and no model file either. (An empty folder is an empty
    repository: models can be loaded into it later.)"""
    if is_model_folder(root) or FolderPerModel().discover(root):
        return
    files = sorted(
        entry.name for entry in root.iterdir() if entry.is_file() and not entry.name.startswith(".")
    )
    if files:
        shown = ", ".join(files[:5]) + (", ..." if len(files) > 5 else "")
        raise InvalidArgument(
            f"{root} is neither a model repository nor one model's folder: it holds no model "
            f"folder, and none of its files ({shown}) is a model. Looked for model folders "
            f"(one per model), a config file ({', '.join(_config_files())}), or a model file "
            f"({', '.join(LOOKED_FOR)})"
        )


def _config_files() -> list[str]:
    return [reader.config_file for reader in model_readers() if reader.config_file]


def layout_of(root: Path, model_name: str = "") -> RepositoryLayout:
    """The layout of repository ``root``: :class:`SingleModel` when the root is itself a model
    folder (named ``model_name``, default the folder's name), else :class:`FolderPerModel`."""
    if is_model_folder(root):
        return SingleModel(model_name)
    return FolderPerModel()
