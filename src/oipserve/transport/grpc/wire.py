"""The gRPC-over-HTTP/2 wire format: message framing, status trailers, timeouts, metadata.

Pure functions, no I/O, after gRPC's ``doc/PROTOCOL-HTTP2.md`` (grpc/grpc): a message is a 1-byte
compressed flag, a 4-byte big-endian length and the payload; the status travels in the
``grpc-status`` / ``grpc-message`` trailers (``grpc-message`` percent-encoded); ``grpc-timeout`` is
at most 8 digits and a unit; binary metadata (keys ending in ``-bin``) is base64 on the wire.
"""

from __future__ import annotations

import base64
import zlib
from typing import Final
from urllib.parse import unquote_to_bytes

import grpc

from oipserve.errors import InternalError, InvalidArgument, Unsupported

PREFIX_BYTES: Final = 5
CONTENT_TYPE: Final = b"application/grpc"
ACCEPT_ENCODING: Final = b"identity,deflate,gzip"
_TIMEOUT_UNITS: Final = {
    ord("H"): 3600.0,
    ord("M"): 60.0,
    ord("S"): 1.0,
    ord("m"): 1e-3,
    ord("u"): 1e-6,
    ord("n"): 1e-9,
}
#: reserved request headers that are not invocation metadata (grpc-core hides them too)
_NOT_METADATA: Final = frozenset(
    {b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding"}
)


def frame(message: bytes) -> bytes:
    """One uncompressed length-prefixed message."""
    return b"\x00" + len(message).to_bytes(4, "big") + message


def status_code(code: grpc.StatusCode) -> bytes:
    """The ``grpc-status`` value of ``code``."""
    number: int = code.value[0]
    return str(number).encode()


def encode_message(details: str) -> bytes:
    """``grpc-message``: UTF-8, then every byte outside 0x20-0x7E and ``%`` as ``%XX``."""
    out = bytearray()
    for byte in details.encode():
        if 0x20 <= byte <= 0x7E and byte != 0x25:
            out.append(byte)
        else:
            out += b"%%%02X" % byte
    return bytes(out)


def decode_message(value: bytes) -> str:
    """The inverse of :func:`encode_message` (lenient, as clients must be)."""
    return unquote_to_bytes(value).decode(errors="replace")


def status_trailers(code: grpc.StatusCode, details: str = "") -> list[tuple[bytes, bytes]]:
    trailers = [(b"grpc-status", status_code(code))]
    if details:
        trailers.append((b"grpc-message", encode_message(details)))
    return trailers


def parse_timeout(value: bytes) -> float:
    """Seconds of a ``grpc-timeout`` value (``"100m"``, ``"5S"``, ...)."""
    digits, unit = value[:-1], value[-1:]
    if not (1 <= len(digits) <= 8 and digits.isdigit() and unit and unit[0] in _TIMEOUT_UNITS):
        raise InvalidArgument(f"malformed grpc-timeout {value.decode(errors='replace')!r}")
    return int(digits) * _TIMEOUT_UNITS[unit[0]]


def invocation_metadata(headers: list[tuple[bytes, bytes]]) -> tuple[tuple[str, str | bytes], ...]:
    """The call's metadata as grpc.aio shows it: no pseudo-headers, ``-bin`` values decoded."""
    metadata: list[tuple[str, str | bytes]] = []
    for name, value in headers:
        if name.startswith(b":") or name in _NOT_METADATA:
            continue
        key = name.decode("latin-1")
        if key.endswith("-bin"):
            metadata.append((key, base64.b64decode(value + b"=" * (-len(value) % 4))))
        else:
            metadata.append((key, value.decode("latin-1")))
    return tuple(metadata)


def decompress(encoding: bytes, payload: bytes) -> bytes:
    """A message sent with its compressed flag set, in the call's ``grpc-encoding``."""
    try:
        if encoding == b"gzip":
            return zlib.decompress(payload, wbits=16 + zlib.MAX_WBITS)
        if encoding == b"deflate":
            return zlib.decompress(payload)
    except zlib.error as exc:
        raise InternalError(f"could not decompress a {encoding.decode()} message: {exc}") from None
    raise Unsupported(f"message compressed with an unsupported encoding {encoding.decode()!r}")
