"""gRPC throughput and latency of ``iris`` 1-row ``ModelInfer`` requests.

    python -m benchmarks.grpc_bench [--url HOST:PORT] [--duration 10] [--concurrency 1 8 32]
                                   [--tool auto|h2load|python]

The load generator is ``h2load`` (Debian's ``nghttp2-client``: C, one thread, pinned to core 1),
posting one pre-built gRPC frame over ``concurrency`` HTTP/2 connections with one call in flight
on each, like wrk's connections in ``rest_bench.py``; its per-request log gives p50/p99. h2load
sees only HTTP statuses, so the request is first checked once through grpcio (status ``OK``, the
expected output). ``--tool python`` (the fallback when h2load is missing) uses a grpc.aio client
instead: ``concurrency`` coroutines on one channel, one call in flight each. A Python client is
itself the bottleneck well before the server is, so compare REST and gRPC with h2load.

Without ``--url`` it writes the example models, starts ``oipserve serve examples/models`` pinned to
core 0 (``taskset``) and benchmarks its gRPC port. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path

import grpc
import numpy as np

from benchmarks._harness import (
    EXAMPLES,
    ROOT,
    WrkResult,
    _to_ms,
    free_port,
    h2load_request_budget,
    markdown_table,
    server_pinning,
    taskset,
    wait_ready,
)
from oipserve.protocol.messages import pb
from oipserve.transport.grpc.http2 import STREAMS_PER_CONNECTION

METHOD = "/inference.GRPCInferenceService/ModelInfer"
STREAM_METHOD = "/inference.GRPCInferenceService/ModelStreamInfer"
IRIS_ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype="<f4")


def iris_request(model: str) -> pb.ModelInferRequest:
    return pb.ModelInferRequest(
        model_name=model,
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[1, 4])
        ],
        raw_input_contents=[IRIS_ROW.tobytes()],
    )


def grpc_frame(message: pb.ModelInferRequest) -> bytes:
    """A length-prefixed gRPC message (uncompressed), the body of one HTTP/2 request."""
    payload = message.SerializeToString()
    return b"\x00" + len(payload).to_bytes(4, "big") + payload


def check_once(target: str, request: pb.ModelInferRequest) -> None:
    """One call through grpcio: the server must answer OK with the expected prediction."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        response = call(request, timeout=30)
    predict = np.frombuffer(response.raw_output_contents[0], dtype="<i8")
    if predict.tolist() != [0]:
        raise SystemExit(f"unexpected answer from {target}: {response}")


def _percentile_ms(latencies_us: list[float], q: float) -> float:
    return float(np.percentile(latencies_us, q)) / 1000 if latencies_us else float("nan")


def check_stream_once(target: str, request: pb.ModelInferRequest, messages: int) -> None:
    """One ``ModelStreamInfer`` call carrying ``messages`` requests: as many answers, no error."""
    with grpc.insecure_channel(target) as channel:
        call = channel.stream_stream(
            STREAM_METHOD,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelStreamInferResponse.FromString,
        )
        responses = list(call(iter([request] * messages), timeout=30))
    if len(responses) != messages or any(r.error_message for r in responses):
        raise SystemExit(f"unexpected stream answer from {target}: {responses[:1]}")


def run_h2load(
    target: str,
    body: bytes,
    concurrency: int,
    duration_s: int,
    core: str | None = "1",
    method: str = METHOD,
) -> WrkResult:
    # h2load does not follow the GOAWAY with which the server recycles a connection after
    # STREAMS_PER_CONNECTION calls: send a fixed number of requests, about duration_s worth
    headers = {"content-type": "application/grpc", "te": "trailers"}
    url = f"http://{target}{method}"
    total = h2load_request_budget(
        url, body, concurrency, duration_s, headers, core, STREAMS_PER_CONNECTION
    )
    with tempfile.TemporaryDirectory() as tmp:
        body_path = Path(tmp) / "body.bin"
        body_path.write_bytes(body)
        log_path = Path(tmp) / "requests.tsv"
        out = subprocess.run(
            [
                *taskset(core),
                "h2load",
                "-t",
                "1",
                "-c",
                str(concurrency),
                "-m",
                "1",
                "-n",
                str(total),
                "-d",
                str(body_path),
                "-H",
                "content-type: application/grpc",
                "-H",
                "te: trailers",
                "--log-file",
                str(log_path),
                url,
            ],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        rows = [line.split("\t") for line in log_path.read_text().splitlines() if line]
    latencies = [float(row[2]) for row in rows if row[1] == "200"]
    errors = len(rows) - len(latencies)
    for line in out.splitlines():  # "requests: N total, N started, N done, N succeeded, N failed"
        if line.startswith("requests:"):
            errors = max(errors, int(line.split(",")[4].split()[0]))
    finished = re.search(r"finished in (\S+),", out)
    elapsed_s = _to_ms(finished.group(1)) / 1000 if finished else float(duration_s)
    return WrkResult(
        concurrency,
        len(latencies) / elapsed_s,
        _percentile_ms(latencies, 50),
        _percentile_ms(latencies, 99),
        errors,
    )


async def _python_load(
    target: str, request: pb.ModelInferRequest, concurrency: int, duration_s: float
) -> WrkResult:
    latencies: list[float] = []
    errors = 0
    options = [("grpc.use_local_subchannel_pool", 1)]
    async with grpc.aio.insecure_channel(target, options=options) as channel:
        call = channel.unary_unary(
            METHOD,
            request_serializer=pb.ModelInferRequest.SerializeToString,
            response_deserializer=pb.ModelInferResponse.FromString,
        )
        start = time.perf_counter()
        stop = start + duration_s

        async def worker() -> None:
            nonlocal errors
            while (now := time.perf_counter()) < stop:
                try:
                    await call(request, timeout=30)
                except grpc.RpcError:
                    errors += 1
                    continue
                latencies.append((time.perf_counter() - now) * 1e6)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - start
    return WrkResult(
        concurrency,
        len(latencies) / elapsed,
        _percentile_ms(latencies, 50),
        _percentile_ms(latencies, 99),
        errors,
    )


def run_python(
    target: str, request: pb.ModelInferRequest, concurrency: int, duration_s: int
) -> WrkResult:
    return asyncio.run(_python_load(target, request, concurrency, duration_s))


@contextmanager
def oipserve_grpc(repository: Path, core: str | None = "0") -> Iterator[str]:
    """Run ``oipserve serve`` pinned to ``core``; yields its gRPC ``host:port`` once ready."""
    http_port, grpc_port = free_port(), free_port()
    with tempfile.NamedTemporaryFile(prefix="oipserve-grpc-bench-", suffix=".log") as log:
        process = subprocess.Popen(
            [
                *server_pinning(core),
                sys.executable,
                "-m",
                "oipserve",
                "serve",
                str(repository),
                "--host",
                "127.0.0.1",
                "--http-port",
                str(http_port),
                "--grpc-port",
                str(grpc_port),
                "--log-level",
                "warning",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=dict(os.environ),
        )
        try:
            wait_ready(f"http://127.0.0.1:{http_port}", process)
            yield f"127.0.0.1:{grpc_port}"
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--url", help="gRPC host:port of a running server (default: start one)")
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--model", default="iris")
    parser.add_argument("--tool", choices=["auto", "h2load", "python"], default="auto")
    parser.add_argument(
        "--stream-messages",
        type=int,
        default=100,
        help="also ModelStreamInfer calls carrying this many requests each (h2load; 0: off)",
    )
    args = parser.parse_args()
    tool = args.tool
    if tool == "auto":
        tool = "h2load" if shutil.which("h2load") else "python"
    request = iris_request(args.model)
    server: AbstractContextManager[str]
    if args.url:
        server = nullcontext(args.url)
    else:
        subprocess.run(
            [sys.executable, str(ROOT / "examples" / "make_models.py")],
            check=True,
            capture_output=True,
        )
        server = oipserve_grpc(EXAMPLES)
    rows: list[tuple[str, WrkResult]] = []
    with server as target:
        check_once(target, request)
        for concurrency in args.concurrency:
            if tool == "h2load":
                result = run_h2load(target, grpc_frame(request), concurrency, args.duration)
            else:
                result = run_python(target, request, concurrency, args.duration)
            rows.append((f"{args.model} 1-row ModelInfer ({tool})", result))
        if tool == "h2load" and args.stream_messages > 0:
            n = args.stream_messages
            check_stream_once(target, request, n)
            for concurrency in args.concurrency:
                body = grpc_frame(request) * n
                per_stream = run_h2load(
                    target, body, concurrency, args.duration, method=STREAM_METHOD
                )
                per_stream.requests_per_s *= n  # requests answered per second
                case = f"{args.model} ModelStreamInfer, {n} requests per stream (latency: a stream)"
                rows.append((case, per_stream))
    where = "server pinned to core 0, " if not args.url else ""
    client = "h2load on core 1" if tool == "h2load" else "grpc.aio client"
    print(markdown_table(f"gRPC, {where}{client}", rows))


if __name__ == "__main__":
    main()
