"""A model folder as a reader found it: :class:`ModelSource`, and the version-folder rule.

Every reader (:mod:`oipserve.repository.readers`) answers with a ``ModelSource``: the model's
name, its folder, one :class:`~oipserve.repository.config.ModelConfig` whatever the format on
disk, its versions, and which reader and which file it came from, so that an error can name the
file actually read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from oipserve.repository.config import ModelConfig

NATIVE_CONFIG_FILE = "model.toml"
"""The file a user writes to configure a model that has no config file yet."""


@dataclass(frozen=True, slots=True)
class ModelSource:
    """One model folder as read from disk."""

    name: str
    path: Path
    config: ModelConfig
    versions: dict[str, Path] = field(default_factory=dict)
    """Every version found, label → folder, in ascending order (:func:`version_key`)."""
    reader: str = ""
    """The name of the reader that read the folder (``"model.toml"``, ``"zero-config"``, …)."""
    config_file: Path | None = None
    """The config file that was read, if any (``None``: zero-config, or a load request's own
    config, which :attr:`config_origin` names)."""
    config_origin: str = ""
    """Where the config came from when no file was read (``"the load request's config"``)."""

    def version_folder(self, version: str) -> Path:
        return self.versions[version]

    @property
    def config_hint(self) -> str:
        """The config to name in a message telling the user what to change: the file read
        (``iris/model.toml``, ``iris/config.pbtxt``), the load request's config, or the
        ``model.toml`` to write when there is none."""
        if self.config_file is not None:
            return f"{self.name}/{self.config_file.name}"
        return self.config_origin or f"{self.name}/{NATIVE_CONFIG_FILE}"


def numeric_versions(folder: Path) -> dict[str, Path]:
    """Triton's version rule: every folder named by a number is a version (``"007"`` is 7);
    without any, the model folder itself is version 1."""
    numeric = sorted(
        (entry for entry in folder.iterdir() if entry.is_dir() and entry.name.isdigit()),
        key=lambda entry: int(entry.name),
    )
    return {str(int(entry.name)): entry for entry in numeric} if numeric else {"1": folder}


def version_key(version: str) -> tuple[int, int, str]:
    """Sort key of a version label: numeric labels (Triton's) by value, then any other label
    (MLServer's ``v0.1.0``) by its text; the highest is a model's default version."""
    if version.isascii() and version.isdigit():
        return (0, int(version), "")
    return (1, 0, version)
