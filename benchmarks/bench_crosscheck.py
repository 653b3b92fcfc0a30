"""``oipserve bench``'s load generator, checked against wrk (and perf_analyzer when installed).

    python benchmarks/bench_crosscheck.py [--duration 5] [--concurrency 8 32] [--runs 3]

1. **Against wrk, on the bare-ASGI floor** (``benchmarks/compare/floor_http.py``: uvicorn +
   httptools + uvloop answering every request with a fixed iris response), the server pinned to
   core 0, the load generator on core 1: at each concurrency, ``oipserve bench``'s engine
   (``oipserve.cli._load.run_http_level``, the same code the command runs) and ``wrk -t 1 -c N``
   take turns, ``--runs`` times each; the medians of their throughputs must agree within 10%, and
   the engine must reach 20,000 requests/s at the highest concurrency, one core driving it.
2. **Against perf_analyzer, on a real oipserve** (``iris``; the floor cannot answer
   perf_analyzer's metadata and configuration requests), when ``.perf-analyzer/venv/bin/
   perf_analyzer`` (or ``$PERF_ANALYZER_DIR``'s) exists: the same concurrency, the same pinning,
   throughput within 10% again.

Beside the rates, the engine's own CPU time per request (``time.process_time`` over the run) says
how many requests per second one core could drive if the server were not the limit.

Prints a markdown table and exits 1 if a check fails. The figures are only as steady as the
machine: on a machine shared with other work, run it when it is quiet.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks._harness import EXAMPLES, ROOT, oipserve, run_wrk, taskset
from benchmarks.compare.servers import ServerSpec, running
from oipserve.cli._load import LevelResult, event_loop_runner, http_request, run_http_level
from oipserve.client._rest import encode_infer_request

SERVER_CORE, LOAD_CORE = "0", "1"
TOLERANCE = 0.10
FLOOR_TARGET = 20_000.0
IRIS_ROW = {"input-0": [[5.1, 3.5, 1.4, 0.2]]}
IRIS_RESPONSE = (
    b'{"model_name":"iris","model_version":"1","outputs":[{"name":"predict","datatype":"INT64",'
    b'"shape":[1],"data":[0]}]}'
)


@dataclass
class Row:
    target: str
    concurrency: int
    bench: list[float]
    other_tool: str
    other: list[float]
    bench_p50_ms: float
    bench_p99_ms: float
    cpu_us: float

    @property
    def ratio(self) -> float:
        return statistics.median(self.bench) / statistics.median(self.other)


def _request(port: int) -> bytes:
    import numpy as np

    headers, body = encode_infer_request(
        {"input-0": np.asarray(IRIS_ROW["input-0"], dtype=np.float32)}, binary=False
    )
    return http_request(f"127.0.0.1:{port}", "/v2/models/iris/infer", headers, body)


def _engine(port: int, concurrency: int, duration: float) -> tuple[LevelResult, float]:
    """One run of the engine, and its CPU time per counted request in µs."""
    with event_loop_runner() as runner:
        started = time.process_time()
        result = runner.run(
            run_http_level("127.0.0.1", port, _request(port), concurrency, duration, 1.0)
        )
        cpu = time.process_time() - started
    return result, cpu / max(result.requests, 1) * 1e6


def _floor_spec(body_file: Path) -> ServerSpec:
    script = ROOT / "benchmarks" / "compare" / "floor_http.py"

    def command(http_port: int, grpc_port: int) -> list[str]:
        return [
            sys.executable,
            str(script),
            str(http_port),
            str(body_file),
            "content-type: application/json",
        ]

    return ServerSpec("floor", command, grpc=False)


def against_wrk(levels: list[int], duration: float, runs: int, work: Path) -> list[Row]:
    body_file = work / "iris-response.json"
    body_file.write_bytes(IRIS_RESPONSE)
    rows: list[Row] = []
    with running(_floor_spec(body_file), work / "floor.log", core=SERVER_CORE) as floor:
        url = f"{floor.url}/v2/models/iris/infer"
        request = _request(floor.http_port)
        wrk_body = request.split(b"\r\n\r\n", 1)[1]
        for concurrency in levels:
            bench: list[float] = []
            wrk: list[float] = []
            latencies: list[LevelResult] = []
            cpu: list[float] = []
            for _ in range(runs):  # taking turns, so a busy moment hurts both alike
                result, cpu_us = _engine(floor.http_port, concurrency, duration)
                bench.append(result.throughput)
                latencies.append(result)
                cpu.append(cpu_us)
                wrk.append(
                    run_wrk(
                        url, wrk_body, concurrency, int(duration), core=LOAD_CORE
                    ).requests_per_s
                )
            middle = sorted(latencies, key=lambda r: r.throughput)[len(latencies) // 2]
            rows.append(
                Row(
                    "floor",
                    concurrency,
                    bench,
                    "wrk",
                    wrk,
                    middle.p50_ms,
                    middle.p99_ms,
                    statistics.median(cpu),
                )
            )
    return rows


def _perf_analyzer() -> list[str] | None:
    """The command that runs perf_analyzer: ``../shared/tools/perf-analyzer.sh`` over an install
    in ``$PERF_ANALYZER_DIR`` or ``.perf-analyzer`` (it sets the libraries' path), else
    ``perf_analyzer`` on the PATH; None when neither is installed (nothing is installed here)."""
    tool = ROOT.parent / "shared" / "tools" / "perf-analyzer.sh"
    install = Path(os.environ.get("PERF_ANALYZER_DIR") or ROOT / ".perf-analyzer")
    if tool.is_file() and (install / "venv" / "bin" / "perf_analyzer").is_file():
        return ["bash", str(tool), "--dir", str(install)]
    found = shutil.which("perf_analyzer")
    return [found] if found else None


def _perf_analyzer_throughput(
    tool: list[str], url: str, concurrency: int, duration: float
) -> float:
    """perf_analyzer's client-side throughput at ``concurrency`` (its default binary requests of
    one ``[1, 4]`` row). Its stability rule (three windows within a percentage) is relaxed to
    1000%: on a busy machine it otherwise never reports; the figure is still the average of its
    last three windows, as the wrk and bench figures are medians of their runs."""
    done = subprocess.run(
        [
            *taskset(LOAD_CORE),
            *tool,
            "-m",
            "iris",
            "-u",
            url.removeprefix("http://"),
            "-i",
            "http",
            "--concurrency-range",
            str(concurrency),
            "--measurement-interval",
            str(int(duration * 1000)),
            "--stability-percentage",
            "1000",
            "--shape",
            "input-0:1,4",
        ],
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )
    found = re.findall(r"Throughput: ([\d.]+) infer/sec", done.stdout)
    if not found:
        raise RuntimeError(f"no throughput in perf_analyzer's output:\n{done.stdout}{done.stderr}")
    return float(found[-1])


def against_perf_analyzer(
    tool: list[str], levels: list[int], duration: float, runs: int
) -> list[Row]:
    rows: list[Row] = []
    with oipserve(EXAMPLES, core=SERVER_CORE) as url:
        port = int(url.rsplit(":", 1)[1])
        for concurrency in levels:
            bench: list[float] = []
            other: list[float] = []
            latencies: list[LevelResult] = []
            cpu: list[float] = []
            for _ in range(runs):
                result, cpu_us = _engine(port, concurrency, duration)
                bench.append(result.throughput)
                latencies.append(result)
                cpu.append(cpu_us)
                other.append(_perf_analyzer_throughput(tool, url, concurrency, duration))
            middle = sorted(latencies, key=lambda r: r.throughput)[len(latencies) // 2]
            rows.append(
                Row(
                    "oipserve iris",
                    concurrency,
                    bench,
                    "perf_analyzer",
                    other,
                    middle.p50_ms,
                    middle.p99_ms,
                    statistics.median(cpu),
                )
            )
    return rows


def report(rows: list[Row]) -> tuple[str, bool]:
    lines = [
        "| server | concurrency | oipserve bench req/s | other tool | its req/s | ratio | "
        "bench p50 ms | bench p99 ms | bench CPU µs / request |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|",
    ]
    passed = True
    for row in rows:
        ok = abs(row.ratio - 1) <= TOLERANCE
        passed &= ok
        lines.append(
            f"| {row.target} | {row.concurrency} | {statistics.median(row.bench):,.0f} | "
            f"{row.other_tool} | {statistics.median(row.other):,.0f} | {row.ratio:.3f}"
            f"{'' if ok else ' ✗'} | {row.bench_p50_ms:.3f} | {row.bench_p99_ms:.3f} | "
            f"{row.cpu_us:.1f} |"
        )
    floor = [r for r in rows if r.target == "floor"]
    if floor:
        best = max(statistics.median(r.bench) for r in floor)
        reached = best >= FLOOR_TARGET
        passed &= reached
        lines.append("")
        lines.append(
            f"one core drove the floor at {best:,.0f} req/s "
            f"({'≥' if reached else 'below'} {FLOOR_TARGET:,.0f})"
        )
    return "\n".join(lines), passed


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per run")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[8, 32])
    parser.add_argument("--runs", type=int, default=3, help="runs of each tool per concurrency")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
        os.sched_setaffinity(0, {int(LOAD_CORE)})  # the engine runs in this process
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py")], check=True, capture_output=True
    )
    with tempfile.TemporaryDirectory() as tmp:
        rows = against_wrk(args.concurrency, args.duration, args.runs, Path(tmp))
    tool = _perf_analyzer()
    if tool is not None:
        rows += against_perf_analyzer(tool, args.concurrency, args.duration, args.runs)
    else:
        print("perf_analyzer is not installed: its cross-check is skipped", file=sys.stderr)
    table, passed = report(rows)
    print(table)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
