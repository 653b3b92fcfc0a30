"""REST throughput and latency of ``iris`` 1-row JSON requests, measured with wrk.

    python benchmarks/rest_bench.py [--duration 10] [--concurrency 1 8 32] [--url URL]

Without ``--url`` it writes the example models, starts ``oipserve serve examples/models`` pinned
to core 0 (``taskset``) and runs wrk pinned to core 1, then prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from contextlib import nullcontext

from benchmarks._harness import EXAMPLES, ROOT, markdown_table, oipserve, run_wrk

IRIS_ROW = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    ]
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="an already running server (default: start one)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model", default="iris")
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py")], check=True, capture_output=True
    )
    body = json.dumps(IRIS_ROW).encode()
    server = nullcontext(args.url) if args.url else oipserve(EXAMPLES)
    rows = []
    with server as url:
        target = f"{url}/v2/models/{args.model}/infer"
        run_wrk(target, body, 8, 2)  # warm-up
        for concurrency in args.concurrency:
            rows.append(
                (f"{args.model} 1-row JSON", run_wrk(target, body, concurrency, args.duration))
            )
    print(markdown_table("REST, server pinned to core 0, wrk on core 1", rows))


if __name__ == "__main__":
    main()
