"""The table of model-format readers: which reader reads a model folder.

Each format is one module here, one reader object in the table (see
:class:`~oipserve.repository.readers.base.ModelReader` for the interface):

=====================  ==============================================================
``model_toml``         ``model.toml``, oipserve's own (Triton's ModelConfig as TOML)
``config_pbtxt``       ``config.pbtxt``, Triton's own (protobuf text format)
``storage_initializer`` one model file of any name, as KServe's storage initializer leaves it
``guess``              zero-config: the runtime guessed from ``model.<ext>``; always last
=====================  ==============================================================

MLServer's ``model-settings.json`` and Hugging Face folders are each a
new module whose reader joins :data:`BUILTIN_READERS`; a third-party package adds its own through
the ``oipserve.readers`` entry-point group (an object or a class built with no arguments), as
runtimes do through ``oipserve.runtimes``.

:func:`reader_for` asks every reader whether it recognises the folder. Two readers with a config
file recognising one folder (``model.toml`` beside ``config.pbtxt``) are refused with a message
naming both files; otherwise the first that recognises it reads it, and a folder no reader
recognises is read by the last one (zero-config), whose guess then says what the folder lacks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from importlib.metadata import entry_points
from pathlib import Path

from oipserve.errors import InvalidArgument
from oipserve.repository.readers.base import ModelReader, check_config_name
from oipserve.repository.readers.config_pbtxt import ConfigPbtxtReader
from oipserve.repository.readers.guess import ZeroConfigReader
from oipserve.repository.readers.model_settings import ModelSettingsReader
from oipserve.repository.readers.model_toml import ModelTomlReader
from oipserve.repository.readers.storage_initializer import StorageInitializerReader
from oipserve.repository.source import ModelSource

__all__ = [
    "BUILTIN_READERS",
    "ENTRY_POINT_GROUP",
    "FALLBACK_READER",
    "MODEL_FILE_READER",
    "ModelReader",
    "check_config_name",
    "model_readers",
    "read_folder",
    "reader_for",
]

logger = logging.getLogger("oipserve.readers")

ENTRY_POINT_GROUP = "oipserve.readers"

#: the built-in readers of a config file, in the order they are asked
BUILTIN_READERS: tuple[ModelReader, ...] = (
    ModelTomlReader(),
    ConfigPbtxtReader(),
    ModelSettingsReader(),
)

#: asked after the config readers: a folder with one model file of any name (KServe's)
MODEL_FILE_READER: ModelReader = StorageInitializerReader()

#: asked last, and reads what no other reader recognises
FALLBACK_READER: ModelReader = ZeroConfigReader()


@functools.cache
def model_readers() -> tuple[ModelReader, ...]:
    """The table: the built-in readers, then those of the ``oipserve.readers`` entry points
    (sorted by name), then the reader of a lone model file of any name, then the zero-config
    reader, last. Read once per process."""
    plugged: list[ModelReader] = []
    for entry_point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        try:
            loaded = entry_point.load()
            reader = loaded() if isinstance(loaded, type) else loaded
        except Exception as exc:
            logger.error("model reader '%s' could not be loaded: %s", entry_point.name, exc)
            continue
        if not all(hasattr(reader, member) for member in ("recognises", "read", "config_file")):
            logger.error("model reader '%s' is not a ModelReader; ignored", entry_point.name)
            continue
        plugged.append(reader)
    return (*BUILTIN_READERS, *plugged, MODEL_FILE_READER, FALLBACK_READER)


def reader_for(folder: Path, readers: Sequence[ModelReader] | None = None) -> ModelReader:
    """The reader of model folder ``folder``: the first in ``readers`` (default: the table) that
    recognises it, or the last one when none does. Two readers with a config file recognising it
    are :class:`InvalidArgument` naming both files."""
    table = model_readers() if readers is None else tuple(readers)
    recognising = [reader for reader in table if reader.recognises(folder)]
    configs = [reader.config_file for reader in recognising if reader.config_file]
    if len(configs) > 1:
        raise InvalidArgument(
            f"model folder '{folder.name}' holds {' and '.join(configs)}: a model has one "
            "config file; keep the one in the format you mean and remove the other"
            + ("s" if len(configs) > 2 else "")
        )
    return recognising[0] if recognising else table[-1]


def read_folder(
    folder: Path, name: str, readers: Sequence[ModelReader] | None = None
) -> ModelSource:
    """Model ``name`` read from ``folder`` by its reader (see :func:`reader_for`)."""
    return reader_for(folder, readers).read(folder, name)
