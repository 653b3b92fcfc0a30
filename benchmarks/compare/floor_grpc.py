"""The gRPC floor: a bare gRPC handler on oipserve's stack (zttp HTTP/2, uvloop), fixed response.

    python floor_grpc.py PORT RESPONSE_FILE

``inference.GRPCInferenceService/ModelInfer`` answers every call with RESPONSE_FILE's bytes (a
serialized ModelInferResponse), neither parsing the request nor building the response, in a task
per call as oipserve's server runs calls: the least any server on this gRPC stack can do per call.
(Before issue 12 the floor was a bare grpc.aio handler; ``benchmarks/grpc_floor`` compares the
stacks.) Like oipserve's server it closes a connection with ``GOAWAY`` after
``STREAMS_PER_CONNECTION`` calls, which zttp needs (see ``transport/grpc/http2.py``).
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import cast

import uvloop
import zttp

from oipserve.transport.grpc.http2 import STREAMS_PER_CONNECTION

_HEADERS = [(b"content-type", b"application/grpc")]
_TRAILERS = [(b"grpc-status", b"0")]


class FloorProtocol(asyncio.Protocol):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer
        self.conn = zttp.Connection(zttp.SERVER, protocol=zttp.HTTP2)
        self.transport: asyncio.Transport | None = None
        self.calls = 0
        self.tasks: set[asyncio.Task[None]] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass
        self.conn.initiate_connection()
        self.flush()

    def data_received(self, data: bytes) -> None:
        self.conn.receive_data(data)
        loop = asyncio.get_running_loop()
        while (event := self.conn.next_event()) is not zttp.NEED_DATA:
            if isinstance(event, zttp.EndOfMessage):
                task = loop.create_task(self.call(event.stream_id))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
                self.calls += 1
                if self.calls == STREAMS_PER_CONNECTION:
                    self.conn.close(0, event.stream_id)
        self.flush()

    async def call(self, stream_id: int) -> None:
        stream = self.conn.stream(stream_id)
        stream.send_response(200, _HEADERS)
        stream.send_data(self.answer)
        stream.end_message(_TRAILERS)
        self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)


async def serve(port: int, response: bytes) -> None:
    answer = b"\x00" + len(response).to_bytes(4, "big") + response
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: FloorProtocol(answer), "127.0.0.1", port)
    await server.serve_forever()


def main(argv: list[str]) -> None:
    port, response_file = argv[1:]
    uvloop.run(serve(int(port), Path(response_file).read_bytes()))


if __name__ == "__main__":
    main(sys.argv)
