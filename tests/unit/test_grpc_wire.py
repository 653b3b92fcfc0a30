"""The gRPC wire helpers: framing, status trailers, grpc-timeout, metadata, compression."""

from __future__ import annotations

import gzip
import zlib

import grpc
import pytest

from oipserve.errors import InternalError, InvalidArgument, Unsupported
from oipserve.transport.grpc import wire


def test_frame() -> None:
    assert wire.frame(b"abc") == b"\x00\x00\x00\x00\x03abc"
    assert wire.frame(b"") == b"\x00\x00\x00\x00\x00"


def test_status_trailers_percent_encode_the_message() -> None:
    assert wire.status_trailers(grpc.StatusCode.OK) == [(b"grpc-status", b"0")]
    trailers = wire.status_trailers(grpc.StatusCode.NOT_FOUND, "model 'é' is 100% gone\n")
    assert trailers == [
        (b"grpc-status", b"5"),
        (b"grpc-message", b"model '%C3%A9' is 100%25 gone%0A"),
    ]
    assert wire.decode_message(trailers[1][1]) == "model 'é' is 100% gone\n"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [(b"1H", 3600.0), (b"2M", 120.0), (b"5S", 5.0), (b"250m", 0.25), (b"7u", 7e-6), (b"9n", 9e-9)],
)
def test_parse_timeout(value: bytes, seconds: float) -> None:
    assert wire.parse_timeout(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", [b"", b"S", b"123456789S", b"10x", b"-1S", b"1.5S"])
def test_parse_timeout_refuses_malformed_values(value: bytes) -> None:
    with pytest.raises(InvalidArgument):
        wire.parse_timeout(value)


def test_invocation_metadata_hides_reserved_headers_and_decodes_binary() -> None:
    headers = [
        (b":path", b"/s/m"),
        (b"content-type", b"application/grpc"),
        (b"te", b"trailers"),
        (b"grpc-timeout", b"1S"),
        (b"user-agent", b"grpc-python"),
        (b"x-id", b"42"),
        (b"x-raw-bin", b"AP8"),  # unpadded base64 of b"\x00\xff"
    ]
    assert wire.invocation_metadata(headers) == (
        ("user-agent", "grpc-python"),
        ("x-id", "42"),
        ("x-raw-bin", b"\x00\xff"),
    )


def test_decompress() -> None:
    data = b"tensor bytes " * 100
    assert wire.decompress(b"gzip", gzip.compress(data)) == data
    assert wire.decompress(b"deflate", zlib.compress(data)) == data
    with pytest.raises(InternalError):
        wire.decompress(b"gzip", b"not gzip")
    with pytest.raises(Unsupported):
        wire.decompress(b"snappy", data)
