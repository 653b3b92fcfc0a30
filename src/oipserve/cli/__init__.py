"""The ``oipserve`` command: a thin click layer over :class:`oipserve.Settings`.

Every option of ``serve`` is a field of :class:`~oipserve.settings.Settings`, derived from it by
``setting_option`` (``cli/_settings.py``): ``--http-port`` ↔ ``OIPSERVE_HTTP_PORT`` ↔
``Settings.http_port``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Final

import click
from click.core import ParameterSource

from oipserve import __version__
from oipserve.cli._security import security_options
from oipserve.cli._settings import PORT, env_of, flag_of, setting_option
from oipserve.cli._workers import workers_options
from oipserve.settings import Settings

ALIASES: Final = {"model_repository": "model_repository_option"}
"""Settings given by an argument and an option both: the option's parameter name."""


def _configure_logging(settings: Settings) -> None:
    """Every logger of the process through one handler, in ``--log-format``."""
    from oipserve.observability.logging import LogControl, LogSettings

    LogControl(
        LogSettings.from_level(settings.log_level, settings.log_format, settings.log_file)
    ).install()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="oipserve")
def main() -> None:
    """oipserve: serve a model repository over the Open Inference Protocol (REST and gRPC)."""


@main.command()
@click.argument(
    "model_repository",
    required=False,
    type=click.Path(file_okay=False, path_type=Path),
    envvar=env_of("model_repository"),
)
@click.option(
    flag_of("model_repository"),
    "--model-dir",
    "--model_dir",
    ALIASES["model_repository"],
    type=click.Path(file_okay=False, path_type=Path),
    help="Alias of the MODEL_REPOSITORY argument (Triton's spelling; --model_dir is KServe's).",
)
@setting_option(
    "model_name",
    "The model's name when MODEL_REPOSITORY is itself one model's folder (KServe's "
    "/mnt/models); with a repository of model folders it is logged and ignored.",
    spellings=("--model_name",),
)
@setting_option("host", "Interface to listen on.")
@setting_option(
    "http_port", "REST port (0: any free port, logged).", type=PORT, spellings=("--http_port",)
)
@setting_option(
    "grpc_port", "gRPC port (0: any free port, logged).", type=PORT, spellings=("--grpc_port",)
)
@setting_option("allow_http", "Serve the REST API (--allow-http=false: gRPC only).")
@setting_option("allow_grpc", "Serve the gRPC API (--allow-grpc=false: REST only).")
@setting_option(
    "http_max_request_mb", "Largest request body accepted (after decompression), in MiB."
)
@setting_option("grpc_max_message_mb", "Largest gRPC message accepted, in MiB.")
@setting_option(
    "strict_readiness",
    "Report the server not ready while a model that failed at start-up is not ready.",
)
@setting_option("allow_console", "Serve the web console at / on the HTTP port.")
@setting_option(
    "model_control_mode",
    "explicit: the repository API loads and unloads models; poll: follow changes in the "
    "repository folder; none: serve the start-up models, no changes.",
)
@setting_option(
    "load_models",
    "Load only this model at start-up (repeatable; '*' for all, the default). Explicit mode only.",
    spellings=("--load-model",),
)
@setting_option(
    "repository_poll_secs",
    "How often poll mode looks for changes in the repository folder, in seconds.",
    type=click.FloatRange(min=0, min_open=True),
)
@setting_option("model_threads", "Threads that run synchronous model code.")
@setting_option(
    "access_log",
    "Log one line per HTTP request (method, path, status, bytes, duration, model).",
)
@setting_option("log_level", "Least severe log messages shown.")
@setting_option(
    "log_format", "default and ISO8601: Triton's log lines; json: one JSON object a line."
)
@setting_option("log_file", "Write the log to this file instead of standard error.")
@setting_option(
    "allow_metrics", "Serve Prometheus metrics at /metrics (--allow-metrics=false: off)."
)
@setting_option(
    "metrics_port", "Also serve /metrics on this port (Triton's convention: 8002).", type=PORT
)
@setting_option(
    "metrics_config",
    "Triton's <setting>=<value> (repeatable): counter_latencies, summary_latencies, "
    "summary_quantiles, histogram_latencies. See docs/metrics.md.",
)
@setting_option(
    "trace_config",
    "Triton's [<mode>,]<setting>=<value> (repeatable), e.g. mode=opentelemetry. "
    "See docs/logging-and-tracing.md.",
)
@setting_option("server_name", "The name in the server metadata.")
@setting_option(
    "disable_auto_complete_config",
    "Triton's: use each config.pbtxt as written, never completed from the model file.",
)
@security_options
@workers_options
def serve(
    model_repository: Path | None, model_repository_option: Path | None, **values: Any
) -> None:
    """Serve the models in MODEL_REPOSITORY."""
    context = click.get_current_context()
    if (
        model_repository_option is not None
        and context.get_parameter_source("model_repository") is ParameterSource.ENVIRONMENT
    ):
        model_repository = None  # the command line wins over OIPSERVE_MODEL_REPOSITORY
    repository = model_repository or model_repository_option
    if repository is None:
        raise click.UsageError("give the model repository (MODEL_REPOSITORY or --model-repository)")
    if model_repository and model_repository_option and model_repository != model_repository_option:
        raise click.UsageError("MODEL_REPOSITORY and --model-repository disagree")
    if not repository.is_dir():
        raise click.BadParameter(f"{repository} is not a folder", param_hint="MODEL_REPOSITORY")
    if values["load_models"] and values["model_control_mode"] != "explicit":
        raise click.UsageError(
            f"--load-model needs --model-control-mode explicit (the "
            f"'{values['model_control_mode']}' mode loads every model in the repository)"
        )
    try:
        settings = Settings(model_repository=repository.resolve(), **values)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    _configure_logging(settings)
    from oipserve.errors import StartupError
    from oipserve.server import run

    try:
        if settings.workers > 1:
            from oipserve.workers.supervisor import supervise

            raise SystemExit(supervise(settings))
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
