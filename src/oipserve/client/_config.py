"""Where and how to connect: the URL's scheme picks the wire format, TLS and the API key."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from oipserve.errors import InvalidArgument

Wire = Literal["rest", "grpc"]
#: a CA bundle (path), False to skip verification, True for the system's trust store
Verify = bool | str | Path
#: a client certificate: one PEM file holding both, or (certificate, key)
Cert = str | Path | tuple[str | Path, str | Path]

_SCHEMES: dict[str, tuple[Wire, bool]] = {
    "http": ("rest", False),
    "https": ("rest", True),
    "grpc": ("grpc", False),
    "grpcs": ("grpc", True),
}


@dataclass(frozen=True, slots=True)
class Endpoint:
    wire: Wire
    tls: bool
    host: str
    port: int

    @property
    def authority(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.authority}"

    def __str__(self) -> str:
        scheme = {("rest", False): "http", ("rest", True): "https"}.get((self.wire, self.tls))
        return f"{scheme or ('grpcs' if self.tls else 'grpc')}://{self.authority}"


def parse_url(url: str) -> Endpoint:
    """``http[s]://host[:port]`` is REST, ``grpc[s]://host[:port]`` gRPC; a bare ``host:port``
    is plain REST. Default ports: 8080 for REST, 8081 for gRPC (oipserve's)."""
    text = url.strip()
    if "://" not in text:
        text = f"http://{text}"
    parts = urlsplit(text)
    found = _SCHEMES.get(parts.scheme.lower())
    if found is None:
        raise InvalidArgument(
            f"unsupported URL scheme '{parts.scheme}' in {url!r}: use http, https, grpc or grpcs"
        )
    wire, tls = found
    if parts.path not in ("", "/"):
        raise InvalidArgument(f"the URL {url!r} must not have a path (the server's root is used)")
    try:
        port = parts.port
    except ValueError:
        raise InvalidArgument(f"the URL {url!r} has an invalid port") from None
    if not parts.hostname:
        raise InvalidArgument(f"the URL {url!r} has no host")
    return Endpoint(wire, tls, parts.hostname, port or (8080 if wire == "rest" else 8081))


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def grpc_credentials(
    verify: Verify, cert: Cert | None
) -> tuple[bytes | None, bytes | None, bytes | None]:
    """(root certificates, private key, certificate chain) for ``grpc.ssl_channel_credentials``."""
    if verify is False:
        raise InvalidArgument(
            "gRPC over TLS cannot skip certificate verification; give the CA bundle as verify="
        )
    roots = Path(verify).read_bytes() if isinstance(verify, str | Path) else None
    if cert is None:
        return roots, None, None
    if isinstance(cert, tuple):
        chain, key = Path(cert[0]).read_bytes(), Path(cert[1]).read_bytes()
    else:
        chain = key = Path(cert).read_bytes()
    return roots, key, chain
