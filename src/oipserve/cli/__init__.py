"""The ``oipserve`` command: a thin click layer over :class:`oipserve.Settings`.

Every option of ``serve`` is also an ``OIPSERVE_*`` environment variable (``--http-port`` ↔
``OIPSERVE_HTTP_PORT``).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import click

from oipserve import __version__
from oipserve.cli._security import security_options
from oipserve.settings import CONTROL_MODES, ControlMode, Settings


def _configure_logging(level: str) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=level.upper(),
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=True)],
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oipserve")
def main() -> None:
    """oipserve: serve a model repository over the Open Inference Protocol (REST and gRPC)."""


@main.command()
@click.argument(
    "model_repository",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
    envvar="OIPSERVE_MODEL_REPOSITORY",
)
@click.option(
    "--model-repository",
    "model_repository_option",
    type=click.Path(file_okay=False, path_type=Path),
    help="Alias of the MODEL_REPOSITORY argument (as Triton spells it).",
)
@click.option("--host", default="0.0.0.0", show_default=True, envvar="OIPSERVE_HOST")
@click.option("--http-port", default=8080, show_default=True, envvar="OIPSERVE_HTTP_PORT")
@click.option("--grpc-port", default=8081, show_default=True, envvar="OIPSERVE_GRPC_PORT")
@click.option(
    "--http-max-request-mb",
    default=64.0,
    show_default=True,
    envvar="OIPSERVE_HTTP_MAX_REQUEST_MB",
    help="Largest request body accepted (after decompression), in MiB.",
)
@click.option(
    "--grpc-max-message-mb",
    default=64.0,
    show_default=True,
    envvar="OIPSERVE_GRPC_MAX_MESSAGE_MB",
    help="Largest gRPC message accepted, in MiB.",
)
@click.option(
    "--strict-readiness",
    type=bool,
    default=True,
    show_default=True,
    envvar="OIPSERVE_STRICT_READINESS",
    help="Report the server not ready while a model that failed at start-up is not ready.",
)
@click.option(
    "--allow-console",
    type=bool,
    default=True,
    show_default=True,
    envvar="OIPSERVE_ALLOW_CONSOLE",
    help="Serve the web console at / on the HTTP port.",
)
@click.option(
    "--model-control-mode",
    type=click.Choice(CONTROL_MODES),
    default="explicit",
    show_default=True,
    envvar="OIPSERVE_MODEL_CONTROL_MODE",
    help="explicit: the repository API loads and unloads models; poll: follow changes in the "
    "repository folder; none: serve the start-up models, no changes.",
)
@click.option(
    "--load-model",
    "load_models",
    multiple=True,
    envvar="OIPSERVE_LOAD_MODEL",
    help="Load only this model at start-up (repeatable; '*' for all, the default). "
    "Explicit mode only.",
)
@click.option(
    "--repository-poll-secs",
    type=click.FloatRange(min=0, min_open=True),
    default=15.0,
    show_default=True,
    envvar="OIPSERVE_REPOSITORY_POLL_SECS",
    help="How often poll mode looks for changes in the repository folder, in seconds.",
)
@click.option(
    "--model-threads",
    default=4,
    show_default=True,
    envvar="OIPSERVE_MODEL_THREADS",
    help="Threads that run synchronous model code.",
)
@click.option(
    "--access-log",
    type=bool,
    is_flag=False,
    flag_value=True,
    default=False,
    show_default=True,
    envvar="OIPSERVE_ACCESS_LOG",
    help="Log one line per HTTP request (method, path, status, bytes, duration, model).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["debug", "info", "warning", "error"]),
    envvar="OIPSERVE_LOG_LEVEL",
)
@security_options
def serve(
    model_repository: Path | None,
    model_repository_option: Path | None,
    host: str,
    http_port: int,
    grpc_port: int,
    http_max_request_mb: float,
    grpc_max_message_mb: float,
    strict_readiness: bool,
    allow_console: bool,
    model_control_mode: ControlMode,
    load_models: tuple[str, ...],
    repository_poll_secs: float,
    model_threads: int,
    access_log: bool,
    log_level: str,
    **security: Any,
) -> None:
    """Serve the models in MODEL_REPOSITORY."""
    repository = model_repository or model_repository_option
    if repository is None:
        raise click.UsageError("give the model repository (MODEL_REPOSITORY or --model-repository)")
    if model_repository and model_repository_option and model_repository != model_repository_option:
        raise click.UsageError("MODEL_REPOSITORY and --model-repository disagree")
    if not repository.is_dir():
        raise click.BadParameter(f"{repository} is not a folder", param_hint="MODEL_REPOSITORY")
    if load_models and model_control_mode != "explicit":
        raise click.UsageError(
            f"--load-model needs --model-control-mode explicit (the '{model_control_mode}' mode "
            "loads every model in the repository)"
        )
    settings = Settings(
        model_repository=repository.resolve(),
        host=host,
        http_port=http_port,
        grpc_port=grpc_port,
        http_max_request_mb=http_max_request_mb,
        grpc_max_message_mb=grpc_max_message_mb,
        strict_readiness=strict_readiness,
        allow_console=allow_console,
        model_control_mode=model_control_mode,
        load_models=load_models,
        repository_poll_secs=repository_poll_secs,
        model_threads=model_threads,
        access_log=access_log,
        log_level=log_level,
        **security,
    )
    _configure_logging(log_level)
    from oipserve.errors import StartupError
    from oipserve.server import run

    try:
        run(settings)
    except StartupError as exc:
        logging.getLogger("oipserve").error("%s", exc)
        raise SystemExit(1) from None


def _register_tools() -> None:
    """``infer``, ``models`` and ``bench``: clients of a running server (``cli/infer.py`` ...)."""
    from oipserve.cli.bench import bench
    from oipserve.cli.infer import infer
    from oipserve.cli.models import models

    for command in (infer, models, bench):
        main.add_command(command)


_register_tools()
