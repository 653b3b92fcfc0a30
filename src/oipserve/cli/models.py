"""``oipserve models [list|load|unload|config|stats]``: the model repository of a running server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from oipserve.cli._remote import InputError, connect, reporting, url_options


def _console() -> Any:
    from rich.console import Console

    return Console()


@click.group(invoke_without_command=True)
@url_options
@click.pass_context
def models(ctx: click.Context, url: str | None, use_grpc: bool, api_key: str | None) -> None:
    """The models of a running server (default: list them).

    --url, --grpc and --api-key may come before or after the subcommand."""
    ctx.obj = {"url": url, "use_grpc": use_grpc, "api_key": api_key}
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_models)


def _server(url: str | None, use_grpc: bool, api_key: str | None) -> Any:
    """Connect with the subcommand's options, else the group's."""
    group = click.get_current_context().obj or {}
    return connect(
        url or group.get("url"),
        use_grpc or group.get("use_grpc", False),
        api_key or group.get("api_key"),
    )


@models.command("list")
@click.option("--ready", is_flag=True, help="Only the models that are ready.")
@url_options
def list_models(
    ready: bool = False, url: str | None = None, use_grpc: bool = False, api_key: str | None = None
) -> None:
    """A table of models, versions, states and failure reasons (the repository index)."""
    from rich.table import Table

    with _server(url, use_grpc, api_key) as client:
        entries = client.repository_index(ready=ready)
    table = Table(title="models")
    for column in ("model", "version", "state", "reason"):
        table.add_column(column, overflow="fold")
    for entry in entries:
        state = entry.state or "-"
        style = {"READY": "green", "UNAVAILABLE": "red"}.get(state, "")
        table.add_row(
            entry.name,
            entry.version or "-",
            f"[{style}]{state}[/]" if style else state,
            entry.reason,
        )
    _console().print(table)


@models.command()
@click.argument("model")
@click.option(
    "--config",
    metavar="FILE|JSON",
    help="A model configuration (Triton's JSON) to load the model with: a file or the JSON text.",
)
@url_options
def load(
    model: str, config: str | None, url: str | None, use_grpc: bool, api_key: str | None
) -> None:
    """Load (or reload) MODEL from the server's repository."""
    with reporting():
        text = _config_text(config)
    with _server(url, use_grpc, api_key) as client:
        client.load_model(model, text)
        ready = client.is_model_ready(model)
    click.echo(f"loaded {model}" if ready else f"load of {model} finished but it is not ready")


def _config_text(config: str | None) -> str | None:
    if config is None:
        return None
    path = Path(config)
    text = path.read_text() if not config.lstrip().startswith("{") and path.is_file() else config
    try:
        json.loads(text)
    except ValueError as exc:
        raise InputError(f"--config is not valid JSON (nor a JSON file): {exc}") from None
    return text


@models.command()
@click.argument("model")
@click.option("--unload-dependents", is_flag=True, help="Unload the models MODEL depends on too.")
@url_options
def unload(
    model: str, unload_dependents: bool, url: str | None, use_grpc: bool, api_key: str | None
) -> None:
    """Unload MODEL."""
    with _server(url, use_grpc, api_key) as client:
        client.unload_model(model, unload_dependents)
    click.echo(f"unloaded {model}")


@models.command()
@click.argument("model")
@click.option("--model-version", default="", help="A version of the model.")
@url_options
def config(
    model: str, model_version: str, url: str | None, use_grpc: bool, api_key: str | None
) -> None:
    """MODEL's configuration, as JSON (Triton's model configuration extension)."""
    with _server(url, use_grpc, api_key) as client:
        found = client.model_config(model, model_version)
    click.echo(json.dumps(found, indent=2))


def _ms(duration: dict[str, Any] | None, count: int) -> str:
    if not duration or not count:
        return "-"
    return f"{duration.get('ns', 0) / count / 1e6:.3f}"


@models.command()
@click.argument("model", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="The statistics as JSON, unabridged.")
@url_options
def stats(model: str, as_json: bool, url: str | None, use_grpc: bool, api_key: str | None) -> None:
    """Request counts and average latencies (the statistics extension), of MODEL or of all."""
    from rich.table import Table

    with _server(url, use_grpc, api_key) as client:
        found = client.statistics(model)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    table = Table(title="statistics (averages in ms)")
    for column in ("model", "version", "success", "fail", "request", "queue", "compute", "batches"):
        table.add_column(column, justify="left" if column in ("model", "version") else "right")
    for entry in found.get("model_stats", []):
        inference = entry.get("inference_stats", {})
        success = int(inference.get("success", {}).get("count", 0))
        table.add_row(
            entry.get("name", ""),
            entry.get("version", ""),
            str(success),
            str(int(inference.get("fail", {}).get("count", 0))),
            _ms(inference.get("success"), success),
            _ms(inference.get("queue"), success),
            _ms(inference.get("compute_infer"), success),
            str(entry.get("execution_count", 0)),
        )
    _console().print(table)
