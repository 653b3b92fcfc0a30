"""Click options derived from :class:`~oipserve.settings.Settings`: each setting is defined once.

``setting_option("http_port", "REST port.")`` is the whole CLI side of a setting. From the field it
takes the flag (``--http-port``: the name with dashes), the environment variable
(``OIPSERVE_HTTP_PORT``), the default and the type:

* ``bool`` → a switch with an optional value, as Triton spells its switches: bare ``--allow-grpc``
  means true, ``--allow-grpc=false`` (or ``--allow-grpc false``) false; the environment variable
  takes ``true`` / ``false`` / ``1`` / ``0`` / ``yes`` / ``no``;
* a ``Literal`` → a choice of its values;
* ``tuple[str, ...]`` → a repeatable option (the environment variable splits on spaces);
* ``int`` / ``float`` / ``str`` / ``Path`` as themselves, ``X | None`` as ``X`` (absent: None);
  a ``type=`` narrows it (ports, ranges).

Extra spellings (Triton's or KServe's) are passed as ``spellings``; they are the same option.
``tests/unit/test_settings_cli.py`` proves every field has exactly one option and every option of
``serve`` is a field.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

import click

from oipserve.settings import ENV_PREFIX, PORT_RANGE, Settings

F = TypeVar("F", bound=Callable[..., Any])

PORT: Final = click.IntRange(PORT_RANGE.start, PORT_RANGE.stop - 1)
"""A TCP port: 0 (any free port, logged once bound) to 65535; anything else is a usage error."""

_BOOLEAN_METAVAR: Final = "[=true|false]"
type_of_none: Final = type(None)


def flag_of(field: str) -> str:
    """``http_port`` → ``--http-port``."""
    return "--" + field.replace("_", "-")


def env_of(field: str) -> str:
    """``http_port`` → ``OIPSERVE_HTTP_PORT``."""
    return ENV_PREFIX + field.upper()


def settings_fields() -> dict[str, dataclasses.Field[Any]]:
    return {field.name: field for field in dataclasses.fields(Settings)}


def setting_option(
    name: str,
    help: str,
    *,
    spellings: tuple[str, ...] = (),
    type: click.ParamType[Any] | None = None,
    **extra: Any,
) -> Callable[[F], F]:
    """The click option of the :class:`Settings` field ``name`` (see the module docstring)."""
    field = settings_fields()[name]
    hint = typing.get_type_hints(Settings)[name]
    options: dict[str, Any] = {"envvar": env_of(name), "help": help, "show_default": True}
    if field.default is not dataclasses.MISSING:
        options["default"] = field.default
    arguments = typing.get_args(hint)
    if typing.get_origin(hint) in (types.UnionType, typing.Union) and type_of_none in arguments:
        (hint,) = (argument for argument in arguments if argument is not type_of_none)
        options["show_default"] = False  # absent: None
    if hint is bool:
        options.update(type=click.BOOL, is_flag=False, flag_value=True, metavar=_BOOLEAN_METAVAR)
    elif typing.get_origin(hint) is Literal:
        options["type"] = click.Choice(typing.get_args(hint))
    elif hint == tuple[str, ...]:
        options.update(multiple=True, show_default=False)
    elif hint is Path:
        options["type"] = click.Path(path_type=Path)
    elif hint in (int, float, str):
        options["type"] = hint
    else:  # pragma: no cover - a new kind of field says here how it is parsed
        raise TypeError(f"Settings.{name}: no CLI option for a field of type {hint}")
    if type is not None:
        options["type"] = type
    options.update(extra)
    return click.option(flag_of(name), *spellings, name, **options)
