"""oipserve side by side with MLServer 1.7.1 and with bare-stack floors, on one pinned core.

    python -m benchmarks.compare [--quick] [--runs N] [--duration S] [--write-docs]

1. Puts MLServer 1.7.1 (with mlserver-sklearn and uvloop 0.21.0) into its own virtualenv,
   ``benchmarks/compare/.mlserver-venv``, unless it is there already.
2. Writes the models twice, each with its server's own Python and scikit-learn: iris
   (LogisticRegression), an echo model (oipserve's ``identity``; a ten-line custom runtime for
   MLServer), a RandomForest (100 trees, 20 features, synthetic data), and repositories of 1 and
   10 copies of iris.
3. Per run, starts in turn oipserve, the floors and MLServer in each configuration tried
   (parallel workers at its default of 1 and at 0; adaptive batching off and on), each pinned to
   core 0 with every process it starts, and loads it from core 1 with the same request bytes:
   wrk (HTTP/1.1) for REST, h2load (h2c, a prebuilt gRPC frame) for gRPC. Before loading, one
   request per case is checked with a plain client (status, output name; gRPC status too, which
   h2load cannot see). Floors: a bare ASGI app on uvicorn + httptools + uvloop and a bare gRPC
   handler on oipserve's gRPC stack (zttp + uvloop), each answering oipserve's own response bytes
   without looking at the request.
   For the RandomForest the floor is ``predict`` in a loop, pinned the same way.
4. Cold start (spawn to ``/v2/health/ready`` = 200) and idle memory (RSS and PSS summed over the
   whole process tree, from /proc) with 1 and 10 models, median of several starts.
5. Prints the ratio table (medians over the runs) and, with ``--write-docs``, writes it with every
   measurement, the machine and the versions to ``docs/performance-compare.md``.

Needs two cores, wrk and h2load (``apt-get install wrk nghttp2-client``).
"""

from __future__ import annotations

import argparse
import functools
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import grpc
import numpy as np

from benchmarks._harness import ROOT, free_port, run_h2load, run_wrk, taskset
from benchmarks.compare import mlserver_env
from benchmarks.compare.cases import (
    CASES,
    FLOOR_ASGI,
    FLOOR_GRPC,
    FLOOR_PAYLOADS,
    MLSERVER_BATCHING_PAYLOADS,
    MLSERVER_CONFIGS,
    MLSERVER_PAYLOADS,
    OIPSERVE,
    OIPSERVE_PAYLOADS,
    REPOSITORIES,
    START_SERVERS,
)
from benchmarks.compare.payloads import GRPC_HEADERS, GRPC_PATH, Payload, forest_matrix, payloads
from benchmarks.compare.report import Results, Sample, StartSample, machine, ratio_table, render
from benchmarks.compare.servers import Running, ServerSpec, log_tail, memory, running
from oipserve.protocol.messages import pb
from oipserve.transport.grpc.http2 import STREAMS_PER_CONNECTION

HERE = Path(__file__).resolve().parent
DOCS = ROOT / "docs" / "performance-compare.md"
SERVER_CORE, LOAD_CORE = "0", "1"
MAX_MESSAGE = 64 * 1024 * 1024


@dataclass(frozen=True)
class Settings:
    runs: int
    duration_s: int
    warm_up_s: int
    starts: int  # cold starts per server and repository
    settle_s: float  # idle time after ready before memory is read


class CheckFailed(RuntimeError):
    pass


@dataclass(frozen=True)
class Captured:
    body: bytes
    headers: tuple[str, ...]  # "name: value", for the ASGI floor to send back


def check(server: Running, payload: Payload) -> Captured:
    """Send ``payload`` once with a plain client; the response, if it is a success."""
    if payload.transport == "rest":
        connection = http.client.HTTPConnection("127.0.0.1", server.http_port, timeout=60)
        try:
            connection.request(
                "POST", f"/v2/models/{payload.model}/infer", payload.body, payload.headers
            )
            response = connection.getresponse()
            body = response.read()
            headers = response.getheaders()
        finally:
            connection.close()
        if response.status != 200 or f'"{payload.expect}"'.encode() not in body[:4096]:
            raise CheckFailed(f"HTTP {response.status}: {body[:300]!r}")
        kept = ("content-type", "inference-header-content-length")
        return Captured(body, tuple(f"{k}: {v}" for k, v in headers if k.lower() in kept))
    options = [("grpc.max_receive_message_length", MAX_MESSAGE)]
    with grpc.insecure_channel(server.grpc_target, options=options) as channel:
        call = channel.unary_unary(GRPC_PATH, None, None)  # bytes in, bytes out
        try:
            raw: bytes = call(payload.grpc_message, timeout=60)
        except grpc.RpcError as exc:
            raise CheckFailed(f"gRPC {exc}") from exc
    message = pb.ModelInferResponse.FromString(raw)
    if not any(output.name == payload.expect for output in message.outputs):
        raise CheckFailed(f"gRPC response without output {payload.expect!r}: {message}")
    return Captured(raw, ())


class Bench:
    def __init__(
        self,
        settings: Settings,
        work: Path,
        mlserver_python: Path | None,
        only: set[str] | None = None,
    ) -> None:
        self.only = set(OIPSERVE_PAYLOADS) if only is None else only
        self.settings = settings
        self.work = work
        self.mlserver_python = mlserver_python
        self.payloads = payloads()
        self.results = Results(settings.runs, settings.duration_s)
        self.captured: dict[str, Captured] = {}
        self.starts = 0

    # ---- servers ---------------------------------------------------------------------------

    def oipserve(self, repository: Path) -> ServerSpec:
        def command(http_port: int, grpc_port: int) -> list[str]:
            return [
                *(sys.executable, "-m", "oipserve", "serve", str(repository)),
                *("--host", "127.0.0.1", "--http-port", str(http_port)),
                *("--grpc-port", str(grpc_port), "--log-level", "warning"),
            ]

        return ServerSpec(OIPSERVE, command)

    def mlserver(self, label: str, variant: str) -> ServerSpec:
        workers, batching = MLSERVER_CONFIGS[label]
        if batching and variant == "main":
            variant = "main-batching"
        repository = self.work / "mlserver" / variant
        cwd = self.work / "mlserver-cwd"  # where it makes .envs and .metrics
        cwd.mkdir(exist_ok=True)

        def command(http_port: int, grpc_port: int) -> list[str]:
            env = [
                "MLSERVER_HOST=127.0.0.1",
                f"MLSERVER_HTTP_PORT={http_port}",
                f"MLSERVER_GRPC_PORT={grpc_port}",
                f"MLSERVER_METRICS_PORT={free_port()}",
            ]
            if workers is not None:
                env.append(f"MLSERVER_PARALLEL_WORKERS={workers}")
            return ["env", *env, str(mlserver_env.mlserver()), "start", str(repository)]

        return ServerSpec(label, command, cwd=cwd)

    def floor(self, label: str, payload: str) -> ServerSpec:
        captured = self.captured[payload]
        body = self.work / "floor" / f"{payload}.bin"
        body.parent.mkdir(exist_ok=True)
        body.write_bytes(captured.body)
        script = HERE / ("floor_http.py" if label == FLOOR_ASGI else "floor_grpc.py")

        def command(http_port: int, grpc_port: int) -> list[str]:
            if label == FLOOR_ASGI:
                return [sys.executable, str(script), str(http_port), str(body), *captured.headers]
            return [sys.executable, str(script), str(grpc_port), str(body)]

        return ServerSpec(label, command, http=label == FLOOR_ASGI, grpc=label == FLOOR_GRPC)

    @contextmanager
    def serving(self, spec: ServerSpec, what: str) -> Iterator[Running | None]:
        """Run ``spec``; yields None (and records the failure) when it does not start."""
        self.starts += 1
        log = self.work / "logs" / f"{self.starts:03d}-{spec.label}-{what}.log"
        with ExitStack() as stack:
            server: Running | None = None
            try:
                server = stack.enter_context(running(spec, log, SERVER_CORE))
            except Exception as exc:
                self.fail(f"{spec.label} ({what}): {type(exc).__name__}: {exc}")
            yield server

    def fail(self, message: str) -> None:
        print(f"  FAILED {message}", file=sys.stderr)
        self.results.failures.append(" ".join(message.split())[:2000])

    # ---- load ------------------------------------------------------------------------------

    def load(self, server: Running, payload: Payload, concurrency: int, seconds: int) -> Sample:
        if payload.transport == "rest":
            url = f"{server.url}/v2/models/{payload.model}/infer"
            rest = run_wrk(
                url, payload.body, concurrency, seconds, headers=payload.headers, core=LOAD_CORE
            )
            return Sample(rest.requests_per_s, rest.errors)
        url = f"http://{server.grpc_target}{GRPC_PATH}"
        h2 = run_h2load(
            url,
            payload.body,
            concurrency,
            seconds,
            headers=GRPC_HEADERS,
            core=LOAD_CORE,
            max_requests_per_connection=STREAMS_PER_CONNECTION,
        )
        return Sample(h2.requests_per_s, h2.errors)

    def run_payloads(self, server: Running, label: str, names: tuple[str, ...]) -> None:
        for name in names:
            payload = self.payloads[name]
            cases = [case for case in CASES.values() if case.payload == name]
            try:
                captured = check(server, payload)
                if label == OIPSERVE:
                    self.captured.setdefault(name, captured)
                self.load(
                    server, payload, max(c.concurrency for c in cases), self.settings.warm_up_s
                )
                for case in cases:
                    sample = self.load(server, payload, case.concurrency, self.settings.duration_s)
                    self.results.load[(label, case.key)].append(sample)
                    errors = f", {sample.errors} errors" if sample.errors else ""
                    print(
                        f"  {label:18} {case.key:14} {sample.requests_per_s:>10,.0f} req/s{errors}",
                        file=sys.stderr,
                    )
            except Exception as exc:
                detail = exc.stderr if isinstance(exc, subprocess.CalledProcessError) else exc
                self.fail(f"{label} {name}: {type(exc).__name__}: {detail}")
                if server.process.poll() is not None:
                    self.fail(f"{label} exited: {log_tail(server.log)}")
                    return

    def one_run(self, run: int) -> None:
        print(f"run {run + 1}/{self.settings.runs}", file=sys.stderr)
        with self.serving(self.oipserve(self.work / "oipserve" / "main"), "load") as server:
            if server is not None:
                self.run_payloads(server, OIPSERVE, self._only(OIPSERVE_PAYLOADS))
        for label, names in FLOOR_PAYLOADS.items():
            for name in self._only(names):
                if name not in self.captured:
                    continue
                with self.serving(self.floor(label, name), name) as server:
                    if server is not None:
                        self.run_payloads(server, label, (name,))
        if self.mlserver_python is not None:
            for label, (_, batching) in MLSERVER_CONFIGS.items():
                names = self._only(MLSERVER_BATCHING_PAYLOADS if batching else MLSERVER_PAYLOADS)
                if not names:
                    continue
                with self.serving(self.mlserver(label, "main"), "load") as server:
                    if server is not None:
                        self.run_payloads(server, label, names)
        if self.only & {"forest-json", "forest-binary"}:
            self.raw_predict()

    def _only(self, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(name for name in names if name in self.only)

    def raw_predict(self) -> None:
        model = self.work / "oipserve" / "main" / "forest" / "1" / "model.joblib"
        rows = self.work / "forest-rows.npy"
        np.save(rows, forest_matrix().astype(np.float32))
        command = [
            *taskset(SERVER_CORE),
            sys.executable,
            str(HERE / "rawpredict.py"),
            str(model),
            str(rows),
            str(self.settings.duration_s),
        ]
        try:
            out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        except subprocess.CalledProcessError as exc:
            self.fail(f"raw predict: {exc.stderr}")
            return
        rows_per_s = float(json.loads(out)["rows_per_s"])
        self.results.raw_predict.append(rows_per_s)
        print(f"  {'raw-predict':18} {'forest':14} {rows_per_s:>10,.0f} rows/s", file=sys.stderr)

    # ---- cold start and memory -------------------------------------------------------------

    def start_and_memory(self) -> None:
        print("cold start and idle memory", file=sys.stderr)
        specs: dict[str, Callable[[str], ServerSpec]] = {
            OIPSERVE: lambda variant: self.oipserve(self.work / "oipserve" / variant)
        }
        if self.mlserver_python is not None:
            for label in START_SERVERS:
                if label in MLSERVER_CONFIGS:
                    specs[label] = functools.partial(self.mlserver, label)
        for _ in range(self.settings.starts):
            for label, make in specs.items():  # interleaved, so that noise spreads over all
                for variant in REPOSITORIES:
                    with self.serving(make(variant), f"start-{variant}") as server:
                        if server is None:
                            continue
                        time.sleep(self.settings.settle_s)
                        used = memory(server.process.pid)
                    sample = StartSample(server.ready_s, used.processes, used.rss_mib, used.pss_mib)
                    self.results.starts[(label, variant)].append(sample)
                    print(
                        f"  {label:18} {variant:4} ready {sample.ready_s:5.2f} s, "
                        f"RSS {sample.rss_mib:6.0f} MiB, PSS {sample.pss_mib:6.0f} MiB, "
                        f"{sample.processes} processes",
                        file=sys.stderr,
                    )


def write_models(work: Path, mlserver_python: Path | None) -> None:
    script = str(HERE / "models.py")
    subprocess.run([sys.executable, script, "oipserve", str(work / "oipserve")], check=True)
    if mlserver_python is not None:
        subprocess.run(
            [str(mlserver_python), script, "mlserver", str(work / "mlserver")], check=True
        )


def _pin_driver() -> None:
    """This script (and so wrk and h2load) on the load core, off the server's core."""
    if not hasattr(os, "sched_setaffinity"):
        return
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("needs two cores: the server on core 0, the load tool on core 1")
    os.sched_setaffinity(0, {int(LOAD_CORE)})


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in ("oipserve", "uvicorn", "grpcio", "uvloop", "scikit-learn", "numpy"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="short runs, for a smoke test")
    parser.add_argument("--runs", type=int, help="runs per case (default 3; --quick: 1)")
    parser.add_argument("--duration", type=int, help="seconds per load run (default 5; --quick: 1)")
    parser.add_argument(
        "--write-docs", action="store_true", help=f"write the tables to {DOCS.relative_to(ROOT)}"
    )
    parser.add_argument("--no-mlserver", action="store_true", help="oipserve and floors only")
    parser.add_argument("--keep", action="store_true", help="keep the work folder (models, logs)")
    parser.add_argument(
        "--payloads",
        nargs="+",
        choices=OIPSERVE_PAYLOADS,
        help="only these payloads (default: all); e.g. iris-json iris-grpc",
    )
    parser.add_argument(
        "--no-start", action="store_true", help="skip the cold-start and idle-memory part"
    )
    args = parser.parse_args(argv)
    settings = Settings(
        runs=args.runs or (1 if args.quick else 3),
        duration_s=args.duration or (1 if args.quick else 5),
        warm_up_s=1 if args.quick else 2,
        starts=2 if args.quick else 5,
        settle_s=1.0 if args.quick else 3.0,
    )
    for tool in ("wrk", "h2load", "taskset"):
        if shutil.which(tool) is None:
            raise SystemExit(f"{tool} not found (apt-get install wrk nghttp2-client util-linux)")
    _pin_driver()
    mlserver_python = None if args.no_mlserver else mlserver_env.ensure()
    work = Path(tempfile.mkdtemp(prefix="oipserve-compare-"))
    print(f"work folder {work}", file=sys.stderr)
    bench = Bench(settings, work, mlserver_python, set(args.payloads or OIPSERVE_PAYLOADS))
    try:
        write_models(work, mlserver_python)
        for run in range(settings.runs):
            bench.one_run(run)
        if not args.no_start:
            bench.start_and_memory()
    finally:
        if args.keep or bench.results.failures:
            print(f"kept {work} (models, server logs)", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
    results = bench.results
    print(ratio_table(results))
    for failure in results.failures:
        print(f"failed: {failure}")
    if args.write_docs:
        theirs = mlserver_env.versions(mlserver_python) if mlserver_python else {}
        command = "python -m benchmarks.compare " + " ".join(argv or sys.argv[1:])
        note = (
            "Smoke test (--quick): one run of 1 s per case; too short to quote."
            if args.quick
            else ""
        )
        text = render(results, machine(_versions(), theirs), command.strip(), note)
        DOCS.write_text(text)
        print(f"wrote {DOCS.relative_to(ROOT)}", file=sys.stderr)
