"""``oipserve bench MODEL``: closed-loop load at each concurrency, latency percentiles and
throughput, optionally a plot. The load generator itself is ``_load.py``."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import Any

import click

from oipserve.cli._inputs import example_inputs, parse_inputs
from oipserve.cli._load import (
    LevelResult,
    event_loop_runner,
    http_request,
    run_grpc_level,
    run_http_level,
)
from oipserve.cli._remote import connect, fail, url_options
from oipserve.client import Client


def _concurrency_levels(ctx: click.Context, param: click.Parameter, value: str) -> list[int]:
    levels: list[int] = []
    for part in value.split(","):
        try:
            level = int(part)
        except ValueError:
            raise click.BadParameter(f"{part!r} is not a whole number") from None
        if level < 1:
            raise click.BadParameter(f"each concurrency must be at least 1, got {level}")
        levels.append(level)
    return levels


@click.command()
@click.argument("model")
@click.option(
    "--concurrency",
    "-c",
    default="1,8,32",
    show_default=True,
    callback=_concurrency_levels,
    help="Comma-separated numbers of requests in flight (closed loop: each waits for its reply).",
)
@click.option(
    "--duration",
    "-d",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="Measured seconds per concurrency.",
)
@click.option(
    "--warmup",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="Unmeasured seconds before each concurrency's window.",
)
@click.option(
    "--input",
    "-i",
    "input_specs",
    multiple=True,
    metavar="NAME=FILE|VALUE",
    help="The request's inputs, as for 'oipserve infer' (default: built from the metadata).",
)
@click.option("--model-version", default="", help="A version of the model.")
@click.option("--binary", is_flag=True, help="REST: send the tensors as binary tensor data.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option(
    "--plot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save a plot of throughput and latency against concurrency (.png or .svg; needs the "
    "'plot' extra).",
)
@url_options
def bench(
    model: str,
    concurrency: list[int],
    duration: float,
    warmup: float,
    input_specs: tuple[str, ...],
    model_version: str,
    binary: bool,
    as_json: bool,
    plot: Path | None,
    url: str | None,
    use_grpc: bool,
    api_key: str | None,
) -> None:
    """Load MODEL at each concurrency and report p50 / p90 / p99 / max latency and throughput."""
    if plot is not None:
        if plot.suffix.lower() not in (".png", ".svg"):
            raise click.BadParameter("the plot is written as .png or .svg", param_hint="--plot")
        if importlib.util.find_spec("matplotlib") is None:
            raise click.UsageError(
                "--plot needs matplotlib: install the plot extra, pip install 'oipserve[plot]'"
            )
    with connect(url, use_grpc, api_key) as client:
        metadata = client.model_metadata(model, model_version)
        inputs = parse_inputs(input_specs, metadata) if input_specs else example_inputs(metadata)
        client.infer(model, inputs, version=model_version)  # refused here, not 10 000 times
        results = _run(
            client,
            model,
            model_version,
            inputs,
            concurrency,
            duration,
            warmup,
            binary,
            api_key,
            quiet=as_json,
        )
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    else:
        _print_table(model, client.url, results)
    if plot is not None:
        write_plot(results, plot, f"{model} at {client.url}")
        if not as_json:
            click.echo(f"plot written to {plot}")
    failed = [r for r in results if r.errors]
    if failed and not any(r.requests for r in results):
        fail(f"every request failed: {failed[0].first_error}")


def _run(
    client: Client,
    model: str,
    version: str,
    inputs: dict[str, Any],
    levels: list[int],
    duration: float,
    warmup: float,
    binary: bool,
    api_key: str | None,
    quiet: bool,
) -> list[LevelResult]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    endpoint = client.endpoint
    results: list[LevelResult] = []
    progress = Progress(
        TextColumn("concurrency {task.fields[level]:>4}"),
        BarColumn(),
        TextColumn("{task.fields[count]:>9,} requests"),
        TimeRemainingColumn(),
        disable=quiet,
    )
    if endpoint.wire == "rest":
        from oipserve.client._rest import encode_infer_request

        headers, body = encode_infer_request(inputs, binary=binary)
        if api_key:
            headers["authorization"] = f"Bearer {api_key}"
        path = f"/v2/models/{model}" + (f"/versions/{version}" if version else "") + "/infer"
        request = http_request(endpoint.authority, path, headers, body)
        tls = None
        if endpoint.tls:
            import ssl

            tls = ssl.create_default_context()
    else:
        from oipserve.client._grpc import SERVICE_NAME, infer_request

        message = infer_request(model, inputs, version=version).SerializeToString()
        metadata = (("authorization", f"Bearer {api_key}"),) if api_key else ()
        credentials = None
        if endpoint.tls:
            import grpc

            credentials = grpc.ssl_channel_credentials()
    with progress, event_loop_runner() as runner:
        for level in levels:
            task = progress.add_task("", total=warmup + duration, level=level, count=0)

            def update(count: int, elapsed: float, task: Any = task) -> None:
                progress.update(task, completed=elapsed, count=count)

            if endpoint.wire == "rest":
                coroutine = run_http_level(
                    endpoint.host, endpoint.port, request, level, duration, warmup, update, tls
                )
            else:
                coroutine = run_grpc_level(
                    endpoint.authority,
                    f"/{SERVICE_NAME}/ModelInfer",
                    message,
                    level,
                    duration,
                    warmup,
                    update,
                    metadata,
                    credentials,
                )
            try:
                result = runner.run(coroutine)
            except OSError as exc:
                fail(f"lost the server during the run: {exc}", 2)
            progress.update(task, completed=warmup + duration, count=result.requests)
            results.append(result)
    return results


def _print_table(model: str, url: str, results: list[LevelResult]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{model} at {url}")
    for column in (
        "concurrency",
        "requests",
        "errors",
        "req/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
    ):
        table.add_column(column, justify="right")
    for r in results:
        table.add_row(
            str(r.concurrency),
            f"{r.requests:,}",
            str(r.errors),
            f"{r.throughput:,.0f}",
            *(
                f"{v:.3f}" if not math.isnan(v) else "-"
                for v in (r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms)
            ),
        )
    console = Console()
    console.print(table)
    for r in results:
        if r.first_error:
            console.print(f"concurrency {r.concurrency}: {r.errors} errors, first: {r.first_error}")


def write_plot(results: list[LevelResult], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r.concurrency for r in results]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    left.plot(levels, [r.throughput for r in results], marker="o")
    left.set_xlabel("concurrency")
    left.set_ylabel("requests / s")
    left.set_title("throughput")
    for label, values in (
        ("p50", [r.p50_ms for r in results]),
        ("p90", [r.p90_ms for r in results]),
        ("p99", [r.p99_ms for r in results]),
        ("max", [r.max_ms for r in results]),
    ):
        right.plot(levels, values, marker="o", label=label)
    right.set_xlabel("concurrency")
    right.set_ylabel("latency (ms)")
    right.set_title("latency")
    right.legend()
    for axis in (left, right):
        if len(levels) > 1 and max(levels) / min(levels) >= 8:
            axis.set_xscale("log", base=2)
        axis.grid(True, alpha=0.3)
    figure.suptitle(title)
    figure.savefig(path)
    plt.close(figure)
