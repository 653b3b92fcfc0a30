"""Per runtime: the server's throughput against the framework's own ``predict`` in a loop.

    python -m benchmarks.runtimes_bench [--duration 3] [--concurrency 8] [--rows 1 1000]
                                        [--runtimes sklearn xgboost ...]

Writes the iris classifier in every format (``examples/make_models.py --all-formats``) into a
temporary repository, each folder without a config (scikit-learn gets a small ``model.toml``
declaring an ``[-1, 4]`` input so that it takes row batches), then for each runtime and each row
count (1 and 1,000 rows, iris rows repeated):

* **raw**: the framework's own call in a loop (``Booster.inplace_predict``, ``Booster.predict``,
  ``InferenceSession.run``, the torch module under ``inference_mode``, ``model.predict``), in a
  process pinned to core 0;
* **runtime**: oipserve's runtime adapter, ``Model.infer`` on one request, same process and core;
* **server**: ``oipserve serve`` pinned to core 0, driven by wrk pinned to core 1 with binary
  requests (``Inference-Header-Content-Length`` + ``binary_data_size``, binary outputs).

Each measurement runs ``--duration`` seconds. It prints a markdown table; ``overhead`` is the
server's time per request less the raw call's, ``server/raw`` the throughput ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._harness import ROOT, oipserve, run_wrk, taskset
from benchmarks.binary_bench import binary_case, check


def _load_make_models() -> Any:
    """``examples/make_models.py`` (not a package), for its iris data and model writers."""
    path = ROOT / "examples" / "make_models.py"
    spec = importlib.util.spec_from_file_location("make_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


make_models = _load_make_models()

SERVER_CORE = "0"
CLIENT_CORE = "1"


@dataclass(frozen=True)
class Case:
    runtime: str
    folder: str
    filename: str
    backend: str
    input_name: str
    datatype: str

    @property
    def outputs(self) -> tuple[str, ...]:
        """What each request names: ``predict`` alone for the tabular runtimes (a request naming
        none would also get ``predict_proba``), so that the server does what the raw call does."""
        return ("predict",) if self.runtime in {"sklearn", "xgboost", "lightgbm"} else ()


CASES = [
    Case("sklearn", "iris-sklearn", "model.joblib", "sklearn", "input-0", "FP64"),
    Case("xgboost", "iris-xgboost", "model.ubj", "xgboost", "input-0", "FP32"),
    Case("lightgbm", "iris-lightgbm", "model.txt", "lightgbm", "input-0", "FP64"),
    Case("onnxruntime", "iris-onnx", "model.onnx", "onnxruntime", "X", "FP32"),
    Case("torch.export", "iris-torch", "model.pt2", "pytorch", "x", "FP32"),
    Case("torchscript", "iris-torchscript", "model.pt", "pytorch", "input-0", "FP32"),
]

SKLEARN_CONFIG = """\
[[input]]
name = "input-0"
data_type = "TYPE_FP64"
dims = [-1, 4]
"""

DTYPES = {"FP32": np.float32, "FP64": np.float64}


def rows_of(count: int, datatype: str) -> np.ndarray:
    features, _ = make_models.iris()
    tiled = np.resize(features, (count, features.shape[1]))
    return np.ascontiguousarray(tiled, dtype=DTYPES[datatype])


# -- in-process measurements (run in a child pinned to the server's core) -----------------------


def raw_call(case: Case, path: Path, x: np.ndarray) -> Callable[[], object]:
    """The framework's own predict on ``x``, as a user of the framework would call it."""
    if case.runtime == "sklearn":
        import joblib

        model = joblib.load(path)
        return lambda: model.predict(x)
    if case.runtime == "xgboost":
        import xgboost

        booster = xgboost.Booster()
        booster.load_model(bytearray(path.read_bytes()))
        return lambda: booster.inplace_predict(x)
    if case.runtime == "lightgbm":
        import lightgbm

        lgb_booster = lightgbm.Booster(model_file=str(path))
        return lambda: lgb_booster.predict(x)
    if case.runtime == "onnxruntime":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        return lambda: session.run(None, {case.input_name: x})
    import warnings

    import torch

    if case.filename.endswith(".pt2"):
        module = torch.export.load(str(path)).module()
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            load: Any = torch.jit.load  # untyped in PyTorch's stubs
            module = load(str(path))
    tensor = torch.from_numpy(x)

    def run() -> object:
        with torch.inference_mode():
            return module(tensor)

    return run


def runtime_call(case: Case, path: Path, x: np.ndarray) -> Callable[[], object]:
    """oipserve's runtime adapter on one request holding ``x``."""
    from oipserve.model import InferRequest, LoadContext
    from oipserve.repository.config import parse_toml
    from oipserve.runtimes import instantiate

    config = parse_toml(SKLEARN_CONFIG if case.runtime == "sklearn" else "")
    ctx = LoadContext(case.folder, "1", path.parent, config, path)
    model = instantiate(case.backend, ctx)
    model.load(ctx)
    request = InferRequest({case.input_name: x}, outputs=case.outputs)
    return lambda: model.infer([request])


def calls_per_s(call: Callable[[], object], duration: float) -> float:
    for _ in range(3):
        call()
    count, start = 0, time.perf_counter()
    deadline = start + duration
    while True:
        call()
        count += 1
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - start)


def child(argv: list[str]) -> None:
    """``--child REPOSITORY RUNTIME ROWS DURATION``: print raw and runtime calls/s as JSON."""
    repository, runtime, rows, duration = Path(argv[0]), argv[1], int(argv[2]), float(argv[3])
    case = next(c for c in CASES if c.runtime == runtime)
    path = repository / case.folder / case.filename
    x = rows_of(rows, case.datatype)
    raw = calls_per_s(raw_call(case, path, x), duration)
    adapter = calls_per_s(runtime_call(case, path, x), duration)
    print(json.dumps({"raw": raw, "runtime": adapter}))


def in_process(repository: Path, case: Case, rows: int, duration: float) -> dict[str, float]:
    out = subprocess.run(
        [
            *taskset(SERVER_CORE),
            sys.executable,
            "-m",
            "benchmarks.runtimes_bench",
            "--child",
            str(repository),
            case.runtime,
            str(rows),
            str(duration),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    result: dict[str, float] = json.loads(out.strip().splitlines()[-1])
    return result


# -- the whole run -------------------------------------------------------------------------------


def build(repository: Path, wanted: list[str]) -> list[Case]:
    with contextlib.redirect_stdout(sys.stderr):
        written = {p.parent.name for p in make_models.make_all_formats(repository)}
    (repository / "iris-sklearn" / "model.toml").write_text(SKLEARN_CONFIG)
    return [c for c in CASES if c.folder in written and c.runtime in wanted]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per measurement")
    parser.add_argument("--concurrency", type=int, default=8, help="wrk connections")
    parser.add_argument("--rows", type=int, nargs="+", default=[1, 1000])
    parser.add_argument(
        "--runtimes", nargs="+", default=[c.runtime for c in CASES], help="which runtimes"
    )
    args = parser.parse_args()
    lines = [
        f"### Runtimes: server (core {SERVER_CORE}, wrk -c {args.concurrency} on core "
        f"{CLIENT_CORE}, binary) vs raw predict (core {SERVER_CORE})",
        "",
        "| runtime | rows | raw calls/s | runtime.infer calls/s | server req/s | server p50 ms "
        "| overhead µs/req | server/raw |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    with tempfile.TemporaryDirectory(prefix="oipserve-runtimes-") as tmp:
        repository = Path(tmp)
        cases = build(repository, args.runtimes)
        # in-process first: an idle server's framework thread pools may spin on the same core
        local = {
            (case.runtime, rows): in_process(repository, case, rows, args.duration)
            for case in cases
            for rows in args.rows
        }
        with oipserve(repository, core=SERVER_CORE) as url:
            for case in cases:
                for rows in args.rows:
                    raw, adapter = (
                        local[case.runtime, rows]["raw"],
                        local[case.runtime, rows]["runtime"],
                    )
                    body, headers = binary_case(
                        [(case.input_name, rows_of(rows, case.datatype), case.datatype)],
                        case.outputs,
                    )
                    target = f"{url}/v2/models/{case.folder}/infer"
                    check(target, body, headers)
                    served = run_wrk(
                        target,
                        body,
                        args.concurrency,
                        max(1, round(args.duration)),
                        headers=headers,
                        core=CLIENT_CORE,
                    )
                    overhead_us = (1 / served.requests_per_s - 1 / raw) * 1e6
                    lines.append(
                        f"| {case.runtime} | {rows:,} | {raw:,.0f} | {adapter:,.0f} | "
                        f"{served.requests_per_s:,.0f} | {served.p50_ms:.2f} | "
                        f"{overhead_us:,.0f} | {served.requests_per_s / raw:.2f} |"
                        + (f" ({served.errors} errors)" if served.errors else "")
                    )
                    print(lines[-1], file=sys.stderr, flush=True)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
