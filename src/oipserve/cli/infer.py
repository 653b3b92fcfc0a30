"""``oipserve infer MODEL``: one inference request from the command line, its outputs printed."""

from __future__ import annotations

import json
from typing import Any

import click
import numpy as np

from oipserve.cli._inputs import example_inputs, parse_inputs
from oipserve.cli._remote import connect, url_options
from oipserve.client import InferResult


@click.command()
@click.argument("model")
@click.option(
    "--input",
    "-i",
    "input_specs",
    multiple=True,
    metavar="NAME=FILE|VALUE",
    help="An input: a .npy (no pickles), .json or .csv file (a row per batch element), or a "
    "literal such as '[[5.1, 3.5, 1.4, 0.2]]'. Repeat for each input.",
)
@click.option("--example", is_flag=True, help="Build every input from the model's metadata.")
@click.option(
    "--requested-output",
    "-r",
    "outputs",
    multiple=True,
    metavar="NAME",
    help="Return only these outputs (repeatable; default: every output).",
)
@click.option("--model-version", default="", help="A version of the model (default: the server's).")
@click.option(
    "--output",
    "output_format",
    type=click.Choice(["table", "json"]),
    default="table",
    show_default=True,
    help="How to print the outputs.",
)
@url_options
def infer(
    model: str,
    input_specs: tuple[str, ...],
    example: bool,
    outputs: tuple[str, ...],
    model_version: str,
    output_format: str,
    url: str | None,
    use_grpc: bool,
    api_key: str | None,
) -> None:
    """Send one inference request to MODEL and print its outputs."""
    if example and input_specs:
        raise click.UsageError("give either --input or --example, not both")
    with connect(url, use_grpc, api_key) as client:
        metadata = client.model_metadata(model, model_version)
        inputs = example_inputs(metadata) if example else parse_inputs(input_specs, metadata)
        result = client.infer(model, inputs, list(outputs) or None, version=model_version)
    if output_format == "json":
        click.echo(json.dumps(result_json(result), indent=2))
    else:
        print_table(result, inputs)


def _plain(array: np.ndarray) -> Any:
    if array.dtype == object:
        return [v.decode("utf-8", "replace") if isinstance(v, bytes) else v for v in array.ravel()]
    return (
        array.astype(np.float64).ravel().tolist()
        if array.dtype.kind == "V"
        else (array.ravel().tolist())
    )


def result_json(result: InferResult) -> dict[str, Any]:
    """The response as the protocol's JSON would have it (flat ``data``, row-major)."""
    return {
        "model_name": result.model_name,
        "model_version": result.model_version,
        "outputs": [
            {
                "name": name,
                "datatype": result.datatypes.get(name, ""),
                "shape": list(array.shape),
                "data": _plain(array),
            }
            for name, array in result.items()
        ],
    }


def print_table(result: InferResult, inputs: dict[str, np.ndarray]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{result.model_name} (version {result.model_version or '-'})")
    table.add_column("output")
    table.add_column("datatype")
    table.add_column("shape")
    table.add_column("data", overflow="fold")
    for name, array in result.items():
        text = np.array2string(array, threshold=50, edgeitems=3, max_line_width=80)
        table.add_row(name, result.datatypes.get(name, ""), str(list(array.shape)), text)
    Console().print(table)
