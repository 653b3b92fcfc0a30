"""What is measured: the load cases, the servers that run them, and the rows of the ratio table."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Case:
    """One load run: ``payload`` (see payloads.py) at ``concurrency`` requests in flight."""

    key: str
    title: str
    payload: str
    concurrency: int


def _cases() -> list[Case]:
    found = [
        Case(f"iris-rest-c{c}", f"iris 1 row, REST, c={c}", "iris-json", c) for c in (1, 8, 32)
    ]
    found += [
        Case(f"iris-grpc-c{c}", f"iris 1 row, gRPC, c={c}", "iris-grpc", c) for c in (1, 8, 32)
    ]
    found += [
        Case("echo-json", "echo 1000x20 FP32, REST JSON, c=8", "echo-json", 8),
        Case("echo-binary", "echo 1000x20 FP32, REST binary, c=8", "echo-binary", 8),
        Case("echo-grpc", "echo 1000x20 FP32, gRPC raw, c=8", "echo-grpc", 8),
        Case("forest-json", "RandomForest 1,000 rows, REST JSON, c=4", "forest-json", 4),
        Case("forest-binary", "RandomForest 1,000 rows, REST binary, c=4", "forest-binary", 4),
    ]
    return found


CASES: dict[str, Case] = {case.key: case for case in _cases()}

OIPSERVE = "oipserve"
MLSERVER_DEFAULT = "mlserver"
FLOOR_ASGI = "floor-asgi"
FLOOR_GRPC = "floor-grpc"
RAW_PREDICT = "raw-predict"

#: MLServer configurations tried: label → (parallel_workers or None for its default, batching on)
MLSERVER_CONFIGS: dict[str, tuple[int | None, bool]] = {
    "mlserver": (None, False),
    "mlserver-w0": (0, False),
    "mlserver-batch": (None, True),
    "mlserver-w0-batch": (0, True),
}

DESCRIPTIONS = {
    OIPSERVE: "oipserve serve (its defaults, --log-level warning)",
    FLOOR_ASGI: "bare ASGI handler on uvicorn + httptools + uvloop, fixed body (oipserve's)",
    FLOOR_GRPC: "bare gRPC handler on oipserve's stack (zttp + uvloop), fixed response bytes",
    RAW_PREDICT: "RandomForest predict() on the request's 1,000 rows in a loop, no server",
    "mlserver": "MLServer 1.7.1 defaults (parallel_workers=1), adaptive batching off",
    "mlserver-w0": "MLServer 1.7.1, parallel_workers=0 (inference in the server process)",
    "mlserver-batch": "MLServer 1.7.1 defaults, adaptive batching on for iris (64, 200 µs)",
    "mlserver-w0-batch": "MLServer 1.7.1, parallel_workers=0, adaptive batching on for iris",
}

#: payloads each server runs (MLServer has no binary extension; batching only changes iris)
OIPSERVE_PAYLOADS = (
    "iris-json",
    "iris-grpc",
    "echo-json",
    "echo-binary",
    "echo-grpc",
    "forest-json",
    "forest-binary",
)
MLSERVER_PAYLOADS = ("iris-json", "iris-grpc", "echo-json", "echo-grpc", "forest-json")
MLSERVER_BATCHING_PAYLOADS = ("iris-json", "iris-grpc")
FLOOR_PAYLOADS = {
    FLOOR_ASGI: ("iris-json", "echo-json", "echo-binary"),
    FLOOR_GRPC: ("iris-grpc", "echo-grpc"),
}


@dataclass(frozen=True)
class Row:
    """A line of the ratio table: oipserve's ``case`` against MLServer's and a floor's."""

    case: str
    mlserver_case: str
    floor: str
    at_least_vs_mlserver: float | None = None
    at_least_vs_floor: float | None = None


#: the targets are issue 12's (speed, second round)
ROWS = [
    Row("iris-rest-c1", "iris-rest-c1", FLOOR_ASGI),
    Row("iris-rest-c8", "iris-rest-c8", FLOOR_ASGI),
    Row("iris-rest-c32", "iris-rest-c32", FLOOR_ASGI, 8.0, 0.40),
    Row("iris-grpc-c1", "iris-grpc-c1", FLOOR_GRPC),
    Row("iris-grpc-c8", "iris-grpc-c8", FLOOR_GRPC),
    Row("iris-grpc-c32", "iris-grpc-c32", FLOOR_GRPC, 4.0),
    Row("echo-json", "echo-json", FLOOR_ASGI, 3.0),
    Row("echo-binary", "echo-json", FLOOR_ASGI, 10.0),
    Row("echo-grpc", "echo-grpc", FLOOR_GRPC),
    Row("forest-binary", "forest-json", RAW_PREDICT, None, 0.95),
    Row("forest-json", "forest-json", RAW_PREDICT),
]

#: cold start and idle memory: server label → repository variant ("one" model, "ten" models)
START_SERVERS = (OIPSERVE, "mlserver", "mlserver-w0")
REPOSITORIES = ("one", "ten")
#: at most this fraction of MLServer's cold start and idle RSS, with one model
AT_MOST_VS_MLSERVER = 0.5
