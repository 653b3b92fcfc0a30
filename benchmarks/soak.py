"""Soak: many mixed good and bad requests against one server; memory, descriptors and tasks must
not grow (issue 13).

    python -m benchmarks.soak [--requests 100000] [--concurrency 16] [--grpc-share 0.1]

The server runs in a child process started by this script (``--serve``), with a sampler that
writes the process's RSS, open file descriptors, threads and asyncio tasks to a JSON-lines file
every half second. The load mixes good inferences (REST JSON and binary, gRPC) with bad requests
of every kind PROTOCOL.md §0 lists: malformed and deeply nested JSON, wrong datatypes and shapes,
unknown models and paths, wrong methods, an upload refused with 403, headers too large (431), a
tensor over its limit (413), and clients that go away mid-request. After a warm-up (the first tenth
of the requests) the baseline is taken; the run passes when, at the end (after a moment of quiet),
RSS grew less than 10% over the baseline and descriptors and tasks are back to the baseline.
Results are printed as JSON (``docs/performance.md`` records them).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx

from benchmarks._harness import EXAMPLES, free_port

GOOD = json.dumps(
    {
        "inputs": [
            {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": list(range(16))},
            {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [1] * 16},
        ]
    }
).encode()


def _bad_cases() -> list[tuple[str, str, bytes, dict[str, str]]]:
    infer = "/v2/models/simple/infer"
    wrong_type = GOOD.replace(b'"INT32"', b'"FP32"', 1)
    return [
        ("POST", infer, b"{not json", {}),
        ("POST", infer, b"[" * 5000 + b"]" * 5000, {}),
        ("POST", infer, wrong_type, {}),
        ("POST", infer, GOOD.replace(b"[1, 16]", b"[1, 15]", 1), {}),
        ("POST", "/v2/models/nope/infer", GOOD, {}),
        ("GET", "/v2/no/such/path", b"", {}),
        ("DELETE", "/v2/models/simple", b"", {}),
        ("POST", infer, b"", {}),
        (
            "POST",
            "/v2/repository/models/evil/load",
            b'{"parameters": {"config": "{}", "file:1/model.py": "eA=="}}',
            {},
        ),
        ("GET", "/v2/health/live", b"", {"x-big": "a" * 20000}),
        (
            "POST",
            infer,
            json.dumps(
                {
                    "inputs": [
                        {"name": "INPUT0", "shape": [1 << 25], "datatype": "INT32", "data": [0]}
                    ]
                }
            ).encode(),
            {},
        ),
        ("POST", infer, GOOD, {"content-encoding": "br"}),
    ]


# -- the server side -------------------------------------------------------------------------------


def serve(repository: Path, http_port: int, grpc_port: int, samples: Path) -> None:
    """Run the server in this process with the sampler (the child of :func:`main`)."""
    from oipserve.server import Server
    from oipserve.settings import Settings

    settings = Settings(
        model_repository=repository,
        host="127.0.0.1",
        http_port=http_port,
        grpc_port=grpc_port,
        log_level="warning",
        drain_grace_secs=0,
        allow_console=False,
    )

    async def sample() -> None:
        pid = os.getpid()
        with samples.open("a") as out:
            while True:
                rss_kb = 0
                threads = 0
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        rss_kb = int(line.split()[1])
                    elif line.startswith("Threads:"):
                        threads = int(line.split()[1])
                fds = len(os.listdir(f"/proc/{pid}/fd"))
                tasks = len(asyncio.all_tasks())
                record = {"t": time.time(), "rss_kb": rss_kb, "fds": fds, "threads": threads,
                          "tasks": tasks}  # fmt: skip
                out.write(json.dumps(record) + "\n")
                out.flush()
                await asyncio.sleep(0.5)

    async def main() -> None:
        server = Server(settings)
        sampler = asyncio.create_task(sample())
        try:
            await server.serve()
        finally:
            sampler.cancel()

    import uvloop

    uvloop.run(main())


# -- the client side -------------------------------------------------------------------------------


async def _rest_load(
    base_url: str, total: int, concurrency: int, counts: Counter[str], progress: list[int]
) -> None:
    bad = _bad_cases()
    rng = random.Random(13)
    queue: asyncio.Queue[int] = asyncio.Queue()
    for index in range(total):
        queue.put_nowait(index)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async def worker() -> None:
        async with httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits) as client:
            while not queue.empty():
                queue.get_nowait()
                pick = rng.random()
                try:
                    if pick < 0.5:
                        response = await client.post("/v2/models/simple/infer", content=GOOD)
                        counts[f"good {response.status_code}"] += 1
                    elif pick < 0.52:
                        # a client that goes away before its answer
                        with_timeout = client.post(
                            "/v2/models/simple/infer", content=GOOD, timeout=0.0005
                        )
                        with contextlib.suppress(httpx.TimeoutException):
                            await with_timeout
                        counts["abandoned"] += 1
                    else:
                        method, path, body, headers = rng.choice(bad)
                        response = await client.request(method, path, content=body, headers=headers)
                        counts[f"bad {response.status_code}"] += 1
                except httpx.HTTPError as exc:
                    counts[f"client error {type(exc).__name__}"] += 1
                progress[0] += 1

    await asyncio.gather(*(worker() for _ in range(concurrency)))


def _grpc_load(url: str, total: int, counts: Counter[str]) -> None:
    import numpy as np
    import tritonclient.grpc as grpcclient
    from tritonclient.utils import InferenceServerException

    client = grpcclient.InferenceServerClient(url)
    good = [grpcclient.InferInput("INPUT0", [1, 16], "INT32"),
            grpcclient.InferInput("INPUT1", [1, 16], "INT32")]  # fmt: skip
    for tensor in good:
        tensor.set_data_from_numpy(np.ones((1, 16), dtype=np.int32))
    wrong = [grpcclient.InferInput("INPUT0", [1, 3], "FP32")]
    wrong[0].set_data_from_numpy(np.ones((1, 3), dtype=np.float32))
    try:
        for index in range(total):
            try:
                if index % 3 == 0:
                    client.infer("simple", wrong)
                elif index % 3 == 1:
                    client.infer("nope", good)
                else:
                    client.infer("simple", good)
                counts["grpc ok"] += 1
            except InferenceServerException as exc:
                counts[f"grpc {exc.status()}"] += 1
    finally:
        client.close()


def _read_samples(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--grpc-share", type=float, default=0.1)
    parser.add_argument("--serve", nargs=4, metavar=("REPO", "HTTP", "GRPC", "SAMPLES"))
    args = parser.parse_args()
    if args.serve:
        repo, http_port, grpc_port, samples = args.serve
        serve(Path(repo), int(http_port), int(grpc_port), Path(samples))
        return

    http_port, grpc_port = free_port(), free_port()
    workdir = Path(tempfile.mkdtemp(prefix="oipserve-soak-"))
    samples = workdir / "samples.jsonl"
    server = subprocess.Popen(
        [sys.executable, "-m", "benchmarks.soak", "--serve", str(EXAMPLES), str(http_port),
         str(grpc_port), str(samples)],
        stdout=(workdir / "server.log").open("wb"),
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{http_port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{base_url}/v2/health/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        else:
            raise SystemExit(f"the server did not start; see {workdir / 'server.log'}")

        grpc_total = int(args.requests * args.grpc_share)
        rest_total = args.requests - grpc_total
        warmup = args.requests // 10
        counts: Counter[str] = Counter()
        progress = [0]
        started = time.monotonic()

        async def run() -> dict[str, Any]:
            baseline: dict[str, Any] = {}

            async def watch() -> None:
                while progress[0] < warmup:
                    await asyncio.sleep(0.2)
                await asyncio.sleep(1.0)
                baseline.update(_read_samples(samples)[-1])

            watcher = asyncio.create_task(watch())
            grpc = asyncio.get_running_loop().run_in_executor(
                None, _grpc_load, f"127.0.0.1:{grpc_port}", grpc_total, counts
            )
            await _rest_load(base_url, rest_total, args.concurrency, counts, progress)
            await grpc
            await watcher
            return baseline

        baseline = asyncio.run(run())
        elapsed = time.monotonic() - started
        time.sleep(3.0)  # quiet: abandoned requests finish, idle connections close
        final = _read_samples(samples)[-1]
        peak_rss = max(s["rss_kb"] for s in _read_samples(samples))
        growth = (final["rss_kb"] - baseline["rss_kb"]) / baseline["rss_kb"]
        result = {
            "requests": args.requests,
            "seconds": round(elapsed, 1),
            "requests_per_s": round(args.requests / elapsed),
            "counts": dict(sorted(counts.items())),
            "rss_mb": {
                "baseline": round(baseline["rss_kb"] / 1024, 1),
                "final": round(final["rss_kb"] / 1024, 1),
                "peak": round(peak_rss / 1024, 1),
            },
            "rss_growth_pct": round(100 * growth, 2),
            "fds": {"baseline": baseline["fds"], "final": final["fds"]},
            "tasks": {"baseline": baseline["tasks"], "final": final["tasks"]},
            "threads": {"baseline": baseline["threads"], "final": final["threads"]},
            "server_alive": server.poll() is None,
        }
        result["pass"] = (
            result["server_alive"]
            and growth < 0.10
            and final["fds"] <= baseline["fds"]
            and final["tasks"] <= baseline["tasks"]
        )
        print(json.dumps(result, indent=2))
        if not result["pass"]:
            raise SystemExit(1)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()


if __name__ == "__main__":
    main()
