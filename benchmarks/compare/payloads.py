"""The requests every server gets, byte for byte the same: JSON, binary-extension REST and gRPC."""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field

import numpy as np

from oipserve.protocol.messages import pb

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
ECHO_SHAPE = (1000, 20)
FOREST_ROWS = 1000
FOREST_FEATURES = 20

JSON_HEADERS = {"Content-Type": "application/json"}
GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}
GRPC_PATH = "/inference.GRPCInferenceService/ModelInfer"


@dataclass(frozen=True)
class Payload:
    """One request: ``body`` goes to ``/v2/models/{model}/infer`` (REST) or ModelInfer (gRPC)."""

    name: str
    model: str
    transport: str  # "rest" or "grpc"
    body: bytes
    expect: str  # an output name the response must hold
    rows: int = 1
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def grpc_message(self) -> bytes:
        """The serialized ModelInferRequest (the body without gRPC's 5-byte prefix)."""
        return self.body[5:]


def decimals(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values with three decimals (short in JSON, as a client would write them), as float64."""
    rng = np.random.default_rng(seed)
    return np.asarray(rng.integers(-5000, 5000, size=shape) / 1000, dtype=np.float64)


def echo_matrix() -> np.ndarray:
    return decimals(ECHO_SHAPE, seed=0)


def forest_matrix() -> np.ndarray:
    return decimals((FOREST_ROWS, FOREST_FEATURES), seed=1)


def json_body(input_name: str, values: np.ndarray) -> bytes:
    tensor = {
        "name": input_name,
        "shape": list(values.shape),
        "datatype": "FP32",
        "data": values.ravel().tolist(),
    }
    return json.dumps({"inputs": [tensor]}, separators=(",", ":")).encode()


def binary_body(input_name: str, values: np.ndarray, output: str) -> tuple[bytes, dict[str, str]]:
    """Triton's binary extension: a JSON header, then the raw little-endian FP32 bytes."""
    raw = values.astype("<f4").tobytes()
    header = {
        "inputs": [
            {
                "name": input_name,
                "shape": list(values.shape),
                "datatype": "FP32",
                "parameters": {"binary_data_size": len(raw)},
            }
        ],
        "outputs": [{"name": output, "parameters": {"binary_data": True}}],
    }
    encoded = json.dumps(header, separators=(",", ":")).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(encoded)),
    }
    return encoded + raw, headers


def grpc_body(model: str, input_name: str, values: np.ndarray) -> bytes:
    """A gRPC request frame: flag byte, big-endian length, then the ModelInferRequest."""
    tensor = pb.ModelInferRequest.InferInputTensor(
        name=input_name, datatype="FP32", shape=list(values.shape)
    )
    request = pb.ModelInferRequest(
        model_name=model, inputs=[tensor], raw_input_contents=[values.astype("<f4").tobytes()]
    )
    message = request.SerializeToString()
    return b"\x00" + struct.pack(">I", len(message)) + message


def payloads() -> dict[str, Payload]:
    iris = np.asarray([IRIS_ROW], dtype=np.float64)
    echo, forest = echo_matrix(), forest_matrix()
    echo_binary, echo_binary_headers = binary_body("INPUT0", echo, "OUTPUT0")
    forest_binary, forest_binary_headers = binary_body("input-0", forest, "predict")
    found = [
        Payload(
            "iris-json", "iris", "rest", json_body("input-0", iris), "predict", 1, JSON_HEADERS
        ),
        Payload("iris-grpc", "iris", "grpc", grpc_body("iris", "input-0", iris), "predict", 1),
        Payload(
            "echo-json", "identity", "rest", json_body("INPUT0", echo), "OUTPUT0", 1, JSON_HEADERS
        ),
        Payload("echo-binary", "identity", "rest", echo_binary, "OUTPUT0", 1, echo_binary_headers),
        Payload("echo-grpc", "identity", "grpc", grpc_body("identity", "INPUT0", echo), "OUTPUT0"),
        Payload(
            "forest-json",
            "forest",
            "rest",
            json_body("input-0", forest),
            "predict",
            FOREST_ROWS,
            JSON_HEADERS,
        ),
        Payload(
            "forest-binary",
            "forest",
            "rest",
            forest_binary,
            "predict",
            FOREST_ROWS,
            forest_binary_headers,
        ),
    ]
    return {p.name: p for p in found}
