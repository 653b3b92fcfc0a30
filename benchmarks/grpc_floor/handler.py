"""The floor handler every candidate runs: decode the request proto, answer a fixed response.

What a candidate adds on top of this is its own cost per call: HTTP/2 framing, the gRPC envelope,
status trailers and the hop into Python.
"""

from __future__ import annotations

import numpy as np

from oipserve.protocol.messages import pb

SERVICE = "inference.GRPCInferenceService"
METHOD = f"/{SERVICE}/ModelInfer"
IRIS_ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype="<f4")

_RESPONSE = pb.ModelInferResponse(
    model_name="iris",
    model_version="1",
    outputs=[pb.ModelInferResponse.InferOutputTensor(name="predict", datatype="INT64", shape=[1])],
    raw_output_contents=[np.array([0], dtype="<i8").tobytes()],
)


def iris_request() -> pb.ModelInferRequest:
    """The request of the load: an iris-like 1-row FP32 input as raw contents."""
    return pb.ModelInferRequest(
        model_name="iris",
        inputs=[
            pb.ModelInferRequest.InferInputTensor(name="input-0", datatype="FP32", shape=[1, 4])
        ],
        raw_input_contents=[IRIS_ROW.tobytes()],
    )


def model_infer(request: pb.ModelInferRequest) -> pb.ModelInferResponse:
    """The floor handler on messages (for stacks that (de)serialize themselves)."""
    if request.model_name != "iris":
        raise ValueError(request.model_name)
    return _RESPONSE


def model_infer_bytes(payload: bytes) -> bytes:
    """The floor handler on serialized messages: parse, check, serialize the fixed response."""
    return model_infer(pb.ModelInferRequest.FromString(payload)).SerializeToString()


def frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message (uncompressed)."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def unframe(body: bytes) -> bytes:
    """The message of a one-message gRPC body (uncompressed)."""
    if len(body) < 5 or body[0] != 0:
        raise ValueError("not an uncompressed gRPC message")
    length = int.from_bytes(body[1:5], "big")
    return body[5 : 5 + length]
