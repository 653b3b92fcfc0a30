"""REST binary tensor data vs JSON: req/s and latency of big and small tensors, measured with wrk.

    python benchmarks/binary_bench.py [--url URL] [--duration 10] [--concurrency 8]

Cases (each body built once, checked for a 200 answer, then POSTed by wrk through a Lua script
that reads it from a file and sets the headers):

* ``identity`` with a 1000x20 FP32 tensor as JSON, in and out;
* the same tensor as binary in and out (``Inference-Header-Content-Length``,
  ``binary_data_output``): 80 KB each way;
* ``iris`` 1-row binary in and out, and 1-row JSON for reference.

Without ``--url`` it writes the example models, starts ``oipserve serve examples/models`` pinned to
core 0 (``taskset``) and runs wrk pinned to core 1, then prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from contextlib import nullcontext
from typing import Any

import httpx
import numpy as np

from benchmarks._harness import EXAMPLES, ROOT, WrkResult, markdown_table, oipserve, run_wrk

HEADER = "Inference-Header-Content-Length"


def json_case(inputs: list[tuple[str, np.ndarray, str]]) -> tuple[bytes, dict[str, str]]:
    body = {
        "inputs": [
            {"name": name, "shape": list(a.shape), "datatype": dt, "data": a.ravel().tolist()}
            for name, a, dt in inputs
        ]
    }
    return json.dumps(body).encode(), {"Content-Type": "application/json"}


def binary_case(
    inputs: list[tuple[str, np.ndarray, str]], outputs: tuple[str, ...] = ()
) -> tuple[bytes, dict[str, str]]:
    """A binary-extension request; ``outputs`` names the outputs wanted (none: every one)."""
    header: dict[str, Any] = {
        "inputs": [
            {
                "name": name,
                "shape": list(a.shape),
                "datatype": dt,
                "parameters": {"binary_data_size": a.nbytes},
            }
            for name, a, dt in inputs
        ],
        "parameters": {"binary_data_output": True},
    }
    if outputs:
        header["outputs"] = [{"name": name} for name in outputs]
    head = json.dumps(header).encode()
    body = head + b"".join(np.ascontiguousarray(a).tobytes() for _, a, _ in inputs)
    return body, {"Content-Type": "application/octet-stream", HEADER: str(len(head))}


def cases() -> list[tuple[str, str, bytes, dict[str, str]]]:
    big = np.random.default_rng(0).standard_normal((1000, 20)).astype(np.float32)
    row = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
    return [
        ("identity 1000x20 FP32 JSON", "identity", *json_case([("INPUT0", big, "FP32")])),
        ("identity 1000x20 FP32 binary", "identity", *binary_case([("INPUT0", big, "FP32")])),
        ("iris 1-row binary", "iris", *binary_case([("input-0", row, "FP32")])),
        ("iris 1-row JSON (reference)", "iris", *json_case([("input-0", row, "FP32")])),
    ]


def check(url: str, body: bytes, headers: dict[str, str], warm_up: int = 20) -> None:
    """A 200 answer for the body (then a few more requests, as a warm-up)."""
    with httpx.Client(timeout=30) as client:
        for _ in range(warm_up):
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise SystemExit(f"{url} answered {response.status_code}: {response.text[:500]}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per case")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8])
    parser.add_argument("--wrk-core", default="1", help="core to pin wrk to ('' for no pinning)")
    args = parser.parse_args()
    if not args.url:
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "make_models.py")],
            check=True,
            capture_output=True,
        )
    server = nullcontext(args.url) if args.url else oipserve(EXAMPLES)
    wrk_core = args.wrk_core or None
    rows: list[tuple[str, WrkResult]] = []
    with server as url:
        for name, model, body, headers in cases():
            target = f"{url}/v2/models/{model}/infer"
            check(target, body, headers)
            for concurrency in args.concurrency:
                result = run_wrk(
                    target, body, concurrency, args.duration, headers=headers, core=wrk_core
                )
                rows.append((f"{name} ({len(body):,} B)", result))
    where = "given server" if args.url else "server pinned to core 0"
    print(markdown_table(f"REST binary vs JSON, {where}, wrk on core {wrk_core}", rows))


if __name__ == "__main__":
    main()
