"""``--workers N`` and process instances: what they buy on this machine (issue 14).

    python -m benchmarks.workers_bench [--duration 8] [--only gil iris forest kill memory]

* ``gil``: a Python model holding the GIL (a pure-Python loop of a few milliseconds per
  request), REST at concurrency 8 with wrk: ``--workers 1`` vs ``--workers 2``, and in one worker
  ``execution = "process"`` with 1 vs 2 instances. Targets: both ratios ≥ 1.7 on 2 cores.
* ``iris``: iris 1-row REST (wrk) and gRPC (h2load) at concurrency 32, 1 vs 2 workers (report:
  the load tool shares the two cores with the server).
* ``forest``: a 100-tree RandomForest, 1,000 rows of 20 features per request (JSON), c=8, 1 vs 2
  workers (report: scikit-learn already uses both cores from one worker's threads).
* ``kill``: ``kill -9`` of one of 2 workers under wrk load (iris, c=16): wrk's errors (the
  connections the dead worker held) and how long until the server is ready again (target 3 s).
* ``memory``: idle RSS of the whole process tree and cold start (spawn to ready) of
  ``examples/models`` with 1 and 2 workers.

Servers and load tools are not pinned: both use both cores, as in production. On a machine shared
with other work the scaling ratios are depressed; the script interleaves the 1- and 2-way runs
(``--rounds``) and reports the median of each.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np

from benchmarks._harness import EXAMPLES, ROOT, WrkResult, free_port, oipserve, run_wrk, wait_ready
from benchmarks.grpc_bench import grpc_frame, iris_request, run_h2load

GIL_MODEL = """\
import numpy as np
import oipserve


class Model(oipserve.Model):
    def infer(self, requests):
        out = []
        for r in requests:
            total = 0
            for i in range({loops}):  # holds the GIL for a few milliseconds
                total += i * i
            out.append(oipserve.InferResponse({{"y": np.array([total % 1000], np.int64)}}))
        return out
"""

GIL_CONFIG = """\
backend = "python"
max_batch_size = 0
[[instance_group]]
count = {count}
[parameters]
execution = "{execution}"
"""

X_ONE = {"inputs": [{"name": "x", "datatype": "FP32", "shape": [1], "data": [1.0]}]}
IRIS_ROW = {
    "inputs": [
        {"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}
    ]
}


def gil_repository(root: Path, loops: int) -> Path:
    for name, count, execution in (
        ("gil", 1, "thread"),
        ("gil_p1", 1, "process"),
        ("gil_p2", 2, "process"),
    ):
        folder = root / name / "1"
        folder.mkdir(parents=True)
        (folder / "model.py").write_text(GIL_MODEL.format(loops=loops))
        (root / name / "model.toml").write_text(GIL_CONFIG.format(count=count, execution=execution))
    return root


def forest_repository(root: Path) -> tuple[Path, bytes]:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    rng = np.random.default_rng(0)
    x = rng.random((2000, 20), dtype=np.float32)
    y = (x[:, 0] + x[:, 1] > 1).astype(np.int64)
    forest = RandomForestClassifier(n_estimators=100, random_state=0).fit(x, y)
    (root / "forest" / "1").mkdir(parents=True)
    joblib.dump(forest, root / "forest" / "1" / "model.joblib")
    rows = rng.random((1000, 20), dtype=np.float32)
    body = {
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP32",
                "shape": [1000, 20],
                "data": rows.ravel().tolist(),
            }
        ],
        "outputs": [{"name": "predict"}],
    }
    return root, json.dumps(body).encode()


def median(values: list[float]) -> float:
    return statistics.median(values)


def interleaved(
    rounds: int, cases: dict[str, Callable[[], WrkResult]]
) -> dict[str, list[WrkResult]]:
    """Run every case once per round, in turn, so a change of load on the machine hits all."""
    results: dict[str, list[WrkResult]] = {name: [] for name in cases}
    for _ in range(rounds):
        for name, case in cases.items():
            results[name].append(case())
    return results


def rps(results: list[WrkResult]) -> float:
    return median([r.requests_per_s for r in results])


def report(title: str, results: dict[str, list[WrkResult]]) -> None:
    print(f"\n### {title}\n")
    print("| case | req/s (median) | runs | p50 ms | p99 ms | errors |")
    print("|---|---:|---|---:|---:|---:|")
    for name, runs in results.items():
        print(
            f"| {name} | {rps(runs):,.0f} | {', '.join(f'{r.requests_per_s:,.0f}' for r in runs)} "
            f"| {median([r.p50_ms for r in runs]):.2f} | {median([r.p99_ms for r in runs]):.2f} "
            f"| {sum(r.errors for r in runs)} |"
        )


def bench_gil(duration: int, rounds: int, loops: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = gil_repository(Path(tmp) / "repo", loops)
        body = json.dumps(X_ONE).encode()
        with (
            oipserve(root, "--workers", "1", core=None) as one,
            oipserve(root, "--workers", "2", core=None) as two,
        ):
            for url in (one, two):
                for model in ("gil", "gil_p1", "gil_p2"):
                    run_wrk(f"{url}/v2/models/{model}/infer", body, 8, 1, core=None)  # warm-up
            t0 = time.perf_counter()
            for _ in range(20):
                httpx.post(f"{one}/v2/models/gil/infer", content=body)
            print(f"GIL model: {(time.perf_counter() - t0) / 20 * 1000:.1f} ms per request alone")
            results = interleaved(
                rounds,
                {
                    "--workers 1, thread instance": lambda: run_wrk(
                        f"{one}/v2/models/gil/infer", body, 8, duration, core=None
                    ),
                    "--workers 2, thread instance": lambda: run_wrk(
                        f"{two}/v2/models/gil/infer", body, 8, duration, core=None
                    ),
                    "--workers 1, 1 process instance": lambda: run_wrk(
                        f"{one}/v2/models/gil_p1/infer", body, 8, duration, core=None
                    ),
                    "--workers 1, 2 process instances": lambda: run_wrk(
                        f"{one}/v2/models/gil_p2/infer", body, 8, duration, core=None
                    ),
                },
            )
    report("GIL-bound Python model, REST c=8", results)
    names = list(results)
    print(
        f"\nworkers 2 / 1: {rps(results[names[1]]) / rps(results[names[0]]):.2f}x; "
        f"process instances 2 / 1: {rps(results[names[3]]) / rps(results[names[2]]):.2f}x"
    )


def bench_iris(duration: int, rounds: int) -> None:
    body = json.dumps(IRIS_ROW).encode()
    frame = grpc_frame(iris_request("iris"))
    ports: dict[str, int] = {}

    def grpc_args(tag: str) -> tuple[str, ...]:
        ports[tag] = free_port()
        return ("--grpc-port", str(ports[tag]))

    with (
        oipserve(EXAMPLES, "--workers", "1", *grpc_args("1"), core=None) as one,
        oipserve(EXAMPLES, "--workers", "2", *grpc_args("2"), core=None) as two,
    ):
        for url in (one, two):
            run_wrk(f"{url}/v2/models/iris/infer", body, 32, 1, core=None)
        results = interleaved(
            rounds,
            {
                "REST, --workers 1": lambda: run_wrk(
                    f"{one}/v2/models/iris/infer", body, 32, duration, core=None
                ),
                "REST, --workers 2": lambda: run_wrk(
                    f"{two}/v2/models/iris/infer", body, 32, duration, core=None
                ),
                "gRPC, --workers 1": lambda: run_h2load(
                    f"127.0.0.1:{ports['1']}", frame, 32, duration, core=None
                ),
                "gRPC, --workers 2": lambda: run_h2load(
                    f"127.0.0.1:{ports['2']}", frame, 32, duration, core=None
                ),
            },
        )
    report("iris 1 row, c=32", results)


def bench_forest(duration: int, rounds: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root, body = forest_repository(Path(tmp) / "repo")
        with (
            oipserve(root, "--workers", "1", core=None) as one,
            oipserve(root, "--workers", "2", core=None) as two,
        ):
            for url in (one, two):
                run_wrk(f"{url}/v2/models/forest/infer", body, 8, 1, core=None)
            results = interleaved(
                rounds,
                {
                    "--workers 1": lambda: run_wrk(
                        f"{one}/v2/models/forest/infer", body, 8, duration, core=None
                    ),
                    "--workers 2": lambda: run_wrk(
                        f"{two}/v2/models/forest/infer", body, 8, duration, core=None
                    ),
                },
            )
    report("RandomForest (100 trees), 1,000 rows x 20 features JSON, c=8", results)


def children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def tree(pid: int) -> list[int]:
    found = [pid]
    for child in children(pid):
        found.extend(tree(child))
    return found


def rss_mb(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def start(repository: Path, workers: int) -> tuple[subprocess.Popen[bytes], str, float]:
    http = free_port()
    command = [
        sys.executable, "-m", "oipserve", "serve", str(repository), "--host", "127.0.0.1",
        "--http-port", str(http), "--grpc-port", str(free_port()), "--log-level", "warning",
        "--workers", str(workers),
    ]  # fmt: skip
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{http}"
    wait_ready(url, process, timeout=180)
    return process, url, time.perf_counter() - started


def bench_kill(duration: int) -> None:
    body = json.dumps(IRIS_ROW).encode()
    process, url, _ = start(EXAMPLES, 2)
    try:
        outcome: list[WrkResult] = []
        load = threading.Thread(
            target=lambda: outcome.append(
                run_wrk(f"{url}/v2/models/iris/infer", body, 16, duration, core=None)
            )
        )
        load.start()
        time.sleep(duration / 3)
        victim = children(process.pid)[0]
        killed = time.perf_counter()
        os.kill(victim, signal.SIGKILL)
        noticed = None
        while time.perf_counter() - killed < 30:
            ready = httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            if not ready and noticed is None:
                noticed = time.perf_counter() - killed
            if ready and noticed is not None:
                break
            time.sleep(0.02)
        back = time.perf_counter() - killed
        load.join()
        (result,) = outcome
        print("\n### kill -9 of one of 2 workers under load (iris REST, c=16)\n")
        print(
            f"not ready {noticed or 0:.2f} s after the kill, ready again after {back:.2f} s "
            f"(target 3 s); wrk: {result.requests_per_s:,.0f} req/s over the run, "
            f"{result.errors} errors (connections the dead worker held)"
        )
    finally:
        process.terminate()
        process.wait(timeout=60)


def bench_memory() -> None:
    print("\n### idle memory and cold start, examples/models\n")
    print("| workers | cold start s | idle RSS MB (all processes) | processes |")
    print("|---:|---:|---:|---:|")
    for workers in (1, 2):
        process, _url, cold = start(EXAMPLES, workers)
        try:
            time.sleep(2)
            pids = tree(process.pid)
            print(f"| {workers} | {cold:.1f} | {rss_mb(pids):.0f} | {len(pids)} |")
        finally:
            process.terminate()
            process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=int, default=8, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--loops", type=int, default=100_000, help="GIL model loop length")
    parser.add_argument("--only", nargs="+", default=["gil", "iris", "forest", "kill", "memory"])
    args = parser.parse_args()
    subprocess.run(
        [sys.executable, str(ROOT / "examples" / "make_models.py")], check=True, capture_output=True
    )
    print(f"load average before: {os.getloadavg()}")
    if "gil" in args.only:
        bench_gil(args.duration, args.rounds, args.loops)
    if "iris" in args.only:
        bench_iris(args.duration, args.rounds)
    if "forest" in args.only:
        bench_forest(args.duration, args.rounds)
    if "kill" in args.only:
        bench_kill(max(args.duration, 9))
    if "memory" in args.only:
        bench_memory()
    print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
