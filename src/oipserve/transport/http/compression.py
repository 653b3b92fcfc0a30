"""HTTP body compression: ``Content-Encoding`` on requests, ``Accept-Encoding`` on responses.

``deflate`` is zlib-wrapped (what tritonclient sends); raw deflate is accepted too. Inflating
is bounded by the request size limit, so a small gzip bomb is refused with 413 instead of
filling memory.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence

from oipserve.errors import InvalidArgument, PayloadTooLarge, Unsupported

SUPPORTED = ("gzip", "deflate")


class UnsupportedEncoding(Unsupported):
    """Answered with 501 and ``Accept-Encoding: gzip, deflate``."""

    accept_encoding = True


_GZIP_MAGIC = b"\x1f\x8b"
_AUTO = 47  # zlib or gzip header, detected by zlib
_RAW = -zlib.MAX_WBITS


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    """Inflate a request body, never producing more than ``limit`` bytes (413 beyond)."""
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding == "x-gzip":
        coding = "gzip"
    if coding not in SUPPORTED:
        raise UnsupportedEncoding(
            f"unsupported Content-Encoding '{encoding}'; supported: gzip, deflate, identity"
        )
    if coding == "gzip":
        attempts: tuple[int, ...] = (_AUTO,)
    elif _looks_wrapped(body):
        attempts = (_AUTO, _RAW)  # zlib-wrapped, as tritonclient sends; raw if that fails
    else:
        attempts = (_RAW,)
    for wbits in attempts:
        try:
            return _inflate(body, wbits, limit, coding)
        except zlib.error as exc:
            if wbits == attempts[-1]:
                raise InvalidArgument(f"corrupt {coding} request body: {exc}") from None
    raise AssertionError("unreachable")


def _looks_wrapped(body: bytes) -> bool:
    """A zlib (RFC 1950) or gzip header at the start of ``body``."""
    if body[:2] == _GZIP_MAGIC:
        return True
    return len(body) >= 2 and body[0] & 0x0F == 8 and (body[0] << 8 | body[1]) % 31 == 0


def _inflate(body: bytes, wbits: int, limit: int, coding: str) -> bytes:
    parts: list[bytes] = []
    total = 0
    data = body
    while True:
        inflater = zlib.decompressobj(wbits)
        # at most one byte over the limit is ever produced: memory stays bounded
        out = inflater.decompress(data, limit + 1 - total)
        total += len(out)
        parts.append(out)
        if total > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"decompressed request body exceeds the limit of {limit} bytes "
                "(raise it with --http-max-request-mb)"
            )
        if not inflater.eof:
            raise InvalidArgument(f"corrupt {coding} request body: the stream is truncated")
        data = inflater.unused_data
        if not data.strip(b"\0"):
            break
        if wbits != _AUTO or data[:2] != _GZIP_MAGIC:
            raise InvalidArgument(
                f"corrupt {coding} request body: {len(data)} bytes of trailing data after the "
                "compressed stream"
            )
        # another gzip member (RFC 1952 allows several): keep going, within the same limit
    return parts[0] if len(parts) == 1 else b"".join(parts)


def choose(accept_encoding: str) -> str | None:
    """The coding to answer with (None: identity).

    The highest q among gzip, deflate and identity wins; ties keep the one listed first; unknown
    codings and ``q=0`` entries are ignored.
    """
    best: str | None = None
    best_q = 0.0
    for part in accept_encoding.split(","):
        token, *params = part.split(";")
        coding = token.strip().lower()
        if coding == "x-gzip":
            coding = "gzip"
        if coding not in SUPPORTED and coding != "identity":
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:  # also NaN
                    q = 0.0
        if q > best_q:
            best, best_q = (None if coding == "identity" else coding), q
    return best


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    return zlib.compress(body)


_GZIP_WBITS = 16 + zlib.MAX_WBITS  # a gzip header and trailer (mtime 0)


def compress_chunks(chunks: Sequence[bytes | memoryview], coding: str) -> list[bytes]:
    """Compress a body given as chunks without joining them first: the compressed pieces, which
    decompress (gzip: as one member; deflate: zlib-wrapped) to the chunks concatenated."""
    wbits = _GZIP_WBITS if coding == "gzip" else zlib.MAX_WBITS
    compressor = zlib.compressobj(6, zlib.DEFLATED, wbits)
    pieces = [compressor.compress(chunk) for chunk in chunks]
    pieces.append(compressor.flush())
    return [piece for piece in pieces if piece]
