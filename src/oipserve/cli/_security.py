"""The ``serve`` options of issue 13 (uploads, keys, TLS, limits, drain), one decorator.

They live apart from the other options so the security settings read as one group in ``--help``
and in the code; each is a :class:`~oipserve.settings.Settings` field of the same name and an
``OIPSERVE_*`` environment variable, like every other option.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[F], F]] = [
    click.option(
        "--allow-model-upload",
        type=bool,
        is_flag=False,
        flag_value=True,
        default=False,
        show_default=True,
        envvar="OIPSERVE_ALLOW_MODEL_UPLOAD",
        help="Let repository load requests carry model files ('file:' parameters). Model files "
        "are code: allow it only with the model-repository API restricted by a key.",
    ),
    click.option(
        "--model-upload-max-mb",
        type=click.FloatRange(min=0, min_open=True),
        default=64.0,
        show_default=True,
        envvar="OIPSERVE_MODEL_UPLOAD_MAX_MB",
        help="Total size of one load request's files, in MiB.",
    ),
    click.option(
        "--http-restricted-api",
        multiple=True,
        envvar="OIPSERVE_HTTP_RESTRICTED_API",
        metavar="CATEGORIES:KEY=VALUE",
        help="Triton's restricted APIs: requests to these categories (comma-separated: health, "
        "metadata, inference, shared-memory, model-config, model-repository, statistics, trace, "
        "logging) need header KEY: VALUE, else 403. Repeatable; a category in one group only.",
    ),
    click.option(
        "--grpc-restricted-protocol",
        multiple=True,
        envvar="OIPSERVE_GRPC_RESTRICTED_PROTOCOL",
        metavar="CATEGORIES:KEY=VALUE",
        help="Triton's restricted gRPC protocols: calls in these categories need metadata "
        "'triton-grpc-protocol-KEY: VALUE', else UNAVAILABLE. Repeatable.",
    ),
    click.option(
        "--api-key",
        envvar="OIPSERVE_API_KEY",
        default=None,
        show_default=False,
        help="Require 'Authorization: Bearer <key>' (gRPC metadata 'authorization') on every API "
        "except health, /metrics and the console's files; else 401 / UNAUTHENTICATED. Prefer the "
        "environment variable: a command line is visible to other users.",
    ),
]


def security_options(command: F) -> F:
    """Add every security option to ``command`` (its keyword arguments: the Settings fields)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
