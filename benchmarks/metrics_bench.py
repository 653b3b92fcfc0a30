"""What metrics cost: iris 1-row REST throughput at concurrency 32 with metrics on (the default)
and off (``--allow-metrics=false``), interleaved, plus the time of a scrape with 100 models.

    python -m benchmarks.metrics_bench [--runs 5] [--duration 10]

Each run starts a fresh server pinned to core 0 (wrk on core 1): on, off, on, off, …; the
report gives every run and the medians. While metrics are on, a scrape every second runs beside
the load, as Prometheus would.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from benchmarks._harness import EXAMPLES, ROOT, oipserve, run_wrk
from benchmarks.rest_bench import IRIS_ROW


def _scraper(url: str, stop: threading.Event) -> None:
    with httpx.Client() as client:
        while not stop.wait(1.0):
            client.get(f"{url}/metrics")


def throughput(metrics: bool, duration: int, concurrency: int) -> float:
    args = () if metrics else ("--allow-metrics=false",)
    body = json.dumps(IRIS_ROW).encode()
    with oipserve(EXAMPLES, *args) as url:
        target = f"{url}/v2/models/iris/infer"
        run_wrk(target, body, 8, 2)  # warm-up
        stop = threading.Event()
        scraper = threading.Thread(target=_scraper, args=(url, stop), daemon=True)
        if metrics:
            scraper.start()
        try:
            return run_wrk(target, body, concurrency, duration).requests_per_s
        finally:
            stop.set()


def scrape_ms(models: int = 100) -> float:
    """Median wall time of ``GET /metrics`` on a server with ``models`` copies of iris."""
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = EXAMPLES / "iris"
        for index in range(models):
            target = root / f"iris{index:03d}"
            subprocess.run(["cp", "-r", str(source), str(target)], check=True)
        with oipserve(root) as url, httpx.Client(base_url=url, timeout=30) as client:
            times = []
            for _ in range(20):
                start = time.perf_counter()
                client.get("/metrics").raise_for_status()
                times.append((time.perf_counter() - start) * 1000)
            return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py")], check=True, capture_output=True
    )
    on: list[float] = []
    off: list[float] = []
    for _ in range(args.runs):
        on.append(throughput(True, args.duration, args.concurrency))
        off.append(throughput(False, args.duration, args.concurrency))
    median_on, median_off = statistics.median(on), statistics.median(off)
    print(
        f"iris 1-row REST, c={args.concurrency}, {args.runs} interleaved runs of {args.duration} s"
    )
    print("| run | metrics on (req/s) | metrics off (req/s) |")
    print("|---|---|---|")
    for index, (a, b) in enumerate(zip(on, off, strict=True), 1):
        print(f"| {index} | {a:.0f} | {b:.0f} |")
    print(f"| median | {median_on:.0f} | {median_off:.0f} |")
    print(f"cost: {(1 - median_on / median_off) * 100:.1f}% of throughput")
    print(f"scrape of 100 models: {scrape_ms():.1f} ms (median of 20)")


if __name__ == "__main__":
    main()
