"""TLS for both listeners, from the settings: which files, and whether clients must show a
certificate (mutual TLS). Transport-neutral: the REST server hands these paths to uvicorn
(:mod:`ssl`), the gRPC server builds its credentials from them in one place
(:func:`oipserve.transport.grpc.credentials.server_credentials`).

``--ssl-certfile`` and ``--ssl-keyfile`` (PEM) turn TLS on for REST and gRPC together;
``--ssl-ca-certs`` names the CAs client certificates must chain to, and ``--ssl-client-auth``
``required`` makes a certificate mandatory (``optional``: asked for, checked when sent). Triton's
gRPC spellings (``--grpc-use-ssl``, ``--grpc-server-cert``, ``--grpc-server-key``,
``--grpc-root-cert``, ``--grpc-use-ssl-mutual``) are accepted as aliases of these.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Final, get_args

from oipserve.settings import ClientAuth

CLIENT_AUTH: Final[tuple[ClientAuth, ...]] = get_args(ClientAuth)


class TLSConfigError(ValueError):
    """TLS settings that cannot work together (a key without a certificate, ...)."""


@dataclass(frozen=True, slots=True)
class TLSFiles:
    certfile: Path
    keyfile: Path
    ca_certs: Path | None = None
    client_auth: ClientAuth = "none"

    @property
    def cert_reqs(self) -> ssl.VerifyMode:
        """What :mod:`ssl` (and so uvicorn) asks of a client."""
        return {
            "none": ssl.CERT_NONE,
            "optional": ssl.CERT_OPTIONAL,
            "required": ssl.CERT_REQUIRED,
        }[self.client_auth]


def tls_files(
    certfile: Path | None,
    keyfile: Path | None,
    ca_certs: Path | None,
    client_auth: ClientAuth,
    *,
    required: bool = False,
) -> TLSFiles | None:
    """The TLS files, checked (each readable, the pair complete, a CA for client auth); None when
    TLS is off. ``required``: Triton's ``--grpc-use-ssl`` (or ``--grpc-use-ssl-mutual``) asked for
    TLS, so the files must be there."""
    if required and (certfile is None or keyfile is None):
        raise TLSConfigError(
            "--grpc-use-ssl needs a certificate and key: give both --ssl-certfile and "
            "--ssl-keyfile (or --grpc-server-cert and --grpc-server-key)"
        )
    if certfile is None and keyfile is None:
        if client_auth != "none" or ca_certs is not None:
            raise TLSConfigError(
                "--ssl-ca-certs and --ssl-client-auth need TLS: give --ssl-certfile and "
                "--ssl-keyfile too"
            )
        return None
    if certfile is None or keyfile is None:
        raise TLSConfigError("TLS needs both --ssl-certfile and --ssl-keyfile")
    if client_auth != "none" and ca_certs is None:
        raise TLSConfigError(
            f"--ssl-client-auth {client_auth} needs --ssl-ca-certs (the CA client certificates "
            "must chain to)"
        )
    for option, path in (
        ("--ssl-certfile", certfile),
        ("--ssl-keyfile", keyfile),
        ("--ssl-ca-certs", ca_certs),
    ):
        if path is not None and not path.is_file():
            raise TLSConfigError(f"{option} {path}: no such file")
    return TLSFiles(certfile, keyfile, ca_certs, client_auth)


__all__ = ["CLIENT_AUTH", "ClientAuth", "TLSConfigError", "TLSFiles", "tls_files"]
