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
    setting_option(
        "ssl_certfile",
        "PEM certificate (chain): TLS on the REST and gRPC ports (with --ssl-keyfile).",
        spellings=("--grpc-server-cert",),
    ),
    setting_option(
        "ssl_keyfile", "PEM private key of --ssl-certfile.", spellings=("--grpc-server-key",)
    ),
    setting_option(
        "ssl_ca_certs",
        "PEM CA bundle that client certificates must chain to (mutual TLS).",
        spellings=("--grpc-root-cert",),
    ),
    setting_option(
        "ssl_client_auth", "Client certificates: none, optional, or required (mutual TLS)."
    ),
    setting_option(
        "grpc_use_ssl",
        "Triton's switch: TLS on (needs --ssl-certfile / --grpc-server-cert and --ssl-keyfile / "
        "--grpc-server-key; oipserve secures both ports).",
    ),
    setting_option(
        "grpc_use_ssl_mutual", "Triton's switch: mutual TLS (--ssl-client-auth required)."
    ),
    setting_option(
        "http_header_timeout_secs",
        "A request's line and headers must arrive within this time (408 otherwise; a "
        "connection that sends nothing is closed).",
        type=click.FloatRange(min=0, min_open=True),
    ),
    setting_option(
        "http_body_timeout_secs",
        "A request's body must arrive within this time after its headers (408 otherwise).",
        type=click.FloatRange(min=0, min_open=True),
    ),
    setting_option(
        "http_keep_alive_secs",
        "How long an idle keep-alive connection stays open.",
        type=click.FloatRange(min=1),
    ),
    setting_option(
        "http_max_header_kb",
        "Request line and headers, in KiB (431 beyond).",
        type=click.FloatRange(min=1),
    ),
    setting_option(
        "http_max_headers", "Headers per request (431 beyond).", type=click.IntRange(min=1)
    ),
    setting_option(
        "max_connections",
        "Open HTTP connections; past it a new connection is closed at once.",
        type=click.IntRange(min=1),
    ),
    setting_option(
        "max_in_flight",
        "Requests served at once, REST and gRPC together, health excluded (503 with "
        "Retry-After beyond; 0: no limit).",
        type=click.IntRange(min=0),
    ),
    setting_option(
        "grpc_max_concurrent_streams",
        "Calls one gRPC connection runs at once (RESOURCE_EXHAUSTED beyond).",
        type=click.IntRange(min=1),
    ),
    setting_option(
        "max_tensor_elements",
        "Elements of one input tensor (413 / RESOURCE_EXHAUSTED beyond).",
        type=click.IntRange(min=1),
    ),
    setting_option(
        "max_tensor_mb",
        "Bytes of one input tensor, in MiB (413 / RESOURCE_EXHAUSTED beyond).",
        type=click.FloatRange(min=0, min_open=True),
    ),
    setting_option(
        "drain_grace_secs",
        "On SIGTERM: not ready at once, but requests are still served this long (so load "
        "balancers stop sending).",
        type=click.FloatRange(min=0),
    ),
    setting_option(
        "shutdown_timeout_secs",
        "Then: new connections refused, requests queued and running get this long to finish. "
        "With the grace period it fits Kubernetes' 30 s.",
        spellings=("--shutdown-timeout",),
        type=click.FloatRange(min=0),
    ),
]


def security_options(command: F) -> F:
    """Add every security option to ``command`` (its keyword arguments: the Settings fields)."""
    for option in reversed(_OPTIONS):
        command = option(command)
    return command
