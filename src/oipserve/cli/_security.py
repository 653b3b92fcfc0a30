"""The ``serve`` options of issue 13 (uploads, keys, TLS, limits, drain), one decorator.

They live apart from the other options so the security settings read as one group in ``--help``
and in the code; each is a :class:`~oipserve.settings.Settings` field of the same name and an
``OIPSERVE_*`` environment variable, derived from the field like every other option
(``cli/_settings.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from oipserve.cli._settings import setting_option

F = TypeVar("F", bound=Callable[..., Any])

_OPTIONS: list[Callable[[F], F]] = [
    setting_option(
        "allow_model_upload",
        "Let repository load requests carry model files ('file:' parameters). Model files "
        "are code: allow it only with the model-repository API restricted by a key.",
    ),
    setting_option(
        "model_upload_max_mb",
        "Total size of one load request's files, in MiB.",
        type=click.FloatRange(min=0, min_open=True),
    ),
    setting_option(
        "http_restricted_api",
        "Triton's restricted APIs: requests to these categories (comma-separated: health, "
        "metadata, inference, shared-memory, model-config, model-repository, statistics, trace, "
        "logging) need header KEY: VALUE, else 403. Repeatable; a category in one group only.",
        metavar="CATEGORIES:KEY=VALUE",
    ),
    setting_option(
        "grpc_restricted_protocol",
        "Triton's restricted gRPC protocols: calls in these categories need metadata "
        "'triton-grpc-protocol-KEY: VALUE', else UNAVAILABLE. Repeatable.",
        metavar="CATEGORIES:KEY=VALUE",
    ),
    setting_option(
        "api_key",
        "Require 'Authorization: Bearer <key>' (gRPC metadata 'authorization') on every API "
        "except health, /metrics and the console's files; else 401 / UNAUTHENTICATED. Prefer the "
        "environment variable: a command line is visible to other users.",
    ),
]


def security_options(command: F) -> F:
    """Add every security option to ``command`` (its keyword arguments: the Settings fields)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
