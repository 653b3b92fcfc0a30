"""``model.toml``: oipserve's native format, Triton's ModelConfig written as TOML.

See :mod:`oipserve.repository.config` for the schema and ``docs/configuration.md`` for the file.
"""

from __future__ import annotations

from pathlib import Path

from oipserve.repository import config as config_module
from oipserve.repository.readers.base import check_config_name
from oipserve.repository.source import NATIVE_CONFIG_FILE, ModelSource, numeric_versions


class ModelTomlReader:
    """A folder holding ``model.toml``; versions are its numeric folders (Triton's rule)."""

    name = "model.toml"
    config_file = NATIVE_CONFIG_FILE

    def recognises(self, folder: Path) -> bool:
        return (folder / self.config_file).is_file()

    def read(self, folder: Path, name: str) -> ModelSource:
        path = folder / self.config_file
        config = config_module.load_file(path)
        check_config_name(config, name, f"{name}/{self.config_file}")
        return ModelSource(
            name=name,
            path=folder,
            config=config,
            versions=numeric_versions(folder),
            reader=self.name,
            config_file=path,
        )
