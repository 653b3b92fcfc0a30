"""The gRPC port's TLS, built in one place from :class:`oipserve.tls.TLSFiles` (whatever gRPC
stack serves oipserve takes its TLS from here)."""

from __future__ import annotations

import ssl

from oipserve.tls import TLSFiles


def server_ssl_context(tls: TLSFiles) -> ssl.SSLContext:
    """A TLS server context for HTTP/2: the certificate chain and key; with a CA, client
    certificates are checked against it, and with ``client_auth == "required"`` a client without
    one is refused at the handshake. The server sets ALPN ``h2`` itself."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2  # HTTP/2 needs TLS 1.2 or later
    context.load_cert_chain(str(tls.certfile), str(tls.keyfile))
    if tls.ca_certs is not None:
        context.load_verify_locations(cafile=str(tls.ca_certs))
    context.verify_mode = tls.cert_reqs
    return context
