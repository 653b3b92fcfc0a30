"""What ``infer``, ``models`` and ``bench`` share: the server's URL, the client, exit statuses.

Exit statuses: 0 success; 1 the server refused the request or the input is wrong (the message says
why); 2 the server could not be reached, or the command line itself is wrong (click's own status).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, NoReturn, TypeVar

import click

from oipserve.client import Client, ConnectError
from oipserve.client._config import parse_url
from oipserve.errors import OIPServeError

F = TypeVar("F", bound=Callable[..., Any])

REST_URL = "http://localhost:8080"
GRPC_URL = "grpc://localhost:8081"


class InputError(Exception):
    """Something the user gave the command is wrong; exit status 1 with this message."""


def url_options(function: F) -> F:
    """``--url`` (``OIPSERVE_URL``), ``--grpc`` and ``--api-key`` (``OIPSERVE_API_KEY``)."""
    function = click.option(
        "--api-key",
        envvar="OIPSERVE_API_KEY",
        help="Sent as 'Authorization: Bearer KEY'.",
    )(function)
    function = click.option(
        "--grpc",
        "use_grpc",
        is_flag=True,
        help=f"Use gRPC (default URL {GRPC_URL}; an http:// URL's host and port are kept).",
    )(function)
    return click.option(
        "--url",
        envvar="OIPSERVE_URL",
        help=f"The server: http[s]://host:port for REST, grpc[s]://host:port for gRPC "
        f"[default: {REST_URL}].",
    )(function)


def resolve_url(url: str | None, use_grpc: bool) -> str:
    if url is None:
        return GRPC_URL if use_grpc else REST_URL
    if not use_grpc:
        return url
    endpoint = parse_url(url)
    if endpoint.wire == "grpc":
        return url
    return f"{'grpcs' if endpoint.tls else 'grpc'}://{endpoint.host}:{parse_url(url).port}"


def fail(message: str, status: int = 1) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(status)


@contextmanager
def reporting() -> Iterator[None]:
    """Turn the client's errors into one line on stderr and the exit status."""
    try:
        yield
    except ConnectError as error:
        fail(error.message.splitlines()[0] if error.message else "cannot reach the server", 2)
    except OIPServeError as error:
        fail(error.message)
    except InputError as error:
        fail(str(error))


@contextmanager
def connect(url: str | None, use_grpc: bool, api_key: str | None) -> Iterator[Client]:
    with reporting():
        client = Client(resolve_url(url, use_grpc), api_key=api_key)
        with client:
            yield client
