"""Measure the gRPC floor of each candidate server stack side by side.

    python -m benchmarks.grpc_floor [--runs 3] [--duration 5] [--concurrency 32]
                                    [--candidates NAME ...] [--python PATH]

Each candidate (``servers.CANDIDATES``) serves the same floor handler (``handler.py``: parse the
``ModelInferRequest``, answer a fixed ``ModelInferResponse``), pinned to core 0 (``taskset``); one
call through grpcio first proves it speaks gRPC (status OK, the expected response), then h2load
(C, one thread, pinned to core 1) posts the iris-like 1-row FP32 request over ``concurrency``
HTTP/2 connections with one call in flight each: a 1-second probe (also the warm-up), then a run
of about ``duration`` seconds with at most ``STREAMS_PER_CONNECTION`` calls per connection (h2load
does not follow the ``GOAWAY`` with which oipserve's server recycles a connection). Runs are
interleaved (round 1 runs every candidate, then round 2, ...) so that noise from anything else on
the machine hits all alike; the table gives the median and the range, and the calls each server
answered per CPU-second it used (from ``/proc``), which depends much less on what else the
machine runs than calls per wall-clock second do. On a shared machine set ``BENCH_REALTIME=1``
(the servers then run at a real-time priority, see ``benchmarks._harness.server_pinning``). A
candidate whose library is missing is reported as such (``--python`` picks an interpreter whose
environment has them).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from benchmarks._harness import ROOT, free_port, h2load_request_budget, h2load_run, server_pinning
from benchmarks.grpc_floor.handler import METHOD, frame, iris_request
from benchmarks.grpc_floor.servers import CANDIDATES, ENVIRONMENT
from oipserve.protocol.messages import pb
from oipserve.transport.grpc.http2 import STREAMS_PER_CONNECTION as PER_CONNECTION


@dataclass
class Measured:
    rates: list[float] = field(default_factory=list)
    mean_ms: list[float] = field(default_factory=list)
    per_cpu_s: list[float] = field(default_factory=list)
    errors: int = 0
    failure: str = ""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads) so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return ticks / os.sysconf("SC_CLK_TCK")


def check_once(target: str, deadline: float) -> None:
    """Poll (bounded) until one grpcio call answers OK with the floor's response."""
    request = iris_request()
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            with grpc.insecure_channel(target) as channel:
                call = channel.unary_unary(
                    METHOD,
                    request_serializer=pb.ModelInferRequest.SerializeToString,
                    response_deserializer=pb.ModelInferResponse.FromString,
                )
                response = call(request, timeout=2)
            if response.model_name != "iris" or len(response.raw_output_contents) != 1:
                raise RuntimeError(f"unexpected response {response}")
            return
        except grpc.RpcError as exc:
            last = exc
            time.sleep(0.1)
    raise RuntimeError(f"no gRPC answer from {target}: {last}")


@contextmanager
def candidate_server(name: str, python: str) -> Iterator[tuple[str, int]]:
    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "src")])}
    env.update(ENVIRONMENT.get(name, {}))
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(
            [*server_pinning("0"), python, "-m", "benchmarks.grpc_floor.servers", name, str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=ROOT,
        )
        try:
            target = f"127.0.0.1:{port}"
            try:
                check_once(target, time.monotonic() + 30)
            except RuntimeError:
                process.kill()
                process.wait()
                log.seek(0)
                tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
                raise RuntimeError(" / ".join(tail) or "no answer") from None
            yield target, process.pid
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5, help="seconds per run")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES))
    parser.add_argument("--python", default=sys.executable, help="interpreter for the servers")
    args = parser.parse_args()
    if shutil.which("h2load") is None:
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    body = frame(iris_request().SerializeToString())
    headers = {"content-type": "application/grpc", "te": "trailers"}
    results = {name: Measured() for name in args.candidates}
    for run in range(args.runs):
        # rotate the order each round so no candidate always follows the same one
        order = (
            args.candidates[run % len(args.candidates) :]
            + args.candidates[: run % len(args.candidates)]
        )
        for name in order:
            measured = results[name]
            if measured.failure:
                continue
            try:
                with candidate_server(name, args.python) as (target, pid):
                    url = f"http://{target}{METHOD}"
                    total = h2load_request_budget(
                        url, body, args.concurrency, args.duration, headers, "1", PER_CONNECTION
                    )
                    before = cpu_seconds(pid)
                    timing = ["-n", str(total)]
                    result = h2load_run(url, body, args.concurrency, timing, headers, "1")
                    used = cpu_seconds(pid) - before
            except RuntimeError as exc:
                measured.failure = str(exc)
                print(f"{name}: not measured: {exc}", file=sys.stderr)
                continue
            measured.rates.append(result.requests_per_s)
            measured.mean_ms.append(result.mean_ms)
            measured.per_cpu_s.append((total - result.errors) / used if used else float("nan"))
            measured.errors += result.errors
            print(
                f"run {run + 1} {name}: {result.requests_per_s:,.0f} req/s, "
                f"{measured.per_cpu_s[-1]:,.0f} calls per server CPU-second, "
                f"mean {result.mean_ms:.2f} ms, errors {result.errors}",
                file=sys.stderr,
            )
    print(
        f"| stack (floor handler, c={args.concurrency}) | req/s (median) | min to max | "
        "calls per server CPU-second (median) | mean ms | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    ranked = sorted(results.items(), key=lambda item: -statistics.median(item[1].rates or [0.0]))
    for name, measured in ranked:
        if not measured.rates:
            print(f"| {name} | not measured: {measured.failure} | | | | |")
            continue
        print(
            f"| {name} | {statistics.median(measured.rates):,.0f} | "
            f"{min(measured.rates):,.0f} to {max(measured.rates):,.0f} | "
            f"{statistics.median(measured.per_cpu_s):,.0f} | "
            f"{statistics.median(measured.mean_ms):.2f} | {measured.errors} |"
        )


if __name__ == "__main__":
    main()
