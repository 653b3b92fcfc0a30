"""Dynamic batching on versus off: ``iris`` 1-row JSON requests with wrk at several concurrencies.

    python -m benchmarks.batching_bench [--duration 10] [--concurrency 1 8 32]

Serves a copy of ``examples/models/iris`` twice — as shipped (``[dynamic_batching]`` on) and with
the ``[dynamic_batching]`` section removed — each time pinned to core 0 with wrk on core 1, and
prints both tables and the ratios.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from benchmarks._harness import EXAMPLES, ROOT, WrkResult, markdown_table, oipserve, run_wrk

BODY = json.dumps(
    {
        "inputs": [
            {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
        ]
    }
).encode()


def without_batching(config: str) -> str:
    kept = []
    skipping = False
    for line in config.splitlines():
        if line.startswith("["):
            skipping = line.strip().startswith("[dynamic_batching")
        if not skipping:
            kept.append(line)
    return "\n".join(kept) + "\n"


def measure(repository: Path, concurrencies: list[int], duration: int) -> list[WrkResult]:
    with oipserve(repository) as url:
        target = f"{url}/v2/models/iris/infer"
        run_wrk(target, BODY, 8, 2)  # warm-up
        return [run_wrk(target, BODY, c, duration) for c in concurrencies]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py")], check=True, capture_output=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        on = Path(tmp) / "on"
        off = Path(tmp) / "off"
        shutil.copytree(EXAMPLES / "iris", on / "iris")
        shutil.copytree(EXAMPLES / "iris", off / "iris")
        config = off / "iris" / "model.toml"
        config.write_text(without_batching(config.read_text()))
        with_batching = measure(on, args.concurrency, args.duration)
        no_batching = measure(off, args.concurrency, args.duration)
    rows = [("batching on", r) for r in with_batching] + [("batching off", r) for r in no_batching]
    print(markdown_table("iris 1-row JSON, server pinned to core 0, wrk on core 1", rows))
    print("\n| concurrency | req/s on / off | p50 on / off |\n|---:|---:|---:|")
    for a, b in zip(with_batching, no_batching, strict=True):
        print(
            f"| {a.concurrency} | {a.requests_per_s / b.requests_per_s:.2f}x | "
            f"{a.p50_ms / b.p50_ms:.2f}x |"
        )


if __name__ == "__main__":
    main()
