"""The gRPC floor: a bare grpc.aio handler (on uvloop) that returns a fixed ModelInferResponse.

    python floor_grpc.py PORT RESPONSE_FILE

``inference.GRPCInferenceService/ModelInfer`` answers every call with RESPONSE_FILE's bytes (a
serialized ModelInferResponse), neither parsing the request nor building the response: the least any
server on this gRPC stack can do per call.
"""

from __future__ import annotations

import sys
from pathlib import Path

import grpc
import uvloop

MAX_MESSAGE = 64 * 1024 * 1024


async def serve(port: int, response: bytes) -> None:
    async def model_infer(request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]) -> bytes:
        return response

    handler = grpc.method_handlers_generic_handler(
        "inference.GRPCInferenceService",
        {"ModelInfer": grpc.unary_unary_rpc_method_handler(model_infer)},
    )
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ]
    )
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    await server.wait_for_termination()


def main(argv: list[str]) -> None:
    port, response_file = argv[1:]
    uvloop.run(serve(int(port), Path(response_file).read_bytes()))


if __name__ == "__main__":
    main(sys.argv)
