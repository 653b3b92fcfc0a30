"""HTTP body compression: ``Content-Encoding`` on requests, ``Accept-Encoding`` on responses.

``deflate`` is zlib-wrapped (what tritonclient sends); raw deflate is accepted too. Inflating
is bounded by the request size limit, so a small gzip bomb is refused with 413 instead of
filling memory.
"""

from __future__ import annotations

import gzip
import zlib

from oipserve.errors import InvalidArgument, PayloadTooLarge, Unsupported

SUPPORTED = ("gzip", "deflate")


class UnsupportedEncoding(Unsupported):
    """Answered with 501 and ``Accept-Encoding: gzip, deflate``."""

    accept_encoding = True


def decompress(body: bytes, encoding: str, limit: int) -> bytes:
    coding = encoding.strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in SUPPORTED:
        raise UnsupportedEncoding(
            f"unsupported Content-Encoding '{encoding}'; supported: gzip, deflate, identity"
        )
    # 47: zlib or gzip header, detected automatically
    attempts = (47,) if coding == "gzip" else (47, -zlib.MAX_WBITS)
    for wbits in attempts:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(body, limit + 1)
        except zlib.error as exc:
            if wbits == attempts[-1]:
                raise InvalidArgument(f"corrupt {coding} request body: {exc}") from None
            continue
        if len(out) > limit or inflater.unconsumed_tail:
            raise PayloadTooLarge(
                f"decompressed request body exceeds the limit of {limit} bytes "
                "(raise it with --http-max-request-mb)"
            )
        if not inflater.eof:
            raise InvalidArgument(f"corrupt {coding} request body: the stream is truncated")
        return out
    raise InvalidArgument(f"corrupt {coding} request body")


def choose(accept_encoding: str) -> str | None:
    """The coding to answer with: highest q among gzip/deflate; ties keep the earlier one."""
    best: str | None = None
    best_q = 0.0
    for part in accept_encoding.split(","):
        token, _, params = part.strip().partition(";")
        coding = token.strip().lower()
        q = 1.0
        params = params.strip()
        if params.startswith("q="):
            try:
                q = float(params[2:])
            except ValueError:
                q = 0.0
        if coding in SUPPORTED and q > best_q:
            best, best_q = coding, q
        elif coding == "identity" and q > best_q:
            best, best_q = None, q
    return best


def compress(body: bytes, coding: str) -> bytes:
    if coding == "gzip":
        return gzip.compress(body, compresslevel=6, mtime=0)
    return zlib.compress(body)
