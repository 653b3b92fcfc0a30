"""The reader interface: how oipserve asks a model folder what format it is in.

A reader is any object with these four members (a :class:`typing.Protocol`, so a reader needs no
base class). The table of readers is :func:`oipserve.repository.readers.model_readers`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from oipserve.errors import InvalidArgument
from oipserve.repository.config import ModelConfig
from oipserve.repository.source import ModelSource


class ModelReader(Protocol):
    """Reads one on-disk model format into a :class:`ModelSource`.

    ``recognises`` must be cheap (a ``stat`` or two, at most a small read): it is asked of every
    reader for every folder. ``read`` raises :class:`~oipserve.errors.InvalidArgument` naming the
    file it read when that file is wrong.
    """

    @property
    def name(self) -> str:
        """Short and unique, shown in messages and kept in :attr:`ModelSource.reader`
        (``"model.toml"``, ``"zero-config"``)."""
        ...

    @property
    def config_file(self) -> str:
        """The file whose presence marks this format (``"model.toml"``, ``"config.pbtxt"``,
        ``"model-settings.json"``, ``"config.json"``), or ``""`` for a reader that reads no
        config file. Two readers with a config file that both recognise one folder are an error
        naming both files: a folder is in one format."""
        ...

    def recognises(self, folder: Path) -> bool:
        """Whether ``folder`` is a model folder in this reader's format."""
        ...

    def read(self, folder: Path, name: str) -> ModelSource:
        """Read model ``name`` from ``folder``: its config, versions and where they came from."""
        ...


def check_config_name(config: ModelConfig, name: str, where: str) -> None:
    """A config that names its model must name it as the repository does (Triton's rule)."""
    if config.name and config.name != name:
        raise InvalidArgument(
            f"{where} names the model '{config.name}'; it must match the folder name '{name}'"
        )
